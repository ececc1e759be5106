//! The embedded MQTT broker: rumqttd, configured in code, serving on its own thread.
//!
//! This module owns the broker's configuration ([`BrokerConfig`]), finding a free port, starting
//! rumqttd's router and servers, reporting whether the listening address could be bound, waiting
//! until the address accepts connections, and stopping the servers when the
//! [`EmbeddedBroker`] is dropped.
//!
//! rumqttd's `Broker::start` blocks forever and cannot be stopped. Instead this module drives
//! rumqttd's public pieces itself: a [`rumqttd::Router`] (its own thread, spawned by rumqttd)
//! and one [`rumqttd::Server`] per protocol, all polled on one current-thread Tokio runtime in a
//! thread named `tandem-broker`. That gives two things `Broker::start` cannot: the bind error
//! comes back to the caller as [`Error::Listen`], and dropping the handle stops the listeners
//! and closes every client connection.

use std::future::{Future, poll_fn};
use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::pin::Pin;
use std::sync::mpsc;
use std::task::Poll;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rumqttd::protocol::v4::V4;
use rumqttd::protocol::v5::V5;
use rumqttd::{ConnectionSettings, LinkType, Router, RouterConfig, Server, ServerSettings};
use tokio::sync::oneshot;

use crate::client::MAX_PACKET_SIZE;
use crate::error::{Error, Result};
use crate::url::BrokerUrl;

/// How the embedded broker listens and what it holds. [`BrokerConfig::new`] gives sensible
/// values; every field is public to adjust one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerConfig {
    /// Where the MQTT 3.1.1 server listens. Port 0 picks a free port.
    pub listen: SocketAddr,
    /// Where an MQTT 5 server listens too, if anywhere (rumqttd serves one protocol per
    /// port). Port 0 picks a free port, distinct from the 3.1.1 one.
    pub listen_v5: Option<SocketAddr>,
    /// Largest packet accepted from a client (remaining length, bytes); larger ones close
    /// the connection. Default: [`MAX_PACKET_SIZE`] (1 MiB).
    pub max_packet_size: usize,
    /// Most simultaneous client connections (rumqttd preallocates tables of this size).
    pub max_connections: usize,
    /// Most packets read from one connection before the router is woken (rumqttd's
    /// `max_inflight_count`). Outgoing QoS 1 in-flight is fixed at 100 by rumqttd.
    pub max_read_batch: usize,
    /// How long a new TCP connection may take to send its CONNECT (at most 65.535 s).
    pub connect_timeout: Duration,
    /// Size of one segment of a topic filter's in-memory log, in bytes (at least 1 KiB).
    /// Messages kept for offline persistent sessions live in these logs.
    pub segment_size: usize,
    /// Segments kept per topic filter (at least 1). Once a filter's log holds
    /// `segment_size * segment_count` bytes, its oldest segment is dropped, and an offline
    /// persistent session that had not read it loses those messages.
    pub segment_count: usize,
    /// How long [`EmbeddedBroker::start_with`] waits for the address to accept connections.
    pub start_timeout: Duration,
}

impl BrokerConfig {
    /// A 3.1.1-only broker on `listen` with the default limits: 1 MiB packets, 1000
    /// connections, 5 s to send CONNECT, 16 MiB x 8 segments kept per topic filter.
    #[must_use]
    pub fn new(listen: SocketAddr) -> Self {
        Self {
            listen,
            listen_v5: None,
            max_packet_size: MAX_PACKET_SIZE,
            max_connections: 1000,
            max_read_batch: 100,
            connect_timeout: Duration::from_secs(5),
            segment_size: 16 * 1024 * 1024,
            segment_count: 8,
            start_timeout: Duration::from_secs(5),
        }
    }

    /// Refuses values rumqttd would panic on or silently misread.
    fn check(&self) -> Result<()> {
        let bad = |setting, value: String, reason| {
            Err(Error::BrokerSetting {
                setting,
                value,
                reason,
            })
        };
        if self.max_packet_size == 0 {
            return bad("max_packet_size", "0".into(), "must be at least 1 byte");
        }
        if self.max_connections == 0 {
            return bad("max_connections", "0".into(), "must be at least 1");
        }
        if self.max_read_batch == 0 {
            return bad("max_read_batch", "0".into(), "must be at least 1");
        }
        if u16::try_from(self.connect_timeout.as_millis()).is_err()
            || self.connect_timeout.is_zero()
        {
            return bad(
                "connect_timeout",
                format!("{:?}", self.connect_timeout),
                "must be between 1 ms and 65.535 s",
            );
        }
        if self.segment_size < 1024 {
            return bad(
                "segment_size",
                self.segment_size.to_string(),
                "must be at least 1024 bytes",
            );
        }
        if self.segment_count == 0 {
            return bad("segment_count", "0".into(), "must be at least 1");
        }
        Ok(())
    }

