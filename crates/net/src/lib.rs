//! Tandem networking: the embedded MQTT broker and the MQTT client plumbing.
//!
//! - [`EmbeddedBroker`] ([`broker`]): rumqttd inside the process, what `tandem broker` runs.
//! - [`BrokerUrl`] ([`url`]): `mqtt://host[:port]` and `mqtts://host[:port]` (TLS) broker
//!   addresses.
//! - [`mqtt_options`] ([`client`]): the `rumqttc` options a Tandem device connects with,
//!   including its [`Credentials`] ([`credentials`]) and, for `mqtts://`, the TLS transport
//!   and the CAs it trusts ([`TlsTrust`], [`tls`]).
//!
//! Deploying a broker with TLS, per-device passwords and per-device topic ACLs (Mosquitto,
//! EMQX, VerneMQ) is described in `docs/broker/README.md`.
//!
//! # What Tandem relies on, and what rumqttd 0.20 does
//!
//! Checked by the conformance suite (`tests/tests/mqtt_conformance.rs`, run against this
//! embedded broker and against Mosquitto 2.0.11) and by this crate's tests; rumqttd's
//! source (`router/routing.rs`, `server/broker.rs`) says why. All of it holds with the
//! configuration [`BrokerConfig::new`] builds; nothing needed a workaround beyond
//! `dynamic_filters = true`.
//!
//! - **QoS 1 publish/subscribe**: the broker acknowledges (PUBACK) and delivers at QoS 1.
//! - **Persistent sessions** (clean session off, same client id): when the client leaves,
//!   cleanly or not, rumqttd keeps its subscriptions and read positions; QoS 1 messages
//!   published meanwhile are delivered in order when it comes back, with `session_present`
//!   set. A clean session keeps nothing. A second connection with the same client id takes
//!   the session over and closes the first without publishing its will.
//! - **Retained messages**: a later subscriber gets the newest one, with the retain flag; an
//!   empty retained publish clears it. Quirk: rumqttd also clears it on an empty publish
//!   *without* the retain flag (MQTT says it should not); Tandem publishes empty payloads
//!   only to clear.
//! - **Last Will**: published when the connection ends without DISCONNECT (the socket
//!   closes, or the client is silent for 1.5 x its keep-alive: 1.5 s for 1 s), not after a
//!   DISCONNECT; a retained will replaces the retained "online" presence.
//!   MQTT 3.1.1 has no will delay: rumqttd publishes at once. (Mosquitto checks keep-alives
//!   only every 5 s, so it takes 5 to 6 s to notice a silent 1 s client.)
//!
//! # Limits of the embedded broker
//!
//! - **Memory only.** Sessions, queued messages and retained messages live in rumqttd's
//!   router and are lost when the process exits; use Mosquitto (persistence) or a cluster
//!   where that matters.
//! - **Bounded offline queues.** Messages live in one in-memory log per topic filter of
//!   [`BrokerConfig::segment_size`] x [`BrokerConfig::segment_count`] bytes (16 MiB x 8 by
//!   default); when it is full the oldest segment is dropped, even if an offline persistent
//!   session has not read it. A publish to a topic that no subscription matches creates a
//!   log for that topic (rumqttd's "dynamic filters"), kept until the process exits.
//! - **Fixed in-flight.** rumqttd sends at most 100 unacknowledged QoS 1 messages per
//!   connection (hard-coded).
//! - **Client ids** holding `+`, `#`, `/` or `$` are dropped by rumqttd without a CONNACK,
//!   and a keep-alive of 0 is refused: [`mqtt_options`] refuses both up front.
//! - **No access control.** rumqttd 0.20 has username/password authentication but no
//!   per-topic ACLs; the embedded broker runs with neither (anonymous, for a trusted network).
//! - **Stopping.** Dropping an [`EmbeddedBroker`] closes its listeners and connections, but
//!   rumqttd's router thread cannot be ended and stays parked until the process exits (see
//!   [`EmbeddedBroker::stop`]).
//! - **MQTT 5** can be served too, on a second port ([`BrokerConfig::listen_v5`]); Tandem's
//!   clients speak 3.1.1.
//!
//! # Logging
//!
//! rumqttd logs through `tracing` under the target `rumqttd`; nothing is printed unless the
//! program installs a subscriber. It reports ordinary events at ERROR level (a client going
//! away, the start-up probe connection closing before CONNECT), so a program should filter
//! that target by default, e.g. `EnvFilter::new("info,rumqttd=off")`, and enable it only
//! to debug the broker.

pub mod broker;
pub mod client;
pub mod credentials;
mod error;
pub mod tls;
pub mod url;

pub use broker::{BrokerConfig, EmbeddedBroker};
pub use client::{ClientSettings, DEFAULT_KEEP_ALIVE, MAX_PACKET_SIZE, Will, mqtt_options};
pub use credentials::{Credentials, Password};
pub use error::{Error, Result};
pub use tls::TlsTrust;
pub use url::{BrokerList, BrokerUrl, DEFAULT_PORT, DEFAULT_TLS_PORT, Scheme};
