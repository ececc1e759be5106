//! `tandem broker`: the embedded MQTT broker in the foreground until Ctrl-C (or SIGTERM).

use std::io::Write;
use std::net::SocketAddr;

use tandem_net::EmbeddedBroker;

/// Starts the broker on `listen`, prints `listening on mqtt://ADDR` (the real address, also when
/// port 0 was asked for), and returns once a stop signal arrives.
pub fn run(listen: SocketAddr) -> anyhow::Result<()> {
    let broker = EmbeddedBroker::start(listen)?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on mqtt://{}", broker.local_addr())?;
        out.flush()?;
    }
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(stop_signal())?;
    crate::output::line("broker stopped")?;
    Ok(())
}

#[cfg(unix)]
async fn stop_signal() -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r,
        _ = term.recv() => Ok(()),
    }
}

#[cfg(not(unix))]
async fn stop_signal() -> std::io::Result<()> {
    tokio::signal::ctrl_c().await
}
