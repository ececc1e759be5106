//! MQTT probe clients for tests: a `rumqttc` 3.1.1 client whose event loop runs in a task,
//! with calls that wait for the broker's answer (CONNACK, SUBACK, PUBACK) and for incoming
//! publishes, each bounded by [`WAIT`]. A probe never reconnects: a lost connection is an
//! error the test sees.

use std::collections::VecDeque;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, Outgoing, Packet, Publish, QoS, SubscribeReasonCode};
use tandem_net::{BrokerUrl, ClientSettings, mqtt_options};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::error::{Error, Result};

/// How long a probe waits for anything the broker should do.
pub const WAIT: Duration = Duration::from_secs(5);

/// What the event loop task reports.
#[derive(Debug)]
enum Seen {
    Event(Event),
    Closed(String),
}

/// A connected MQTT client under test control.
#[derive(Debug)]
pub struct Probe {
    client_id: String,
    client: AsyncClient,
    events: mpsc::UnboundedReceiver<Seen>,
    inbox: VecDeque<Publish>,
    driver: JoinHandle<()>,
    session_present: bool,
}

impl Probe {
    /// Connects `client_id` to `url` with `settings` and waits for a successful CONNACK.
    ///
    /// # Errors
    /// [`Error::Net`] for settings `tandem-net` refuses, [`Error::Mqtt`] if the broker refuses
    /// or drops the connection, [`Error::Timeout`] if no CONNACK comes.
    pub async fn connect(
        url: &BrokerUrl,
        client_id: &str,
        settings: &ClientSettings,
    ) -> Result<Self> {
        let options = mqtt_options(url, client_id, settings)?;
        let (client, mut event_loop) = AsyncClient::new(options, 64);
        let (tx, events) = mpsc::unbounded_channel();
        let driver = tokio::spawn(async move {
            loop {
                match event_loop.poll().await {
                    Ok(event) => {
                        if tx.send(Seen::Event(event)).is_err() {
                            return;
                        }
                    }
                    Err(error) => {
                        let _ = tx.send(Seen::Closed(error.to_string()));
                        return;
                    }
                }
            }
        });
        let mut probe = Self {
            client_id: client_id.to_owned(),
            client,
            events,
            inbox: VecDeque::new(),
            driver,
            session_present: false,
        };
        probe.session_present = probe
            .wait_for("CONNACK", |event| match event {
                Event::Incoming(Packet::ConnAck(ack)) => Some(ack.session_present),
                _ => None,
            })
            .await?;
        Ok(probe)
    }

    /// Connects with a clean session (nothing kept when it leaves) and a 5 s keep-alive: an
    /// observer.
    ///
    /// # Errors
    /// As [`Probe::connect`].
    pub async fn observer(url: &BrokerUrl, client_id: &str) -> Result<Self> {
        let settings = ClientSettings {
            clean_session: true,
            keep_alive: Duration::from_secs(5),
            ..ClientSettings::default()
        };
        Self::connect(url, client_id, &settings).await
    }

    /// The client id.
    #[must_use]
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Whether the broker said it still had a session for this client id (CONNACK).
    #[must_use]
    pub fn session_present(&self) -> bool {
        self.session_present
    }

    /// The underlying client, for requests the probe does not wrap.
    #[must_use]
    pub fn client(&self) -> &AsyncClient {
        &self.client
    }

    /// Subscribes to `filter` and waits for the SUBACK; returns the granted QoS.
    ///
    /// # Errors
    /// [`Error::Mqtt`] if the broker refuses the subscription or the connection is lost,
    /// [`Error::Timeout`] if no SUBACK comes.
    pub async fn subscribe(&mut self, filter: &str, qos: QoS) -> Result<QoS> {
        self.client
            .subscribe(filter, qos)
            .await
            .map_err(|e| self.error(format!("subscribe to {filter}: {e}")))?;
        let what = format!("the SUBACK for {filter}");
        let pkid = self
            .wait_for(&what, |event| match event {
                Event::Outgoing(Outgoing::Subscribe(pkid)) => Some(*pkid),
                _ => None,
            })
            .await?;
        let codes = self
            .wait_for(&what, |event| match event {
                Event::Incoming(Packet::SubAck(ack)) if ack.pkid == pkid => {
                    Some(ack.return_codes.clone())
                }
                _ => None,
            })
            .await?;
        match codes.first() {
            Some(SubscribeReasonCode::Success(granted)) => Ok(*granted),
            _ => Err(self.error(format!("the broker refused the subscription to {filter}"))),
        }
    }