    fn server_settings(&self, name: &str, listen: SocketAddr) -> ServerSettings {
        ServerSettings {
            name: name.to_owned(),
            listen,
            tls: None,
            next_connection_delay_ms: 0,
            connections: ConnectionSettings {
                // `check` made sure it fits.
                connection_timeout_ms: u16::try_from(self.connect_timeout.as_millis())
                    .unwrap_or(u16::MAX),
                max_payload_size: self.max_packet_size,
                max_inflight_count: self.max_read_batch,
                auth: None,
                external_auth: None,
                // Without dynamic filters, publishing to a topic nobody has subscribed to
                // yet makes rumqttd drop the publisher's connection.
                dynamic_filters: true,
            },
        }
    }

    fn router_config(&self) -> RouterConfig {
        RouterConfig {
            max_connections: self.max_connections,
            max_outgoing_packet_count: 200,
            max_segment_size: self.segment_size,
            max_segment_count: self.segment_count,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: rumqttd::Strategy::default(),
        }
    }
}

/// A running embedded broker. Dropping it stops it (see [`EmbeddedBroker::stop`]).
#[derive(Debug)]
pub struct EmbeddedBroker {
    addr: SocketAddr,
    addr_v5: Option<SocketAddr>,
    url: BrokerUrl,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// Why a server future ended: the kind and text of rumqttd's error.
struct ServerEnd {
    kind: io::ErrorKind,
    message: String,
}

type ServerFuture = Pin<Box<dyn Future<Output = ServerEnd>>>;

/// What the broker thread tells `start_with` once every server has tried to bind.
enum Startup {
    Listening,
    BindFailed { addr: SocketAddr, end: ServerEnd },
    NoRuntime(io::Error),
}

impl EmbeddedBroker {
    /// Starts a broker with [`BrokerConfig::new`]`(listen)` and returns once `listen` accepts
    /// TCP connections. Use port 0 for a free port and read it back with
    /// [`EmbeddedBroker::local_addr`].
    ///
    /// # Errors
    /// See [`EmbeddedBroker::start_with`].
    pub fn start(listen: SocketAddr) -> Result<Self> {
        Self::start_with(BrokerConfig::new(listen))
    }

    /// Starts a broker as configured and returns once its address accepts TCP connections.
    /// Blocks the calling thread for at most `config.start_timeout`.
    ///
    /// # Errors
    /// [`Error::BrokerSetting`] for a value rumqttd cannot use, [`Error::Listen`] if an address
    /// cannot be bound (the port is taken, the address is not local), [`Error::Thread`] if the
    /// thread cannot start, [`Error::Stopped`] or [`Error::NotReady`] if the broker never
    /// becomes reachable.
    pub fn start_with(config: BrokerConfig) -> Result<Self> {
        config.check()?;
        let (addr, addr_v5) = resolve_ports(config.listen, config.listen_v5)?;
        let url = BrokerUrl::from_socket_addr(addr)?;

        let mut servers: Vec<(SocketAddr, Box<dyn FnOnce() -> ServerFuture + Send>)> =
            Vec::with_capacity(2);
        let router_tx = Router::new(0, config.router_config()).spawn();
        let mut v4 = Server::new(
            config.server_settings("tandem-v4", addr),
            router_tx.clone(),
            V4,
        );
        servers.push((
            addr,
            Box::new(move || Box::pin(async move { ended(v4.start(LinkType::Remote).await) })),
        ));
        if let Some(addr_v5) = addr_v5 {
            let mut v5 = Server::new(config.server_settings("tandem-v5", addr_v5), router_tx, V5);
            servers.push((
                addr_v5,
                Box::new(move || Box::pin(async move { ended(v5.start(LinkType::Remote).await) })),
            ));
        }

        let (report_tx, report_rx) = mpsc::channel();
        let (shutdown_tx, shutdown_rx) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name("tandem-broker".to_owned())
            .spawn(move || serve(servers, &report_tx, shutdown_rx))
            .map_err(Error::Thread)?;
        let broker = Self {
            addr,
            addr_v5,
            url,
            shutdown: Some(shutdown_tx),
            thread: Some(thread),
        };

        let started = Instant::now();
        match report_rx.recv_timeout(config.start_timeout) {
            Ok(Startup::Listening) => {}
            Ok(Startup::BindFailed { addr, end }) => {
                return Err(Error::Listen {
                    addr,
                    source: io::Error::new(end.kind, end.message),
                });
            }
            Ok(Startup::NoRuntime(source)) => return Err(Error::Thread(source)),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                return Err(Error::NotReady {
                    addr,
                    waited: config.start_timeout,
                });
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                return Err(Error::Stopped {
                    addr,
                    reason: "the broker thread ended (it panicked) before binding".to_owned(),
                });
            }
        }
        for probe in std::iter::once(addr).chain(addr_v5) {
            wait_until_connectable(probe, started, config.start_timeout)?;
        }
        tracing::debug!(%addr, ?addr_v5, "embedded MQTT broker listening");
        Ok(broker)
    }

    /// The address the MQTT 3.1.1 server listens on (the real port when started on port 0).
    #[must_use]
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// The address the MQTT 5 server listens on, if one was configured.
    #[must_use]
    pub fn local_addr_v5(&self) -> Option<SocketAddr> {
        self.addr_v5
    }

