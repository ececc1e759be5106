//! Placeholder replaced by the envelope benchmark module.

pub fn run(_out: &mut dyn std::io::Write, _quick: bool) -> anyhow::Result<()> {
    Ok(())
}
