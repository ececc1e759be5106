//! One MQTT connection, driven by its owner's loop: [`Connection::next`] polls the `rumqttc`
//! event loop until something the owner cares about happens (a publish, a (re)connection, an
//! acknowledged publish) or its deadline passes. Publishing and subscribing only queue requests
//! (`try_*`), so they never wait on the loop that would serve them.
//!
//! Received QoS 1 publishes are acknowledged by the owner with [`Connection::ack`] once their
//! effects are committed to the store: a process killed before that gets them again from its
//! persistent session.
//!
//! A full request queue is backpressure, not a failure: `rumqttc` stops taking requests while
//! its in-flight window waits for the broker's acknowledgements (a slow broker, a cluster
//! electing a new leader), and the requests that find no room are held here, in order, and
//! handed over as the loop takes them again.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, MqttOptions, Outgoing, Packet, Publish, QoS,
};
use tandem_net::{BrokerList, BrokerUrl, ClientSettings, mqtt_options};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::{Error, Result};

/// Requests the client may queue before the loop takes them.
const REQUEST_CAPACITY: usize = 1024;
/// Held requests are logged (at debug) every this many.
const HELD_WARNING: usize = 1024;
/// How long a disconnect waits for the broker to acknowledge what was published.
const FLUSH_WAIT: Duration = Duration::from_secs(3);
/// How long a first connection may fail before the broker is declared unreachable.
const FIRST_CONNECT_GRACE: Duration = Duration::from_secs(5);
/// The first pause between connection attempts.
const MIN_BACKOFF: Duration = Duration::from_millis(250);
/// The longest pause between connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(8);
/// Failed attempts on one broker of a list before the next one is tried.
const FAILOVER_AFTER: u32 = 2;

/// One result of polling the event loop.
type Polled = std::result::Result<Event, ConnectionError>;

/// A request that found `rumqttc`'s request queue full, held until it has room.
#[derive(Debug)]
enum Held {
    Publish {
        topic: String,
        qos: QoS,
        retain: bool,
        payload: Vec<u8>,
        tag: Option<i64>,
    },
    Ack(Publish),
    Subscribe(String),
    Unsubscribe(String),
}

/// Events the driver task may poll ahead of its owner.
const POLLED_CAPACITY: usize = 256;