    /// `mqtt://ip:port` of the MQTT 3.1.1 server, for clients.
    #[must_use]
    pub fn url(&self) -> &BrokerUrl {
        &self.url
    }

    /// Stops listening and closes every client connection, then returns once the ports are
    /// free. Clients see their connection drop (no Last Will is published for them).
    ///
    /// What is not released: rumqttd's router thread holds its own channel sender, so it can
    /// never see its channel close; it stays parked (idle, holding the sessions and retained
    /// messages in memory) until the process exits. Every broker started leaves one such thread.
    pub fn stop(mut self) {
        self.shutdown_and_join();
    }

    fn shutdown_and_join(&mut self) {
        // Dropping the sender wakes the broker thread, which drops its runtime and with it the
        // listeners and connection tasks.
        drop(self.shutdown.take());
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!(addr = %self.addr, "the embedded broker thread panicked");
        }
    }
}

impl Drop for EmbeddedBroker {
    fn drop(&mut self) {
        self.shutdown_and_join();
    }
}

/// Turns port 0 into a free port and checks that fixed ports are free, holding the probe
/// listeners until both are chosen so two port-0 requests get different ports.
fn resolve_ports(
    listen: SocketAddr,
    listen_v5: Option<SocketAddr>,
) -> Result<(SocketAddr, Option<SocketAddr>)> {
    let probe = |addr: SocketAddr| {
        TcpListener::bind(addr)
            .and_then(|listener| Ok((listener.local_addr()?, listener)))
            .map_err(|source| Error::Listen { addr, source })
    };
    let (addr, held) = probe(listen)?;
    let v5 = match listen_v5 {
        Some(want) => {
            let (addr_v5, held_v5) = probe(want)?;
            drop(held_v5);
            Some(addr_v5)
        }
        None => None,
    };
    drop(held);
    Ok((addr, v5))
}

/// rumqttd's `Server::start` only returns on error (it loops on accept otherwise).
fn ended<E: std::error::Error + 'static>(result: std::result::Result<(), E>) -> ServerEnd {
    match result {
        Ok(()) => ServerEnd {
            kind: io::ErrorKind::Other,
            message: "the server stopped".to_owned(),
        },
        Err(error) => {
            // rumqttd wraps the bind error as its `Io` variant, whose source is the io::Error.
            let kind = std::error::Error::source(&error)
                .and_then(|source| source.downcast_ref::<io::Error>())
                .map_or(io::ErrorKind::Other, io::Error::kind);
            ServerEnd {
                kind,
                message: error.to_string(),
            }
        }
    }
}

/// The broker thread: polls every server once (rumqttd binds in that first poll), reports,
/// then serves until the handle is dropped or a server fails.
fn serve(
    servers: Vec<(SocketAddr, Box<dyn FnOnce() -> ServerFuture + Send>)>,
    report: &mpsc::Sender<Startup>,
    mut shutdown: oneshot::Receiver<()>,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            // The receiver may be gone if start timed out; nothing else to tell.
            let _ = report.send(Startup::NoRuntime(error));
            return;
        }
    };
    runtime.block_on(async move {
        let mut servers: Vec<(SocketAddr, ServerFuture)> = servers
            .into_iter()
            .map(|(addr, make)| (addr, make()))
            .collect();
        let first = poll_fn(|cx| {
            for (addr, server) in &mut servers {
                if let Poll::Ready(end) = server.as_mut().poll(cx) {
                    return Poll::Ready(Some((*addr, end)));
                }
            }
            Poll::Ready(None)
        })
        .await;
        if let Some((addr, end)) = first {
            let _ = report.send(Startup::BindFailed { addr, end });
            return;
        }
        let _ = report.send(Startup::Listening);

        let stopped = poll_fn(|cx| {
            if Pin::new(&mut shutdown).poll(cx).is_ready() {
                return Poll::Ready(None);
            }
            for (addr, server) in &mut servers {
                if let Poll::Ready(end) = server.as_mut().poll(cx) {
                    return Poll::Ready(Some((*addr, end)));
                }
            }
            Poll::Pending
        })
        .await;
        if let Some((addr, end)) = stopped {
            tracing::error!(%addr, reason = %end.message, "embedded MQTT server stopped");
        }
    });
    // Dropping the runtime here drops the listeners and every connection task.
}

/// Retries a plain TCP connect until it succeeds or `timeout` since `started` has passed.
fn wait_until_connectable(addr: SocketAddr, started: Instant, timeout: Duration) -> Result<()> {
    loop {
        let left = timeout.saturating_sub(started.elapsed());
        if left.is_zero() {
            return Err(Error::NotReady {
                addr,
                waited: timeout,
            });
        }
        if TcpStream::connect_timeout(&addr, left.min(Duration::from_millis(500))).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(5).min(left));
    }
}

#[cfg(test)]
#[path = "broker_tests.rs"]
mod tests;
