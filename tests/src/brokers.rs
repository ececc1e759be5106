//! The brokers a suite can run against, behind one enum: the in-process embedded broker, a
//! Mosquitto process and a three-node NATS cluster.

use std::net::SocketAddr;

use tandem_net::{BrokerUrl, EmbeddedBroker};

use crate::error::Result;
use crate::mosquitto::{Mosquitto, MosquittoOptions};
use crate::nats::NatsCluster;

/// The embedded (rumqttd) broker on a free 127.0.0.1 port, stopped on drop.
#[derive(Debug)]
pub struct Embedded {
    broker: EmbeddedBroker,
}

impl Embedded {
    /// Starts it on `127.0.0.1:0`.
    ///
    /// # Errors
    /// [`crate::Error::Net`] if the broker cannot start.
    pub fn start() -> Result<Self> {
        let any_port = SocketAddr::from(([127, 0, 0, 1], 0));
        Ok(Self {
            broker: EmbeddedBroker::start(any_port)?,
        })
    }

    /// The address it listens on.
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        self.broker.local_addr()
    }

    /// `mqtt://127.0.0.1:port`.
    #[must_use]
    pub fn url(&self) -> &BrokerUrl {
        self.broker.url()
    }

    /// The broker itself.
    #[must_use]
    pub fn broker(&self) -> &EmbeddedBroker {
        &self.broker
    }
}

/// Which broker implementation to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerKind {
    /// [`Embedded`].
    Embedded,
    /// [`Mosquitto`] without persistence.
    Mosquitto,
    /// A three-node [`NatsCluster`] (JetStream, MQTT on every node).
    NatsCluster,
}

/// A running broker of either kind.
#[derive(Debug)]
pub enum TestBroker {
    /// The in-process rumqttd broker.
    Embedded(Embedded),
    /// A Mosquitto process.
    Mosquitto(Mosquitto),
    /// Three `nats-server` processes.
    NatsCluster(NatsCluster),
}

impl TestBroker {
    /// Starts a broker of `kind`. `Ok(None)` only for Mosquitto when it is not installed and
    /// `TANDEM_SKIP_MOSQUITTO=1` is set (see [`Mosquitto::start_or_skip`]).
    ///
    /// # Errors
    /// As [`Embedded::start`] and [`Mosquitto::start`].
    pub fn start(kind: BrokerKind) -> Result<Option<Self>> {
        Ok(match kind {
            BrokerKind::Embedded => Some(Self::Embedded(Embedded::start()?)),
            BrokerKind::Mosquitto => {
                Mosquitto::start_or_skip(MosquittoOptions::default())?.map(Self::Mosquitto)
            }
            BrokerKind::NatsCluster => Some(Self::NatsCluster(NatsCluster::start()?)),
        })
    }

    /// The broker's URL (a cluster's first node).
    #[must_use]
    pub fn url(&self) -> &BrokerUrl {
        match self {
            Self::Embedded(b) => b.url(),
            Self::Mosquitto(b) => b.url(),
            Self::NatsCluster(c) => c.url(0),
        }
    }

    /// Every node's URL: one for a single broker, each node's for a cluster.
    #[must_use]
    pub fn urls(&self) -> Vec<BrokerUrl> {
        match self {
            Self::NatsCluster(c) => c.urls().to_vec(),
            single => vec![single.url().clone()],
        }
    }

    /// The address it listens on (a cluster's first node).
    #[must_use]
    pub fn addr(&self) -> SocketAddr {
        match self {
            Self::Embedded(b) => b.addr(),
            Self::Mosquitto(b) => b.addr(),
            Self::NatsCluster(c) => {
                let url = c.url(0);
                url.host().parse().map_or_else(
                    |_| SocketAddr::from(([127, 0, 0, 1], url.port())),
                    |ip| SocketAddr::new(ip, url.port()),
                )
            }
        }
    }

    /// The broker's log, for failure messages (Mosquitto only; the embedded broker logs
    /// through `tracing`).
    #[must_use]
    pub fn log(&self) -> Option<String> {
        match self {
            Self::Embedded(_) => None,
            Self::Mosquitto(b) => Some(b.log()),
            Self::NatsCluster(c) => Some(c.log()),
        }
    }

    /// Which kind it is.
    #[must_use]
    pub fn kind(&self) -> BrokerKind {
        match self {
            Self::Embedded(_) => BrokerKind::Embedded,
            Self::Mosquitto(_) => BrokerKind::Mosquitto,
            Self::NatsCluster(_) => BrokerKind::NatsCluster,
        }
    }
}

impl From<Embedded> for TestBroker {
    fn from(broker: Embedded) -> Self {
        Self::Embedded(broker)
    }
}

impl From<Mosquitto> for TestBroker {
    fn from(broker: Mosquitto) -> Self {
        Self::Mosquitto(broker)
    }
}
