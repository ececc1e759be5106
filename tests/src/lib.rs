//! The harness of Tandem's end-to-end tests: real brokers, real processes, probe clients.
//!
//! - [`Mosquitto`] / [`Embedded`] / [`TestBroker`] ([`mosquitto`], [`brokers`]): brokers on
//!   free 127.0.0.1 ports, stopped on drop, so one suite runs against each.
//! - [`Probe`] ([`mqtt`]): an MQTT client whose calls wait for the broker's answers;
//!   [`acl`]: derived device logins, topics and connect outcomes for the broker-rule stories.
//! - [`TcpProxy`] ([`proxy`]): a connection a test can freeze or cut.
//! - [`bin`] / [`ChildGuard`] ([`process`]): the workspace's binaries, and processes that die
//!   with the test.
//! - [`App`] / [`Display`] / [`SessionBus`] / [`NotificationWatch`] ([`app`]): the desktop
//!   app's real window on a virtual screen, driven over WebDriver, and the desktop
//!   notifications it asks for.
//!
//! Mosquitto must be installed: a missing `mosquitto` fails the tests that need it unless
//! `TANDEM_SKIP_MOSQUITTO=1` is set (see [`Mosquitto::start_or_skip`]). The app tests need
//! `Xvfb`, `dbus-daemon`, `dbus-monitor` and `WebKitWebDriver`: a missing one fails them.

pub mod acl;
pub mod app;
pub mod brokers;
pub mod cli;
mod error;
pub mod mosquitto;
pub mod mqtt;
pub mod nats;
pub mod process;
pub mod proxy;

pub use app::{App, AppOptions, Display, Notification, NotificationWatch, SessionBus};
pub use brokers::{BrokerKind, Embedded, TestBroker};
pub use error::{Error, Result};
pub use mosquitto::{Mosquitto, MosquittoOptions};
pub use mqtt::{Probe, WAIT};
pub use nats::NatsCluster;
pub use process::{ChildGuard, bin};
pub use proxy::TcpProxy;
