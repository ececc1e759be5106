//! What the broker-rule stories (`broker_acl` on Mosquitto, `nats_acl` on a NATS cluster)
//! share: devices' logins derived as a phone derives them, their topics, and probes that read
//! up to a marker or report how a CONNECT ended.

use rumqttc::{AsyncClient, ConnectReturnCode, ConnectionError, Event, Packet, Publish};
use tandem_crypto::broker_auth::{BrokerSecret, device_password};
use tandem_crypto::{AccountId, DeviceId};
use tandem_net::{BrokerUrl, ClientSettings, Credentials, mqtt_options};

use crate::Result;
use crate::mqtt::{Probe, WAIT};

/// The broker name (`{account}-{index}`) of device `index` of the test account whose id is
/// `account` repeated.
#[must_use]
pub fn device_name(account: u8, index: u32) -> String {
    DeviceId::new(AccountId::from_bytes([account; 16]), index).broker_name()
}

/// A broker secret per account of the stories (made from the text before the dash), so that
/// the devices of one account share it, as a phone's devices do.
#[must_use]
pub fn account_secret(device: &str) -> BrokerSecret {
    let account = device.split('-').next().unwrap_or(device);
    let mut bytes = [0u8; 32];
    for (b, a) in bytes.iter_mut().zip(account.bytes().cycle()) {
        *b = a;
    }
    BrokerSecret::from_bytes(&bytes)
}

/// `device`'s login: its broker name and the password its account's secret derives.
#[must_use]
pub fn login(device: &str) -> Credentials {
    let password = device_password(&account_secret(device), device);
    Credentials::new(device, password.into_zeroizing())
}

/// `device`'s inbox topic.
#[must_use]
pub fn inbox(device: &str) -> String {
    format!("tandem/v1/dev/{device}/in")
}

/// `device`'s retained device-list topic.
#[must_use]
pub fn devices(device: &str) -> String {
    format!("tandem/v1/dev/{device}/devices")
}

/// `device`'s retained presence topic.
#[must_use]
pub fn presence(device: &str) -> String {
    format!("tandem/v1/dev/{device}/presence")
}

/// A publish's payload as text.
#[must_use]
pub fn text(publish: &Publish) -> String {
    String::from_utf8_lossy(&publish.payload).into_owned()
}

/// Everything `probe` receives up to and including the publish whose payload is `marker`.
/// A broker delivers one client's messages in order, so anything published to the same
/// reader before the marker has arrived by then.
///
/// # Errors
/// As [`Probe::next_publish`] (nothing within its wait, or the connection lost).
pub async fn until_marker(probe: &mut Probe, marker: &str) -> Result<Vec<Publish>> {
    let mut seen = Vec::new();
    loop {
        let publish = probe.next_publish().await?;
        let done = text(&publish) == marker;
        seen.push(publish);
        if done {
            return Ok(seen);
        }
    }
}

/// How a connection attempt ends: the broker's CONNACK code, or the error before one.
#[derive(Debug)]
pub enum Outcome {
    /// The broker answered with this code.
    Connack(ConnectReturnCode),
    /// The connection ended before a CONNACK.
    Failed(String),
}

/// Connects once as `client_id` with `settings` and reports how the broker answered
/// (settings that make no client options are a [`Outcome::Failed`] too).
pub async fn connect_outcome(
    url: &BrokerUrl,
    client_id: &str,
    settings: &ClientSettings,
) -> Outcome {
    let options = match mqtt_options(url, client_id, settings) {
        Ok(options) => options,
        Err(e) => return Outcome::Failed(format!("no client options: {e}")),
    };
    let (_client, mut events) = AsyncClient::new(options, 10);
    let polled = tokio::time::timeout(WAIT, async {
        loop {
            match events.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => return Outcome::Connack(ack.code),
                Ok(_) => {}
                Err(ConnectionError::ConnectionRefused(code)) => return Outcome::Connack(code),
                Err(other) => return Outcome::Failed(format!("{other:?}: {other}")),
            }
        }
    })
    .await;
    polled.unwrap_or_else(|_| Outcome::Failed("no answer within the wait".to_owned()))
}
