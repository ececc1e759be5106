//! A three-node NATS cluster with JetStream and an MQTT listener on every node, as a
//! distributed deployment runs Tandem: Debian's `nats-server` (2.9), one config file per node
//! written in a temporary directory, free loopback ports, each node's JetStream store in its
//! own folder. A node can be stopped, killed and started again on the same ports and store;
//! every process is killed on drop.
//!
//! NATS keeps MQTT sessions, queued QoS 1 messages and retained messages in JetStream,
//! replicated across the nodes: a client may leave one node and come back on another.
//!
//! Known limit of 2.9 (measured here): MQTT topics holding a `.` are refused (NATS subjects
//! use it as their separator; 2.10 maps it), so only dot-free topics work on it.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use tandem_net::{BrokerList, BrokerUrl};
use tempfile::TempDir;

use crate::error::{Error, Result, io};
use crate::mosquitto::{Process, find_program, free_port, tail};

/// Environment variable naming the `nats-server` binary to use.
pub const NATS_ENV: &str = "TANDEM_NATS_SERVER";

/// Nodes in the cluster.
pub const NODES: usize = 3;

/// How long the cluster may take to elect its JetStream leader and answer MQTT on every node.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The ports of one node.
#[derive(Debug, Clone, Copy)]
struct Ports {
    client: SocketAddr,
    cluster: SocketAddr,
    mqtt: SocketAddr,
}

/// A running three-node cluster. Dropping it kills every node.
#[derive(Debug)]
pub struct NatsCluster {
    // Declared before `dir`: the processes die before their folders are removed.
    nodes: Vec<Process>,
    urls: Vec<BrokerUrl>,
    dir: TempDir,
}

impl NatsCluster {
    /// Starts three nodes on free loopback ports and returns once every node answers an MQTT
    /// CONNECT (which needs the JetStream cluster to have a leader).
    ///
    /// # Errors
    /// [`Error::NatsMissing`] when `nats-server` is not found; [`Error::Io`],
    /// [`Error::Exited`] or [`Error::NotReady`] when the cluster does not come up.
    pub fn start() -> Result<Self> {
        let binary = find_binary()?;
        // Ports found by binding port 0 can be taken before the nodes bind them: start over
        // with fresh ones when that happens.
        let mut attempt = 0;
        loop {
            attempt += 1;
            match Self::start_once(&binary) {
                Err(Error::Exited { log, .. }) if attempt < 3 && log.contains("in use") => {}
                other => return other,
            }
        }
    }

