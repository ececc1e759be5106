//! One MQTT connection, driven by its owner's loop: [`Connection::next`] polls the `rumqttc`
//! event loop until something the owner cares about happens (a publish, a (re)connection, an
//! acknowledged publish) or its deadline passes. Publishing and subscribing only queue requests
//! (`try_*`), so they never wait on the loop that would serve them.
//!
//! Received QoS 1 publishes are acknowledged by the owner with [`Connection::ack`] once their
//! effects are committed to the store: a process killed before that gets them again from its
//! persistent session.

use std::time::Duration;

use rumqttc::{AsyncClient, ConnectionError, Event, EventLoop, Packet, Publish, QoS};
use tandem_net::{BrokerUrl, ClientSettings, mqtt_options};
use tokio::time::Instant;

use crate::{Error, Result};

/// Requests the client may queue before the loop takes them.
const REQUEST_CAPACITY: usize = 1024;
/// How long a disconnect waits for the broker to acknowledge what was published.
const FLUSH_WAIT: Duration = Duration::from_secs(3);
/// How long a first connection may fail before the broker is declared unreachable.
const FIRST_CONNECT_GRACE: Duration = Duration::from_secs(5);

/// What [`Connection::next`] returns.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// Connected (again); subscriptions are in place.
    Connected,
    /// A message arrived.
    Publish(Publish),
    /// The broker acknowledged one of our QoS 1 publishes.
    PubAck,
    /// The broker acknowledged a subscription.
    SubAck,
    /// The deadline passed.
    Timeout,
}

/// Topics every Tandem device uses.
pub(crate) mod topics {
    use tandem_crypto::{AccountId, DeviceId};

    /// A device's inbox.
    pub(crate) fn inbox(device: &DeviceId) -> String {
        format!("tandem/v1/dev/{device}/in")
    }

    /// An account's retained signed device list.
    pub(crate) fn devices(account: &AccountId) -> String {
        format!("tandem/v1/acct/{account}/devices")
    }
}

/// One client connection and its event loop.
pub(crate) struct Connection {
    url: BrokerUrl,
    client: AsyncClient,
    events: EventLoop,
    subscriptions: Vec<String>,
    subscribes_sent: u64,
    subacks: u64,
    published: u64,
    pubacks: u64,
    connected: bool,
    ever_connected: bool,
    failing_since: Option<Instant>,
    last_error: Option<String>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("url", &self.url.to_string())
            .field("subscriptions", &self.subscriptions)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// A connection to `url` as `client_id` (`persistent`: the broker keeps the session and
    /// queues QoS 1 messages while away). Nothing happens until [`Self::next`] runs.
    pub(crate) fn new(url: &str, client_id: &str, persistent: bool) -> Result<Self> {
        let url = BrokerUrl::parse(url).map_err(|e| Error::BadInput(e.to_string()))?;
        let settings = ClientSettings {
            clean_session: !persistent,
            ..ClientSettings::default()
        };
        let mut options =
            mqtt_options(&url, client_id, &settings).map_err(|e| Error::BadInput(e.to_string()))?;
        options.set_manual_acks(true);
        let (client, events) = AsyncClient::new(options, REQUEST_CAPACITY);
        Ok(Self {
            url,
            client,
            events,
            subscriptions: Vec::new(),
            subscribes_sent: 0,
            subacks: 0,
            published: 0,
            pubacks: 0,
            connected: false,
            ever_connected: false,
            failing_since: None,
            last_error: None,
        })
    }

    /// The broker's address.
    pub(crate) fn url(&self) -> String {
        self.url.to_string()
    }

    fn queue_failed(&self, e: &rumqttc::ClientError) -> Error {
        Error::Broker {
            url: self.url.to_string(),
            reason: format!("request queue: {e}"),
        }
    }

    /// Subscribes at QoS 1, and again after every reconnection. Before the first connection
    /// the request is queued in order with the publishes around it (so a subscription made
    /// before a publish is active before that publish is answered); while reconnecting it waits
    /// for the connection.
    pub(crate) fn subscribe(&mut self, topic: &str) -> Result<()> {
        if self.subscriptions.iter().any(|t| t == topic) {
            return Ok(());
        }
        self.subscriptions.push(topic.to_owned());
        if self.connected || !self.ever_connected {
            self.client
                .try_subscribe(topic, QoS::AtLeastOnce)
                .map_err(|e| self.queue_failed(&e))?;
            self.subscribes_sent += 1;
        }
        Ok(())
    }

    /// Whether the broker has acknowledged every subscription sent: messages published to
    /// those topics from now on reach this client.
    pub(crate) fn subscriptions_settled(&self) -> bool {
        self.connected && self.subacks >= self.subscribes_sent
    }

