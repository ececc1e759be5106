//! A TCP proxy a test can break on purpose: put it between a client and a broker, then make
//! the network go silent ([`TcpProxy::freeze`]: sockets stay open, no byte moves, as when a
//! phone loses its radio) or drop ([`TcpProxy::cut`]: both sides see the connection close).

use std::net::SocketAddr;

use tandem_net::BrokerUrl;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::{Result, io};

/// What the proxy does with its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Forward,
    Freeze,
    Cut,
}

/// A proxy on a free 127.0.0.1 port forwarding to `upstream`. Dropping it closes everything.
#[derive(Debug)]
pub struct TcpProxy {
    addr: SocketAddr,
    url: BrokerUrl,
    mode: watch::Sender<Mode>,
    accept: JoinHandle<()>,
}

impl TcpProxy {
    /// Starts forwarding connections made to [`TcpProxy::addr`] to `upstream`. Must be called
    /// inside a Tokio runtime.
    ///
    /// # Errors
    /// [`crate::Error::Io`] if it cannot listen.
    pub async fn start(upstream: SocketAddr) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(io("bind the test proxy on 127.0.0.1:0"))?;
        let addr = listener
            .local_addr()
            .map_err(io("read the test proxy's port"))?;
        let (mode, mode_rx) = watch::channel(Mode::Forward);
        let accept = tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if *mode_rx.borrow() == Mode::Cut {
                    continue;
                }
                let Ok(outbound) = TcpStream::connect(upstream).await else {
                    continue;
                };
                tokio::spawn(pipe(inbound, outbound, mode_rx.clone()));
            }
        });
        Ok(Self {
            addr,
            url: BrokerUrl::from_socket_addr(addr)?,
            mode,
            accept,
        })
    }

    /// Where clients connect.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `mqtt://127.0.0.1:port` of the proxy.
    #[must_use]
    pub fn url(&self) -> &BrokerUrl {
        &self.url
    }

    /// Stops moving bytes in both directions on every connection, keeping the sockets open:
    /// neither side sees a close; only timeouts (MQTT keep-alive) can notice.
    pub fn freeze(&self) {
        self.mode.send_replace(Mode::Freeze);
    }

    /// Closes every connection on both sides, and new ones as soon as they are accepted.
    pub fn cut(&self) {
        self.mode.send_replace(Mode::Cut);
    }

    /// Forwards again: frozen connections resume, new connections are forwarded.
    pub fn resume(&self) {
        self.mode.send_replace(Mode::Forward);
    }
}

impl Drop for TcpProxy {
    fn drop(&mut self) {
        // Dropping `mode` (the sender) after this makes every pipe return and close.
        self.accept.abort();
    }
}

/// Copies bytes both ways while the mode is `Forward`; holds the sockets silently while it
/// is `Freeze`; closes both on `Cut`, on either side closing, or when the proxy is dropped.
async fn pipe(inbound: TcpStream, outbound: TcpStream, mut mode: watch::Receiver<Mode>) {
    let (mut in_read, mut in_write) = inbound.into_split();
    let (mut out_read, mut out_write) = outbound.into_split();
    let mut up = vec![0u8; 16 * 1024];
    let mut down = vec![0u8; 16 * 1024];
    loop {
        let current = *mode.borrow_and_update();
        match current {
            Mode::Cut => return,
            Mode::Freeze => {
                if mode.changed().await.is_err() {
                    return;
                }
            }
            Mode::Forward => {
                tokio::select! {
                    read = in_read.read(&mut up) => {
                        let Some(bytes) = read.ok().filter(|n| *n > 0).and_then(|n| up.get(..n)) else {
                            return;
                        };
                        if out_write.write_all(bytes).await.is_err() {
                            return;
                        }
                    }
                    read = out_read.read(&mut down) => {
                        let Some(bytes) = read.ok().filter(|n| *n > 0).and_then(|n| down.get(..n)) else {
                            return;
                        };
                        if in_write.write_all(bytes).await.is_err() {
                            return;
                        }
                    }
                    changed = mode.changed() => {
                        if changed.is_err() {
                            return;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
#[path = "proxy_tests.rs"]
mod tests;
