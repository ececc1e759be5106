//! MQTT client plumbing: turning a [`BrokerUrl`], a client id and [`ClientSettings`] into the
//! `rumqttc` connection options Tandem devices use.
//!
//! This module owns the checks that would otherwise surface as a panic inside `rumqttc`
//! (an empty client id with a persistent session, a sub-second keep-alive, zero in-flight) or
//! as a connection that a broker silently never answers (rumqttd ignores a CONNECT whose
//! client id holds `+`, `#`, `/` or `$`), and applies the credentials and the TLS transport
//! ([`crate::tls`]). Every refusal is a typed [`Error`].

use std::time::Duration;

use rumqttc::{LastWill, MqttOptions, QoS};

use crate::credentials::Credentials;
use crate::error::{Error, Result};
use crate::tls::{self, TlsTrust};
use crate::url::BrokerUrl;

/// The largest MQTT packet (remaining length, in bytes) Tandem sends or accepts by default:
/// 1 MiB, well above an envelope. The embedded broker uses the same limit.
pub const MAX_PACKET_SIZE: usize = 1024 * 1024;

/// The largest remaining length the MQTT wire format can express (256 MiB - 1).
const MQTT_MAX_REMAINING_LENGTH: usize = 268_435_455;

/// The longest string MQTT can carry (a two-byte length prefix).
const MQTT_MAX_STRING: usize = 65_535;

/// The default keep-alive: how often an idle client pings, and (times 1.5) how long a broker
/// waits on a silent connection before it declares it dead and publishes its Last Will.
pub const DEFAULT_KEEP_ALIVE: Duration = Duration::from_secs(30);

/// A Last Will: what the broker publishes on the client's behalf when its connection dies
/// without a DISCONNECT (Tandem uses it for "offline" presence).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Will {
    /// The topic to publish to (no wildcards).
    pub topic: String,
    /// The payload.
    pub payload: Vec<u8>,
    /// Delivery guarantee of the will publish.
    pub qos: QoS,
    /// Whether the broker keeps it as the topic's retained message.
    pub retain: bool,
}

impl Will {
    /// A will publishing `payload` to `topic` at QoS 1.
    #[must_use]
    pub fn new(topic: impl Into<String>, payload: impl Into<Vec<u8>>, retain: bool) -> Self {
        Self {
            topic: topic.into(),
            payload: payload.into(),
            qos: QoS::AtLeastOnce,
            retain,
        }
    }
}

/// How a Tandem client connects, apart from where (the URL) and who (the client id).
///
/// New fields come with a default: build it as
/// `ClientSettings { clean_session: true, ..ClientSettings::default() }`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientSettings {
    /// Keep-alive, in whole seconds from 1 s to 65535 s (rumqttd refuses 0).
    pub keep_alive: Duration,
    /// Largest packet sent or accepted (remaining length, bytes).
    pub max_packet_size: usize,
    /// Unacknowledged QoS 1 publishes the client keeps in flight (at least 1).
    pub inflight: u16,
    /// `false` (the default): the broker keeps the session (subscriptions and queued QoS 1
    /// messages) while the client is away. `true`: every connect starts empty.
    pub clean_session: bool,
    /// The Last Will, if any.
    pub last_will: Option<Will>,
    /// The username and password to log in with; `None` (the default) connects without
    /// (anonymous, as the embedded broker and a pairing listener allow).
    ///
    /// Over `mqtt://` they travel in clear text: use `mqtts://` beyond loopback or a
    /// trusted network.
    pub credentials: Option<Credentials>,
    /// For `mqtts://` URLs: the CA certificate(s) to trust. `None` (the default) trusts the
    /// operating system's CA store (see [`crate::tls`]). Setting it for an `mqtt://` URL is
    /// an error, not silently ignored.
    pub tls: Option<TlsTrust>,
}

impl Default for ClientSettings {
    fn default() -> Self {
        Self {
            keep_alive: DEFAULT_KEEP_ALIVE,
            max_packet_size: MAX_PACKET_SIZE,
            inflight: 100,
            clean_session: false,
            last_will: None,
            credentials: None,
            tls: None,
        }
    }
}

