//! `tandem-bench`: prints one figure per line, each beside a baseline measured in the same run.
#![allow(clippy::print_stdout)]

mod app;
mod bridge;
mod envelope;
mod load;
mod messaging;
mod report;
mod store;
mod sync;

use clap::{Parser, ValueEnum};

/// Which benchmark group to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Group {
    /// Everything below.
    All,
    /// Sealing and opening envelopes over pairwise sessions.
    Envelope,
    /// The local store: inserts, search, paging, SQLCipher overhead.
    Store,
    /// History sync from a phone to a newly linked desktop through a loopback broker.
    Sync,
    /// Live messaging: send-to-stored latency and fan-out to a five-device account, each
    /// beside bare MQTT on the same embedded broker.
    Messaging,
    /// Bridge mode beside multi-device mode: history sync, send-to-stored latency, paging.
    Bridge,
    /// The desktop app's window (not part of `all`: it needs Xvfb, the release app and a
    /// 1M-message history): memory beside a bare Tauri window, start time to the chat list.
    App,
    /// Load (not part of `all`): N devices in accounts of two exchange M sealed messages each
    /// through the embedded broker, one Mosquitto and a three-node NATS cluster (or
    /// `--brokers`); delivered, lost, duplicates, p50/p99 latency and throughput per setup,
    /// and the cluster against each single broker.
    Load,
}

/// Tandem's benchmarks (run them with `--release`).
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// The group to run.
    #[arg(value_enum, default_value = "all")]
    group: Group,
    /// Smaller data sets (for a smoke run); the README's figures come from full runs.
    #[arg(long)]
    quick: bool,
    /// `app`: the folder caching its history and linked desktop (built once).
    #[arg(long, value_name = "DIR")]
    work: Option<std::path::PathBuf>,
    /// `app`: also report the size of this `.deb` (the Tauri bundler's output).
    #[arg(long, value_name = "FILE")]
    deb: Option<std::path::PathBuf>,
    /// `load`: simulated devices, in accounts of two [default: 500; 20 with --quick].
    #[arg(long, value_name = "N")]
    devices: Option<usize>,
    /// `load`: messages each device sends [default: 20; 5 with --quick].
    #[arg(long, value_name = "M")]
    messages: Option<usize>,
    /// `load`: run against this broker list (`URL,...`: one setup, devices spread over its
    /// nodes) instead of starting the embedded broker, Mosquitto and a NATS cluster; repeat
    /// for several setups.
    #[arg(long, value_name = "URL,...")]
    brokers: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let mut out = std::io::stdout().lock();
    if matches!(args.group, Group::All | Group::Envelope) {
        envelope::run(&mut out, args.quick)?;
    }
    if matches!(args.group, Group::All | Group::Store) {
        store::run(&mut out, args.quick)?;
    }
    if matches!(args.group, Group::All | Group::Sync) {
        sync::run(&mut out, args.quick)?;
    }
    if matches!(args.group, Group::All | Group::Messaging) {
        messaging::run(&mut out, args.quick)?;
    }
    if matches!(args.group, Group::All | Group::Bridge) {
        bridge::run(&mut out, args.quick)?;
    }
    if args.group == Group::App {
        app::run(
            &mut out,
            &app::Options::new(args.quick, args.work, args.deb),
        )?;
    }
    if args.group == Group::Load {
        load::run(
            &mut out,
            &load::Options {
                devices: args.devices,
                messages: args.messages,
                brokers: args.brokers,
                quick: args.quick,
            },
        )?;
    }
    Ok(())
}