    /// Stops a subscription.
    pub(crate) fn unsubscribe(&mut self, topic: &str) -> Result<()> {
        self.subscriptions.retain(|t| t != topic);
        self.client
            .try_unsubscribe(topic)
            .map_err(|e| self.queue_failed(&e))
    }

    /// Publishes at QoS 1.
    pub(crate) fn publish(&mut self, topic: &str, payload: Vec<u8>, retain: bool) -> Result<()> {
        self.client
            .try_publish(topic, QoS::AtLeastOnce, retain, payload)
            .map_err(|e| self.queue_failed(&e))?;
        self.published += 1;
        Ok(())
    }

    /// Acknowledges a received publish (after its effects are stored).
    pub(crate) fn ack(&self, publish: &Publish) -> Result<()> {
        self.client
            .try_ack(publish)
            .map_err(|e| self.queue_failed(&e))
    }

    /// Ends the connection cleanly: waits (a little) until the broker has acknowledged every
    /// publish, so that a last message is not lost with the connection, then disconnects.
    /// Messages arriving meanwhile are left unacknowledged for the next session.
    pub(crate) async fn disconnect(mut self) {
        let flushed_by = Instant::now() + FLUSH_WAIT;
        while self.connected && self.pubacks < self.published {
            match self.next(Some(flushed_by)).await {
                Ok(Incoming::Timeout) | Err(_) => break,
                Ok(_) => {}
            }
        }
        if self.client.try_disconnect().is_ok() {
            let deadline = Instant::now() + Duration::from_secs(2);
            while let Ok(Ok(event)) = tokio::time::timeout_at(deadline, self.events.poll()).await {
                if matches!(event, Event::Outgoing(rumqttc::Outgoing::Disconnect)) {
                    break;
                }
            }
        }
    }

    /// Polls until something happens or `deadline` passes. Connection failures are retried
    /// (with a pause); a broker that never answered within a few seconds of the first attempt
    /// is an error.
    pub(crate) async fn next(&mut self, deadline: Option<Instant>) -> Result<Incoming> {
        loop {
            let polled = match deadline {
                Some(at) => match tokio::time::timeout_at(at, self.events.poll()).await {
                    Ok(polled) => polled,
                    Err(_) => return Ok(Incoming::Timeout),
                },
                None => self.events.poll().await,
            };
            match polled {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let reconnected = self.ever_connected;
                    self.connected = true;
                    self.ever_connected = true;
                    self.failing_since = None;
                    // The first connection sends the subscriptions queued before it; a
                    // reconnection renews them all (a broker that restarted has none).
                    let renew = if reconnected {
                        self.subscriptions.as_slice()
                    } else {
                        &[]
                    };
                    for topic in renew {
                        self.client
                            .try_subscribe(topic.as_str(), QoS::AtLeastOnce)
                            .map_err(|e| self.queue_failed(&e))?;
                    }
                    if reconnected {
                        // Acks of the lost connection will not come; its unacknowledged
                        // publishes are sent again by rumqttc.
                        self.subacks = 0;
                        self.subscribes_sent = renew.len() as u64;
                        self.pubacks = self.pubacks.min(self.published);
                    }
                    return Ok(Incoming::Connected);
                }
                Ok(Event::Incoming(Packet::Publish(p))) => return Ok(Incoming::Publish(p)),
                Ok(Event::Incoming(Packet::PubAck(_))) => {
                    self.pubacks += 1;
                    return Ok(Incoming::PubAck);
                }
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    self.subacks += 1;
                    return Ok(Incoming::SubAck);
                }
                Ok(_) => {}
                Err(e) => self.on_error(e, deadline).await?,
            }
        }
    }

    async fn on_error(&mut self, e: ConnectionError, deadline: Option<Instant>) -> Result<()> {
        self.connected = false;
        let now = Instant::now();
        let reason = e.to_string();
        let since = *self.failing_since.get_or_insert(now);
        if !self.ever_connected && now.duration_since(since) >= FIRST_CONNECT_GRACE {
            return Err(Error::Broker {
                url: self.url.to_string(),
                reason,
            });
        }
        if self.last_error.as_deref() != Some(reason.as_str()) {
            tracing::warn!(broker = %self.url, error = %reason, "broker connection lost; retrying");
            self.last_error = Some(reason);
        }
        let pause = Instant::now() + Duration::from_millis(500);
        let until = deadline.map_or(pause, |d| d.min(pause));
        tokio::time::sleep_until(until).await;
        Ok(())
    }
}
