//! `tandem broker`: the embedded MQTT broker in the foreground until Ctrl-C (or SIGTERM).

use std::io::Write;
use std::net::SocketAddr;

use tandem_net::EmbeddedBroker;

/// Starts the broker on `listen`, prints `listening on mqtt://ADDR` (the real address, also when
/// port 0 was asked for), and returns once a stop signal arrives.
pub fn run(listen: SocketAddr) -> anyhow::Result<()> {
    let broker = EmbeddedBroker::start(listen)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // The handlers are in place before the address is printed: whoever reads the address may
    // signal at once.
    let stop = runtime.block_on(async { StopSignal::install() })?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on mqtt://{}", broker.local_addr())?;
        out.flush()?;
    }
    runtime.block_on(stop.recv())?;
    crate::output::line("broker stopped")?;
    Ok(())
}

/// SIGINT (Ctrl-C) and SIGTERM, registered up front.
#[cfg(unix)]
pub(crate) struct StopSignal {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

#[cfg(unix)]
impl StopSignal {
    pub(crate) fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    pub(crate) async fn recv(mut self) -> std::io::Result<()> {
        tokio::select! {
            _ = self.interrupt.recv() => Ok(()),
            _ = self.terminate.recv() => Ok(()),
        }
    }
}

/// Ctrl-C where there are no Unix signals.
#[cfg(not(unix))]
pub(crate) struct StopSignal;

#[cfg(not(unix))]
impl StopSignal {
    pub(crate) fn install() -> std::io::Result<Self> {
        Ok(Self)
    }

    pub(crate) async fn recv(self) -> std::io::Result<()> {
        tokio::signal::ctrl_c().await
    }
}