/// Polls `events` on its own task and hands every result over in order, with the index of the
/// broker it came from. `rumqttc`'s `poll` is not cancel-safe (a packet taken from the request
/// queue can be left unwritten, or written and unflushed, when the future is dropped), so the
/// owner, which waits on deadlines and on other work, only ever waits on this channel. After a
/// failed poll the task pauses (doubling up to [`MAX_BACKOFF`], reset by a connection) before
/// it tries again; after [`FAILOVER_AFTER`] failures in a row it moves on to the next of
/// `brokers` (the same client id and session settings, so a cluster's node keeps the session).
fn spawn_driver(
    mut events: EventLoop,
    brokers: Vec<MqttOptions>,
) -> (mpsc::Receiver<(usize, Polled)>, JoinHandle<()>) {
    let (tx, rx) = mpsc::channel(POLLED_CAPACITY);
    let task = tokio::spawn(async move {
        let mut backoff = MIN_BACKOFF;
        let mut current = 0;
        let mut failures = 0;
        loop {
            let polled = events.poll().await;
            let failed = polled.is_err();
            if matches!(polled, Ok(Event::Incoming(Packet::ConnAck(_)))) {
                backoff = MIN_BACKOFF;
                failures = 0;
            }
            if tx.send((current, polled)).await.is_err() {
                return;
            }
            if failed {
                failures += 1;
                if brokers.len() > 1 && failures >= FAILOVER_AFTER {
                    current = (current + 1) % brokers.len();
                    if let Some(next) = brokers.get(current) {
                        events.mqtt_options = next.clone();
                    }
                    failures = 0;
                    backoff = MIN_BACKOFF;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    });
    (rx, task)
}

/// What [`Connection::next`] returns.
#[derive(Debug)]
pub(crate) enum Incoming {
    /// Connected (again); subscriptions are in place.
    Connected,
    /// A message arrived.
    Publish(Publish),
    /// The broker acknowledged one of our QoS 1 publishes (with the tag it was published with,
    /// see [`Connection::publish_tagged`]).
    PubAck(Option<i64>),
    /// The broker acknowledged a subscription.
    SubAck,
    /// The deadline passed.
    Timeout,
    /// The connection went down (or the broker did not answer); retrying. Reported once per
    /// outage.
    Down(String),
}

/// Topics every Tandem device uses. A device appears in them by its broker name
/// (`{account}-{index}`, see [`tandem_crypto::DeviceId::broker_name`]), never with a `.`:
/// NATS' MQTT interface refuses those.
pub(crate) mod topics {
    use tandem_crypto::{AccountId, DeviceId};

    /// A device's inbox.
    pub(crate) fn inbox(device: &DeviceId) -> String {
        format!("tandem/v1/dev/{}/in", device.broker_name())
    }

    /// An account's retained signed device list, under its primary device (so that a broker
    /// ACL can let only that client write it).
    pub(crate) fn devices(account: &AccountId) -> String {
        format!(
            "tandem/v1/dev/{}/devices",
            DeviceId::primary(*account).broker_name()
        )
    }

    /// A device's retained presence (and its Last Will).
    pub(crate) fn presence(device: &DeviceId) -> String {
        format!("tandem/v1/dev/{}/presence", device.broker_name())
    }
}

/// One client connection and its event loop.
pub(crate) struct Connection {
    /// The brokers to try, in order.
    brokers: BrokerList,
    /// The broker of the latest connection (an index in `brokers`).
    current: usize,
    client: AsyncClient,
    /// The event loop until the first poll moves it into its driver task.
    events: Option<EventLoop>,
    /// Each broker's options, for the driver task's failover.
    options: Vec<MqttOptions>,
    /// What the driver task polled, in order, with the broker it came from.
    polled: Option<mpsc::Receiver<(usize, Polled)>>,
    /// A polled result taken out of order by [`Connection::ready_pubacks`], returned first.
    stashed: Option<(usize, Polled)>,
    driver: Option<JoinHandle<()>>,
    subscriptions: Vec<String>,
    subscribes_sent: u64,
    subacks: u64,
    published: u64,
    pubacks: u64,
    /// Tags of publishes queued but not yet seen leaving, in order (`None`: untagged).
    queued_tags: VecDeque<Option<i64>>,
    /// Tags of publishes sent and not yet acknowledged, by packet id.
    inflight_tags: HashMap<u16, i64>,
    /// A publish held back by a packet-id collision, with its tag.
    collided: Option<(u16, Option<i64>)>,
    connected: bool,
    ever_connected: bool,
    failing_since: Option<Instant>,
    last_error: Option<String>,
    /// Keep retrying a broker that never answered (a long-running session) instead of failing.
    patient: bool,
    /// Whether this outage was reported.
    reported: bool,
    /// A reconnection found no session on the broker: the publishes in flight were dropped
    /// by `rumqttc` and must be published again by their owner.
    lost_in_flight: bool,
    /// Requests the request queue had no room for, oldest first (every later request waits
    /// behind them, so that the broker sees them in the order they were made).
    held: VecDeque<Held>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("brokers", &self.brokers.to_string())
            .field("subscriptions", &self.subscriptions)
            .finish_non_exhaustive()
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        if let Some(task) = self.driver.take() {
            task.abort();
        }
    }
}

impl Connection {
    /// A connection to `url` as `client_id` (`persistent`: the broker keeps the session and
    /// queues QoS 1 messages while away). Nothing happens until [`Self::next`] runs.
    pub(crate) fn new(url: &str, client_id: &str, persistent: bool) -> Result<Self> {
        Self::with_will(url, client_id, persistent, None)
    }

    /// [`Self::new`] with a Last Will the broker publishes if the connection dies uncleanly.
    pub(crate) fn with_will(
        url: &str,
        client_id: &str,
        persistent: bool,
        will: Option<tandem_net::Will>,
    ) -> Result<Self> {
        let settings = ClientSettings {
            clean_session: !persistent,
            last_will: will,
            ..ClientSettings::default()
        };
        Self::with_settings(url, client_id, settings)
    }

    /// A connection with every setting given (login, TLS trust, session, will). `url` may
    /// name several brokers of one deployment (`mqtt://a:1883,mqtt://b:1883`): the first is
    /// tried first, and the connection fails over to the next when the one it is on is
    /// unreachable or dies.
    pub(crate) fn with_settings(
        url: &str,
        client_id: &str,
        settings: ClientSettings,
    ) -> Result<Self> {
        let brokers = BrokerList::parse(url).map_err(|e| Error::BadInput(e.to_string()))?;
        let options = brokers
            .urls()
            .iter()
            .map(|url| {
                let mut options = mqtt_options(url, client_id, &settings)
                    .map_err(|e| Error::BadInput(e.to_string()))?;
                options.set_manual_acks(true);
                Ok(options)
            })
            .collect::<Result<Vec<_>>>()?;
        let first = options
            .first()
            .cloned()
            .ok_or_else(|| Error::BadInput("no broker to connect to".into()))?;
        let (client, mut events) = AsyncClient::new(first, REQUEST_CAPACITY);
        // Small packets both ways (a publish, then its acknowledgement): without TCP_NODELAY,
        // Nagle's algorithm meeting the peer's delayed ACK holds one for up to 40 ms.
        let mut network = events.network_options();
        network.set_tcp_nodelay(true);
        events.set_network_options(network);
        Ok(Self {
            brokers,
            current: 0,
            client,
            events: Some(events),
            options,
            polled: None,
            stashed: None,
            driver: None,
            subscriptions: Vec::new(),
            subscribes_sent: 0,
            subacks: 0,
            published: 0,
            pubacks: 0,
            queued_tags: VecDeque::new(),
            inflight_tags: HashMap::new(),
            collided: None,
            connected: false,
            ever_connected: false,
            failing_since: None,
            last_error: None,
            patient: false,
            reported: false,
            lost_in_flight: false,
            held: VecDeque::new(),
        })
    }

    /// The tags of the acknowledgements already received and waiting behind the one just
    /// returned, so that their owner handles a burst in one store transaction. Stops at the
    /// first event that is not an acknowledgement (kept for the next [`Connection::next`]).
    pub(crate) fn ready_pubacks(&mut self) -> Vec<i64> {
        let mut tags = Vec::new();
        if self.stashed.is_some() {
            return tags;
        }
        let Some(mut rx) = self.polled.take() else {
            return tags;
        };
        while let Ok((from, polled)) = rx.try_recv() {
            match polled {
                Ok(Event::Incoming(Packet::PubAck(ack))) => {
                    self.pubacks += 1;
                    if let Some(tag) = self.inflight_tags.remove(&ack.pkid) {
                        tags.push(tag);
                    }
                }
                Ok(Event::Outgoing(outgoing)) => self.on_outgoing(&outgoing),
                other => {
                    self.stashed = Some((from, other));
                    break;
                }
            }
        }
        self.polled = Some(rx);
        tags
    }

    /// Whether a reconnection lost the publishes in flight (the broker kept no session);
    /// asking clears it.
    pub(crate) fn take_lost_in_flight(&mut self) -> bool {
        std::mem::take(&mut self.lost_in_flight)
    }

    /// Makes a broker that does not answer at first a retried outage (reported as
    /// [`Incoming::Down`]) instead of an error: for sessions that run until stopped.
    pub(crate) fn set_patient(&mut self) {
        self.patient = true;
    }

    /// The address of the broker of the latest connection (the first one before any).
    pub(crate) fn url(&self) -> String {
        self.current_url()
            .map_or_else(|| self.brokers.to_string(), ToString::to_string)
    }

    /// The broker connected now, if the connection is up.
    pub(crate) fn connected_url(&self) -> Option<String> {
        self.connected.then(|| self.url())
    }

    fn current_url(&self) -> Option<&BrokerUrl> {
        self.brokers.urls().get(self.current)
    }

    fn queue_failed(&self, e: &rumqttc::ClientError) -> Error {
        Error::Broker {
            url: self.url(),
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
            self.request(Held::Subscribe(topic.to_owned()))?;
        }
        Ok(())
    }

    /// Whether the broker has acknowledged every subscription sent: messages published to
    /// those topics from now on reach this client.
    pub(crate) fn subscriptions_settled(&self) -> bool {
        self.connected
            && self.subacks >= self.subscribes_sent
            && !self.held.iter().any(|h| matches!(h, Held::Subscribe(_)))
    }

    /// Stops a subscription.
    pub(crate) fn unsubscribe(&mut self, topic: &str) -> Result<()> {
        self.subscriptions.retain(|t| t != topic);
        self.request(Held::Unsubscribe(topic.to_owned()))
    }

    /// Publishes at QoS 1.
    pub(crate) fn publish(&mut self, topic: &str, payload: Vec<u8>, retain: bool) -> Result<()> {
        self.send(topic, QoS::AtLeastOnce, retain, payload, None)
    }

    /// Publishes at QoS 1; the broker's acknowledgement comes back as
    /// [`Incoming::PubAck`]`(Some(tag))` (an outbox row id), also after a reconnection.
    pub(crate) fn publish_tagged(&mut self, topic: &str, payload: Vec<u8>, tag: i64) -> Result<()> {
        self.send(topic, QoS::AtLeastOnce, false, payload, Some(tag))
    }

    /// Publishes at QoS 0 (presence, typing): no acknowledgement, lost if the link is down.
    pub(crate) fn publish_once(
        &mut self,
        topic: &str,
        payload: Vec<u8>,
        retain: bool,
    ) -> Result<()> {
        self.send(topic, QoS::AtMostOnce, retain, payload, None)
    }

    fn send(
        &mut self,
        topic: &str,
        qos: QoS,
        retain: bool,
        payload: Vec<u8>,
        tag: Option<i64>,
    ) -> Result<()> {
        self.request(Held::Publish {
            topic: topic.to_owned(),
            qos,
            retain,
            payload,
            tag,
        })
    }

    /// Hands `request` to the request queue, or holds it (behind any held before it) while
    /// the queue is full.
    fn request(&mut self, request: Held) -> Result<()> {
        self.held.push_back(request);
        self.hand_over_held()
    }

    /// Hands the held requests over, oldest first, until the queue is full again.
    fn hand_over_held(&mut self) -> Result<()> {
        while let Some(request) = self.held.pop_front() {
            let offered = match &request {
                Held::Publish {
                    topic,
                    qos,
                    retain,
                    payload,
                    ..
                } => self
                    .client
                    .try_publish(topic.as_str(), *qos, *retain, payload.clone()),
                Held::Ack(publish) => self.client.try_ack(publish),
                Held::Subscribe(topic) => {
                    self.client.try_subscribe(topic.as_str(), QoS::AtLeastOnce)
                }
                Held::Unsubscribe(topic) => self.client.try_unsubscribe(topic.as_str()),
            };
            match offered {
                Ok(()) => match request {
                    Held::Publish { qos, tag, .. } => {
                        self.queued_tags.push_back(tag);
                        if qos != QoS::AtMostOnce {
                            self.published += 1;
                        }
                    }
                    Held::Subscribe(_) => self.subscribes_sent += 1,
                    Held::Ack(_) | Held::Unsubscribe(_) => {}
                },
                // Full (the loop stopped taking requests while its in-flight window waits
                // for acknowledgements): held until the loop moves again. A queue whose loop
                // is gone fails the next poll instead.
                Err(rumqttc::ClientError::TryRequest(_)) => {
                    if self.held.len() >= HELD_WARNING
                        && self.held.len().is_multiple_of(HELD_WARNING)
                    {
                        tracing::debug!(
                            held = self.held.len() + 1,
                            "requests held: the queue is full"
                        );
                    }
                    self.held.push_front(request);
                    return Ok(());
                }
                Err(e) => return Err(self.queue_failed(&e)),
            }
        }
        Ok(())
    }

    /// Follows a publish leaving the client: a new one takes the next queued tag; a packet id
    /// already in flight is a retransmission after a reconnection and keeps its tag.
    fn on_outgoing(&mut self, outgoing: &Outgoing) {
        match *outgoing {
            Outgoing::Publish(pkid) => {
                if pkid != 0 && self.inflight_tags.contains_key(&pkid) {
                    return;
                }
                let tag = match self.collided {
                    Some((held, tag)) if held == pkid => {
                        self.collided = None;
                        tag
                    }
                    _ => self.queued_tags.pop_front().flatten(),
                };
                if let (Some(tag), true) = (tag, pkid != 0) {
                    self.inflight_tags.insert(pkid, tag);
                }
            }
            Outgoing::AwaitAck(pkid) => {
                let tag = self.queued_tags.pop_front().flatten();
                self.collided = Some((pkid, tag));
            }
            _ => {}
        }
    }

    /// Acknowledges a received publish (after its effects are stored).
    pub(crate) fn ack(&mut self, publish: &Publish) -> Result<()> {
        self.request(Held::Ack(publish.clone()))
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
            while let Ok(Some((_, Ok(event)))) =
                tokio::time::timeout_at(deadline, self.poll()).await
            {
                if matches!(event, Event::Outgoing(rumqttc::Outgoing::Disconnect)) {
                    break;
                }
            }
        }
    }

    /// The next polled result, from the driver task (started on the first call), with the
    /// broker it came from. Cancel-safe.
    async fn poll(&mut self) -> Option<(usize, Polled)> {
        if let Some(stashed) = self.stashed.take() {
            return Some(stashed);
        }
        if let Some(events) = self.events.take() {
            let (rx, task) = spawn_driver(events, std::mem::take(&mut self.options));
            self.polled = Some(rx);
            self.driver = Some(task);
        }
        match &mut self.polled {
            Some(rx) => rx.recv().await,
            None => None,
        }
    }

    /// Polls until something happens or `deadline` passes. Connection failures are retried
    /// (with a pause); a broker that never answered within a few seconds of the first attempt
    /// is an error.
    pub(crate) async fn next(&mut self, deadline: Option<Instant>) -> Result<Incoming> {
        loop {
            self.hand_over_held()?;
            let polled = match deadline {
                Some(at) => match tokio::time::timeout_at(at, self.poll()).await {
                    Ok(polled) => polled,
                    Err(_) => return Ok(Incoming::Timeout),
                },
                None => self.poll().await,
            };
            let Some((from, polled)) = polled else {
                return Err(Error::Broker {
                    url: self.url(),
                    reason: "the connection's event loop stopped".into(),
                });
            };
            match polled {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                    if from != self.current {
                        let to = self.brokers.urls().get(from).map(ToString::to_string);
                        tracing::info!(from = %self.url(), to = to.as_deref().unwrap_or(""), "failed over to another broker");
                    }
                    self.current = from;
                    let reconnected = self.ever_connected;
                    if reconnected && !ack.session_present {
                        // rumqttc drops what was in flight when the broker kept no session.
                        self.inflight_tags.clear();
                        self.collided = None;
                        self.lost_in_flight = true;
                    }
                    self.connected = true;
                    self.ever_connected = true;
                    self.failing_since = None;
                    self.reported = false;
                    self.last_error = None;
                    // The first connection sends the subscriptions queued before it; a
                    // reconnection renews them all (a broker that restarted has none).
                    if reconnected {
                        // Acks of the lost connection will not come; its unacknowledged
                        // publishes are sent again by rumqttc.
                        self.subacks = 0;
                        self.subscribes_sent = 0;
                        self.pubacks = self.pubacks.min(self.published);
                        // Subscriptions still held go with the renewal below.
                        self.held.retain(|h| !matches!(h, Held::Subscribe(_)));
                        let renew: Vec<Held> = self
                            .subscriptions
                            .iter()
                            .cloned()
                            .map(Held::Subscribe)
                            .collect();
                        for request in renew {
                            self.request(request)?;
                        }
                    }
                    return Ok(Incoming::Connected);
                }
                Ok(Event::Incoming(Packet::Publish(p))) => return Ok(Incoming::Publish(p)),
                Ok(Event::Incoming(Packet::PubAck(ack))) => {
                    self.pubacks += 1;
                    return Ok(Incoming::PubAck(self.inflight_tags.remove(&ack.pkid)));
                }
                Ok(Event::Outgoing(outgoing)) => self.on_outgoing(&outgoing),
                Ok(Event::Incoming(Packet::SubAck(_))) => {
                    self.subacks += 1;
                    return Ok(Incoming::SubAck);
                }
                Ok(_) => {}
                Err(e) => {
                    if let Some(reason) = self.on_error(&e, from)? {
                        return Ok(Incoming::Down(reason));
                    }
                }
            }
        }
    }

    /// Handles a failed poll (the driver task pauses before the next attempt) and returns the
    /// reason the first time an outage is seen.
    fn on_error(&mut self, e: &ConnectionError, from: usize) -> Result<Option<String>> {
        self.connected = false;
        let broker = self
            .brokers
            .urls()
            .get(from)
            .map_or_else(|| self.url(), ToString::to_string);
        let now = Instant::now();
        let reason = e.to_string();
        let since = *self.failing_since.get_or_insert(now);
        if !self.ever_connected && !self.patient && now.duration_since(since) >= FIRST_CONNECT_GRACE
        {
            return Err(Error::Broker {
                url: self.brokers.to_string(),
                reason,
            });
        }
        if self.last_error.as_deref() != Some(reason.as_str()) {
            tracing::warn!(%broker, error = %reason, "broker connection lost; retrying");
            self.last_error = Some(reason.clone());
        }
        if self.reported {
            return Ok(None);
        }
        self.reported = true;
        Ok(Some(format!(
            "broker {broker} unreachable ({reason}); retrying"
        )))
    }
}

#[cfg(test)]
#[path = "mqtt_tests.rs"]
mod tests;