    /// Publishes at QoS 1 and waits for the broker's PUBACK.
    ///
    /// # Errors
    /// [`Error::Mqtt`] if the connection is lost, [`Error::Timeout`] if no PUBACK comes.
    pub async fn publish(&mut self, topic: &str, payload: &[u8], retain: bool) -> Result<()> {
        self.client
            .publish(topic, QoS::AtLeastOnce, retain, payload.to_vec())
            .await
            .map_err(|e| self.error(format!("publish to {topic}: {e}")))?;
        let what = format!("the PUBACK for a publish to {topic}");
        let pkid = self
            .wait_for(&what, |event| match event {
                Event::Outgoing(Outgoing::Publish(pkid)) => Some(*pkid),
                _ => None,
            })
            .await?;
        self.wait_for(&what, |event| match event {
            Event::Incoming(Packet::PubAck(ack)) if ack.pkid == pkid => Some(()),
            _ => None,
        })
        .await
    }

    /// The next message delivered to this client, waiting up to [`WAIT`].
    ///
    /// # Errors
    /// [`Error::Timeout`] if none comes, [`Error::Mqtt`] if the connection is lost.
    pub async fn next_publish(&mut self) -> Result<Publish> {
        self.next_publish_within(WAIT).await
    }

    /// The next message delivered to this client, waiting up to `timeout` (for what a broker
    /// does on a timer, such as declaring a silent client dead).
    ///
    /// # Errors
    /// [`Error::Timeout`] if none comes, [`Error::Mqtt`] if the connection is lost.
    pub async fn next_publish_within(&mut self, timeout: Duration) -> Result<Publish> {
        if let Some(publish) = self.inbox.pop_front() {
            return Ok(publish);
        }
        self.wait_within(timeout, "a PUBLISH", |event| match event {
            Event::Incoming(Packet::Publish(publish)) => Some(publish.clone()),
            _ => None,
        })
        .await
    }

    /// Disconnects cleanly: sends DISCONNECT and waits until the broker closes the connection
    /// (so the broker has finished with this session when this returns).
    ///
    /// # Errors
    /// [`Error::Mqtt`] if the request cannot be sent, [`Error::Timeout`] if the broker keeps
    /// the connection open.
    pub async fn disconnect(mut self) -> Result<()> {
        self.client
            .disconnect()
            .await
            .map_err(|e| self.error(format!("disconnect: {e}")))?;
        self.wait_for("DISCONNECT to be sent", |event| match event {
            Event::Outgoing(Outgoing::Disconnect) => Some(()),
            _ => None,
        })
        .await?;
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(Seen::Closed(_)) | None) => return Ok(()),
                Ok(Some(Seen::Event(_))) => {}
                Err(_) => {
                    return Err(Error::Timeout {
                        client_id: self.client_id.clone(),
                        what: "the broker to close the connection after DISCONNECT".to_owned(),
                        waited: WAIT,
                    });
                }
            }
        }
    }

    /// Kills the connection without DISCONNECT: the event loop (and with it the socket) is
    /// dropped, so the broker sees the TCP connection close with no goodbye, the way a
    /// crashed process looks.
    pub async fn drop_connection(mut self) {
        self.driver.abort();
        // Wait for the abort to take effect, so the socket is closed when this returns.
        let _ = (&mut self.driver).await;
    }

    /// Waits up to [`WAIT`] for an event `pick` accepts, keeping publishes it does not pick.
    async fn wait_for<T>(
        &mut self,
        what: &str,
        pick: impl FnMut(&Event) -> Option<T>,
    ) -> Result<T> {
        self.wait_within(WAIT, what, pick).await
    }

    /// Waits up to `timeout` for an event `pick` accepts, keeping publishes it does not pick.
    async fn wait_within<T>(
        &mut self,
        timeout: Duration,
        what: &str,
        mut pick: impl FnMut(&Event) -> Option<T>,
    ) -> Result<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let seen = match tokio::time::timeout_at(deadline, self.events.recv()).await {
                Ok(Some(seen)) => seen,
                Ok(None) => {
                    return Err(self.error(format!(
                        "the connection task ended while waiting for {what}"
                    )));
                }
                Err(_) => {
                    return Err(Error::Timeout {
                        client_id: self.client_id.clone(),
                        what: what.to_owned(),
                        waited: timeout,
                    });
                }
            };
            match seen {
                Seen::Closed(reason) => {
                    return Err(self.error(format!(
                        "connection lost while waiting for {what}: {reason}"
                    )));
                }
                Seen::Event(event) => {
                    if let Some(found) = pick(&event) {
                        return Ok(found);
                    }
                    if let Event::Incoming(Packet::Publish(publish)) = event {
                        self.inbox.push_back(publish);
                    }
                }
            }
        }
    }

    fn error(&self, reason: String) -> Error {
        Error::Mqtt {
            client_id: self.client_id.clone(),
            reason,
        }
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.driver.abort();
    }
}
