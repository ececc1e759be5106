//! How every benchmark prints: one `name: value unit` line per figure, flushed at once, and the
//! machine's load beside them.

use std::io::Write;

use anyhow::Context as _;

/// Prints one figure.
pub fn line(
    out: &mut dyn Write,
    name: &str,
    value: impl std::fmt::Display,
    unit: &str,
) -> anyhow::Result<()> {
    writeln!(out, "{name}: {value} {unit}").context("writing a figure")?;
    out.flush().context("writing a figure")
}

/// The machine's 1-minute load average (Linux) as `{group}.env.load_average_{when}`, so a
/// reader can tell a busy run from an idle one: every figure is wall-clock time.
pub fn load_average(out: &mut dyn Write, group: &str, when: &str) -> anyhow::Result<()> {
    let Ok(text) = std::fs::read_to_string("/proc/loadavg") else {
        return Ok(());
    };
    let load = text.split_whitespace().next().unwrap_or("?");
    let cpus = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    line(
        out,
        &format!("{group}.env.load_average_{when}"),
        load,
        &format!("(on {cpus} cpus)"),
    )
}

/// A count as a figure name shows it: `100k`, `1m`, or the number itself.
pub fn short(count: usize) -> String {
    if count >= 1_000_000 && count.is_multiple_of(1_000_000) {
        format!("{}m", count / 1_000_000)
    } else if count >= 1_000 && count.is_multiple_of(1_000) {
        format!("{}k", count / 1_000)
    } else {
        count.to_string()
    }
}