/// Builds the `rumqttc` (MQTT 3.1.1) options for `client_id` connecting to `url`: over TLS
/// for `mqtts://` (trusting [`ClientSettings::tls`]), with [`ClientSettings::credentials`]
/// when given.
///
/// # Errors
/// [`Error::BadClientId`], [`Error::ClientSetting`] or [`Error::BadWillTopic`] when a value
/// would make `rumqttc` panic or a broker refuse (or ignore) the connection;
/// [`Error::Tls`] when TLS cannot be set up (TLS trust for an `mqtt://` URL, a CA PEM with no
/// usable certificate, no trusted roots on the system, a host no certificate can name).
pub fn mqtt_options(
    url: &BrokerUrl,
    client_id: &str,
    settings: &ClientSettings,
) -> Result<MqttOptions> {
    check_client_id(client_id)?;
    check_keep_alive(settings.keep_alive)?;
    if settings.max_packet_size < 64 || settings.max_packet_size > MQTT_MAX_REMAINING_LENGTH {
        return Err(Error::ClientSetting {
            setting: "max_packet_size",
            value: settings.max_packet_size.to_string(),
            reason: "must be between 64 bytes and 268435455 bytes (the MQTT maximum)",
        });
    }
    if settings.inflight == 0 {
        return Err(Error::ClientSetting {
            setting: "inflight",
            value: "0".to_owned(),
            reason: "at least one publish must be allowed in flight",
        });
    }
    let mut options = MqttOptions::new(client_id, url.host(), url.port());
    options
        .set_keep_alive(settings.keep_alive)
        .set_max_packet_size(settings.max_packet_size, settings.max_packet_size)
        .set_inflight(settings.inflight)
        .set_clean_session(settings.clean_session);
    if let Some(will) = &settings.last_will {
        check_will_topic(&will.topic)?;
        if will.payload.len() > settings.max_packet_size {
            return Err(Error::ClientSetting {
                setting: "last_will.payload",
                value: format!("{} bytes", will.payload.len()),
                reason: "the Last Will payload is larger than max_packet_size",
            });
        }
        options.set_last_will(LastWill::new(
            will.topic.clone(),
            will.payload.clone(),
            will.qos,
            will.retain,
        ));
    }
    if let Some(credentials) = &settings.credentials {
        check_credentials(credentials)?;
        options.set_credentials(
            credentials.username.clone(),
            credentials.password.expose().to_owned(),
        );
    }
    options.set_transport(tls::transport(url, settings.tls.as_ref())?);
    Ok(options)
}

/// A username and password MQTT can carry and brokers accept.
fn check_credentials(credentials: &Credentials) -> Result<()> {
    let username = &credentials.username;
    let bad_username = |reason| Error::ClientSetting {
        setting: "credentials.username",
        value: format!("{username:?}"),
        reason,
    };
    if username.is_empty() {
        return Err(bad_username(
            "an empty username is not a login; leave credentials unset to connect anonymously",
        ));
    }
    if username.len() > MQTT_MAX_STRING {
        return Err(bad_username("longer than 65535 bytes"));
    }
    if username.contains('\0') {
        return Err(bad_username("the NUL character is not allowed"));
    }
    if credentials.password.len() > MQTT_MAX_STRING {
        return Err(Error::ClientSetting {
            setting: "credentials.password",
            value: format!("{} bytes", credentials.password.len()),
            reason: "longer than 65535 bytes",
        });
    }
    Ok(())
}

/// A client id both Mosquitto and rumqttd accept for a persistent session.
fn check_client_id(client_id: &str) -> Result<()> {
    let bad = |reason| Error::BadClientId {
        client_id: client_id.to_owned(),
        reason,
    };
    if client_id.is_empty() {
        return Err(bad("a persistent session needs a non-empty client id"));
    }
    if client_id.len() > MQTT_MAX_STRING {
        return Err(bad("longer than 65535 bytes"));
    }
    if client_id.contains(['+', '#', '/', '$']) {
        return Err(bad(
            "`+`, `#`, `/` and `$` are not allowed (rumqttd never answers such a connect)",
        ));
    }
    if client_id.chars().any(char::is_control) {
        return Err(bad("control characters are not allowed"));
    }
    Ok(())
}

fn check_keep_alive(keep_alive: Duration) -> Result<()> {
    let secs = keep_alive.as_secs();
    if keep_alive.subsec_nanos() != 0 || secs == 0 || secs > u64::from(u16::MAX) {
        return Err(Error::ClientSetting {
            setting: "keep_alive",
            value: format!("{keep_alive:?}"),
            reason: "must be a whole number of seconds from 1 to 65535 (rumqttd refuses 0)",
        });
    }
    Ok(())
}

fn check_will_topic(topic: &str) -> Result<()> {
    let bad = |reason| Error::BadWillTopic {
        topic: topic.to_owned(),
        reason,
    };
    if topic.is_empty() {
        return Err(bad("the topic is empty"));
    }
    if topic.len() > MQTT_MAX_STRING {
        return Err(bad("longer than 65535 bytes"));
    }
    if topic.contains(['+', '#']) {
        return Err(bad(
            "wildcards `+` and `#` are only allowed in subscriptions",
        ));
    }
    if topic.contains('\0') {
        return Err(bad("the NUL character is not allowed"));
    }
    Ok(())
}

#[cfg(test)]
#[path = "client_tests.rs"]
mod tests;
