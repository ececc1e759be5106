//! The one error type of `tandem-net`: what can go wrong starting the embedded broker and
//! turning a broker URL and client settings (credentials, TLS trust) into MQTT connection
//! options.

use std::net::SocketAddr;
use std::time::Duration;

/// Everything that can fail in `tandem-net`.
///
/// Every variant carries what a user needs to act on it: the address, URL, client id or value
/// that was refused, and why.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The embedded broker could not listen on `addr` (typically: the port is taken, or the
    /// address is not one of this machine's). The source is the bind error reported by the
    /// broker (or by the probe that found the free port).
    #[error("the embedded MQTT broker cannot listen on {addr}: {source}")]
    Listen {
        /// The address that could not be bound.
        addr: SocketAddr,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },

    /// The broker thread started but the address did not accept TCP connections in time.
    #[error("the embedded MQTT broker did not accept connections on {addr} within {waited:?}")]
    NotReady {
        /// The address that was probed.
        addr: SocketAddr,
        /// How long the start waited.
        waited: Duration,
    },

    /// The broker thread ended before it was ready, without a bind error.
    #[error("the embedded MQTT broker on {addr} stopped while starting: {reason}")]
    Stopped {
        /// The address it was meant to serve.
        addr: SocketAddr,
        /// What ended it.
        reason: String,
    },

    /// The operating system refused to start the broker's thread.
    #[error("cannot start the embedded MQTT broker thread: {0}")]
    Thread(#[source] std::io::Error),

    /// A broker setting is outside what the broker accepts.
    #[error("invalid embedded broker setting `{setting}` = {value}: {reason}")]
    BrokerSetting {
        /// The name of the [`crate::BrokerConfig`] field.
        setting: &'static str,
        /// The refused value, printed.
        value: String,
        /// Why it is refused.
        reason: &'static str,
    },

    /// A broker URL could not be parsed.
    #[error("invalid broker URL {url:?}: {reason}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A broker URL names a scheme Tandem does not speak (WebSocket, `ssl://`, `http://`...).
    #[error("unsupported broker URL scheme `{scheme}` in {url:?}: {reason}")]
    UnsupportedScheme {
        /// The URL as given.
        url: String,
        /// The scheme part, before `://`.
        scheme: String,
        /// Why it cannot be used.
        reason: &'static str,
    },

    /// An MQTT client id that a broker would refuse (or, with rumqttd, silently never answer).
    #[error("invalid MQTT client id {client_id:?}: {reason}")]
    BadClientId {
        /// The refused client id.
        client_id: String,
        /// Why it is refused.
        reason: &'static str,
    },

    /// A client setting is outside what MQTT (or the client library) accepts.
    #[error("invalid MQTT client setting `{setting}` = {value}: {reason}")]
    ClientSetting {
        /// The name of the [`crate::ClientSettings`] field.
        setting: &'static str,
        /// The refused value, printed.
        value: String,
        /// Why it is refused.
        reason: &'static str,
    },

    /// TLS cannot be set up as asked: TLS trust given for a plain `mqtt://` URL, a CA
    /// certificate file holding no usable certificate, or no trusted roots on this system.
    #[error("cannot set up TLS for {url}: {reason}")]
    Tls {
        /// The broker URL (it never holds credentials).
        url: String,
        /// What is wrong, and what to do about it.
        reason: String,
    },

    /// A Last Will topic that MQTT does not allow to publish to.
    #[error("invalid Last Will topic {topic:?}: {reason}")]
    BadWillTopic {
        /// The refused topic.
        topic: String,
        /// Why it is refused.
        reason: &'static str,
    },
}

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