    fn start_once(binary: &Path) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("tandem-nats-")
            .tempdir()
            .map_err(io("create a temporary directory for the NATS cluster"))?;
        let mut ports = Vec::with_capacity(NODES);
        for _ in 0..NODES {
            ports.push(Ports {
                client: free_port()?,
                cluster: free_port()?,
                mqtt: free_port()?,
            });
        }
        let routes: Vec<SocketAddr> = ports.iter().map(|p| p.cluster).collect();
        let mut nodes = Vec::with_capacity(NODES);
        let mut urls = Vec::with_capacity(NODES);
        for (index, node) in ports.iter().enumerate() {
            let name = format!("n{}", index + 1);
            let config = dir.path().join(format!("{name}.conf"));
            let log = dir.path().join(format!("{name}.log"));
            let text = config_text(&name, *node, &routes, dir.path(), &log);
            std::fs::write(&config, text).map_err(io(format!("write {}", config.display())))?;
            nodes.push(Process {
                what: format!("NATS node {name}"),
                binary: binary.to_path_buf(),
                config,
                log,
                addr: node.mqtt,
                child: None,
            });
            urls.push(BrokerUrl::from_socket_addr(node.mqtt)?);
        }
        for node in &mut nodes {
            node.spawn_and_wait()?;
        }
        let cluster = Self { nodes, urls, dir };
        for node in 0..NODES {
            cluster.wait_ready(node)?;
        }
        Ok(cluster)
    }

    /// Each node's MQTT URL, in node order.
    #[must_use]
    pub fn urls(&self) -> &[BrokerUrl] {
        &self.urls
    }

    /// Node `node`'s MQTT URL (`node` taken modulo the number of nodes).
    #[must_use]
    pub fn url(&self, node: usize) -> &BrokerUrl {
        // `urls` holds NODES entries, never none.
        let index = node % self.urls.len().max(1);
        self.urls
            .get(index)
            .or_else(|| self.urls.first())
            .unwrap_or_else(|| unreachable!("a cluster always has nodes"))
    }

    /// Every node, as the broker list a device is given (`mqtt://a,mqtt://b,mqtt://c`).
    #[must_use]
    pub fn list(&self) -> String {
        BrokerList::from_urls(self.urls.iter().cloned())
            .map(|l| l.to_string())
            .unwrap_or_default()
    }

    /// The folder holding the configs, logs and stores.
    #[must_use]
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The end of every node's log, for failure messages.
    #[must_use]
    pub fn log(&self) -> String {
        let mut out = String::new();
        for node in &self.nodes {
            let _ = writeln!(out, "--- {} ---\n{}", node.what, tail(&node.log()));
        }
        out
    }

    /// Stops node `node` (SIGTERM; SIGKILL after 5 s). Its clients lose their connection.
    ///
    /// # Errors
    /// [`Error::Io`] if it cannot be signalled.
    pub fn stop_node(&mut self, node: usize) -> Result<()> {
        match self.nodes.get_mut(node) {
            Some(process) => process.stop_gracefully(),
            None => Ok(()),
        }
    }

    /// Kills node `node` (SIGKILL: a machine lost).
    pub fn kill_node(&mut self, node: usize) {
        if let Some(process) = self.nodes.get_mut(node) {
            process.kill();
        }
    }

    /// Starts node `node` again on its ports and store, and returns once it answers MQTT.
    ///
    /// # Errors
    /// As [`NatsCluster::start`].
    pub fn start_node(&mut self, node: usize) -> Result<()> {
        if let Some(process) = self.nodes.get_mut(node) {
            process.spawn_and_wait()?;
        }
        self.wait_ready(node)
    }

    /// Waits until node `node` accepts an MQTT session: a CONNECT answered with an accepting
    /// CONNACK.
    fn wait_ready(&self, node: usize) -> Result<()> {
        let addr = self.nodes.get(node).map_or_else(
            || SocketAddr::from(([127, 0, 0, 1], 0)),
            |process| process.addr,
        );
        let started = Instant::now();
        loop {
            if mqtt_connect_accepted(addr, &format!("tandem-ready-{node}")) {
                return Ok(());
            }
            if started.elapsed() > READY_TIMEOUT {
                return Err(Error::NotReady {
                    what: format!("NATS node n{} (MQTT)", node + 1),
                    addr,
                    waited: READY_TIMEOUT,
                    log: self.log(),
                });
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// One node's config: its name, client, cluster and MQTT listeners, the routes to every node,
/// its JetStream store and its log file.
fn config_text(name: &str, ports: Ports, routes: &[SocketAddr], dir: &Path, log: &Path) -> String {
    let mut text = String::from("# written by tandem-tests\n");
    let _ = writeln!(text, "server_name: {name}");
    let _ = writeln!(text, "listen: {}", ports.client);
    let _ = writeln!(text, "log_file: {:?}", log.display().to_string());
    let store = dir.join(format!("{name}-jetstream"));
    let _ = writeln!(
        text,
        "jetstream {{ store_dir: {:?} }}",
        store.display().to_string()
    );
    let routes: Vec<String> = routes.iter().map(|r| format!("nats-route://{r}")).collect();
    let _ = writeln!(
        text,
        "cluster {{\n  name: tandem\n  listen: {}\n  routes: [{}]\n}}",
        ports.cluster,
        routes.join(", ")
    );
    let _ = writeln!(text, "mqtt {{ listen: {} }}", ports.mqtt);
    text
}

/// Whether an MQTT 3.1.1 CONNECT (clean session) to `addr` gets an accepting CONNACK within a
/// second.
fn mqtt_connect_accepted(addr: SocketAddr, client_id: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_secs(1)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let id = client_id.as_bytes();
    let Ok(id_len) = u16::try_from(id.len()) else {
        return false;
    };
    // Variable header: protocol name "MQTT", level 4, flags (clean session), keep alive 10 s.
    let mut body = vec![0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x0a];
    body.extend_from_slice(&id_len.to_be_bytes());
    body.extend_from_slice(id);
    let Ok(remaining) = u8::try_from(body.len()) else {
        return false;
    };
    let mut packet = vec![0x10, remaining];
    packet.extend_from_slice(&body);
    if stream.write_all(&packet).is_err() {
        return false;
    }
    let mut connack = [0u8; 4];
    let accepted = stream.read_exact(&mut connack).is_ok() && connack == [0x20, 0x02, 0x00, 0x00];
    // DISCONNECT, so the node forgets the probe at once.
    let _ = stream.write_all(&[0xe0, 0x00]);
    accepted
}

fn find_binary() -> Result<PathBuf> {
    find_binary_in(std::env::var_os(NATS_ENV), std::env::var_os("PATH"))
}

fn find_binary_in(explicit: Option<OsString>, path: Option<OsString>) -> Result<PathBuf> {
    find_program("nats-server", NATS_ENV, explicit, path, |searched| {
        Error::NatsMissing { searched }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_binary_fails_and_says_how_to_install_it() {
        let e = find_binary_in(Some("/nonexistent/nats-server".into()), None).unwrap_err();
        assert!(matches!(e, Error::NatsMissing { .. }), "{e}");
        assert!(e.to_string().contains("apt-get install nats-server"), "{e}");
    }

    #[test]
    fn each_node_config_names_itself_its_listeners_and_every_route() {
        let addr = |port| SocketAddr::from(([127, 0, 0, 1], port));
        let ports = Ports {
            client: addr(4001),
            cluster: addr(5001),
            mqtt: addr(6001),
        };
        let text = config_text(
            "n1",
            ports,
            &[addr(5001), addr(5002), addr(5003)],
            Path::new("/tmp/x"),
            Path::new("/tmp/x/n1.log"),
        );
        for line in [
            "server_name: n1",
            "listen: 127.0.0.1:4001",
            "log_file: \"/tmp/x/n1.log\"",
            "jetstream { store_dir: \"/tmp/x/n1-jetstream\" }",
            "  listen: 127.0.0.1:5001",
            "  routes: [nats-route://127.0.0.1:5001, nats-route://127.0.0.1:5002, nats-route://127.0.0.1:5003]",
            "mqtt { listen: 127.0.0.1:6001 }",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing in:\n{text}"
            );
        }
    }

    #[test]
    fn a_cluster_starts_answers_mqtt_on_every_node_and_survives_a_node_restart() {
        let mut cluster = NatsCluster::start().unwrap();
        assert_eq!(cluster.urls().len(), NODES);
        for node in 0..NODES {
            let probe = format!("probe-{node}");
            assert!(mqtt_connect_accepted(cluster.nodes[node].addr, &probe));
        }
        cluster.kill_node(1);
        assert!(!mqtt_connect_accepted(
            cluster.nodes[1].addr,
            "probe-killed"
        ));
        cluster.start_node(1).unwrap();
        assert!(mqtt_connect_accepted(cluster.nodes[1].addr, "probe-back"));
        assert_eq!(cluster.list().split(',').count(), NODES);
    }
}
