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
//!
//! Two flavours:
//! - [`NatsCluster::start`]: plain MQTT, anonymous, no permissions (the conformance suite).
//! - [`NatsCluster::deployed`]: the deployment shipped in `docs/broker/`: each node runs the
//!   shipped `nats-node.conf`, adapted only in ports, paths and the route hosts, with
//!   certificates made by the shipped `make-certs.sh` and the users file written by the
//!   shipped `tandem-nats-users` script: MQTT over TLS, a login per device, per-device
//!   permissions, anonymous clients kept to the pairing topics, routes over mutual TLS.

use std::ffi::OsString;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use tandem_net::{BrokerList, BrokerUrl, ClientSettings, Credentials, Scheme, TlsTrust};
use tempfile::TempDir;

use crate::error::{Error, Result, io};
use crate::mosquitto::{
    Process, find_program, free_ports, make_certs, password_lines, run, shipped_config_dir, tail,
};
use crate::mqtt::Probe;

/// Environment variable naming the `nats-server` binary to use.
pub const NATS_ENV: &str = "TANDEM_NATS_SERVER";

/// Nodes in the cluster.
pub const NODES: usize = 3;

/// How long the cluster may take to elect its JetStream leader and answer MQTT on every node.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// The shipped node configuration in `docs/broker/`.
const NODE_CONF: &str = "nats-node.conf";

/// The shipped script that writes the users file.
const USERS_SCRIPT: &str = "tandem-nats-users";

/// The users file in the deployed cluster's folder (what `nats-node.conf` includes).
const USERS_FILE: &str = "users.conf";

/// Where the shipped configuration expects its certificates and users file.
const SHIPPED_FILES_DIR: &str = "/etc/nats/tandem/";

/// What nats-server 2.9 logs once it has reloaded its configuration (SIGHUP).
const RELOAD_LINE: &str = "Reloaded server configuration";

/// The ports of one node.
#[derive(Debug, Clone, Copy)]
struct Ports {
    client: SocketAddr,
    cluster: SocketAddr,
    mqtt: SocketAddr,
}

impl Ports {
    /// The ports of every node of a cluster, and one more per node (`extra`, e.g. for
    /// monitoring), all distinct.
    fn free_for_cluster() -> Result<Vec<(Self, SocketAddr)>> {
        let found = free_ports(NODES * 4)?;
        Ok(found
            .chunks_exact(4)
            .filter_map(|four| match *four {
                [client, cluster, mqtt, extra] => Some((
                    Self {
                        client,
                        cluster,
                        mqtt,
                    },
                    extra,
                )),
                _ => None,
            })
            .collect())
    }
}

/// A running three-node cluster. Dropping it kills every node.
#[derive(Debug)]
pub struct NatsCluster {
    // Declared before `dir`: the processes die before their folders are removed.
    nodes: Vec<Process>,
    urls: Vec<BrokerUrl>,
    /// Each node's cluster (route) address, in node order.
    routes: Vec<SocketAddr>,
    /// Each node's monitoring (HTTP) address: the deployed flavour's only.
    monitoring: Vec<SocketAddr>,
    /// The deployed flavour's CA (PEM); `None` for the plain one.
    ca_pem: Option<Vec<u8>>,
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
        let ports: Vec<Ports> = Ports::free_for_cluster()?
            .into_iter()
            .map(|(ports, _)| ports)
            .collect();
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
        let cluster = Self {
            nodes,
            urls,
            routes,
            monitoring: Vec::new(),
            ca_pem: None,
            dir,
        };
        for node in 0..NODES {
            cluster.wait_ready(node)?;
        }
        Ok(cluster)
    }

    /// Starts the deployment shipped in `docs/broker/` as three nodes on free loopback ports:
    /// makes a CA and a server certificate naming 127.0.0.1 (`make-certs.sh`), writes the
    /// users file from `logins` with the shipped `tandem-nats-users` script, runs each node
    /// with the shipped `nats-node.conf` (only ports, paths and route hosts changed), and
    /// returns once every node accepts an anonymous MQTT session over TLS (the pairing user:
    /// JetStream has a leader, the certificate and the users file are loaded) and node 1 the
    /// first of `logins` (the devices' account has made its MQTT streams). URLs are
    /// `mqtts://`; clients trust [`Self::tls_trust`].
    ///
    /// # Errors
    /// [`Error::NatsMissing`] when `nats-server` is not found; [`Error::Exited`] when
    /// `make-certs.sh`, the users script or a node fails; [`Error::Io`] when a file cannot be
    /// written or the shipped configuration no longer holds the lines the test replaces;
    /// [`Error::NotReady`] when the cluster does not come up.
    pub fn deployed(logins: &[Credentials]) -> Result<Self> {
        let binary = find_binary()?;
        let shipped = shipped_config_dir();
        let conf_path = shipped.join(NODE_CONF);
        let shipped_text = std::fs::read_to_string(&conf_path)
            .map_err(io(format!("read {}", conf_path.display())))?;
        let dir = tempfile::Builder::new()
            .prefix("tandem-nats-deployed-")
            .tempdir()
            .map_err(io("create a temporary directory for the NATS cluster"))?;
        make_certs(&shipped, dir.path())?;
        write_users(dir.path(), logins)?;
        let ca_path = dir.path().join("ca.crt");
        let ca_pem = std::fs::read(&ca_path).map_err(io(format!("read {}", ca_path.display())))?;

        let mut attempt = 0;
        loop {
            attempt += 1;
            let ports = Ports::free_for_cluster()?;
            let routes: Vec<SocketAddr> = ports.iter().map(|(p, _)| p.cluster).collect();
            let mut nodes = Vec::with_capacity(NODES);
            let mut urls = Vec::with_capacity(NODES);
            let mut monitoring = Vec::with_capacity(NODES);
            for (index, (node, http)) in ports.iter().enumerate() {
                let name = format!("n{}", index + 1);
                let http = *http;
                monitoring.push(http);
                let text =
                    deployed_config_text(&shipped_text, &name, *node, http, &routes, dir.path())
                        .map_err(|reason| Error::Io {
                            what: format!("adapt {} for the test", conf_path.display()),
                            source: std::io::Error::new(std::io::ErrorKind::InvalidData, reason),
                        })?;
                let config = dir.path().join(format!("{name}.conf"));
                std::fs::write(&config, text).map_err(io(format!("write {}", config.display())))?;
                nodes.push(Process {
                    what: format!("NATS node {name}"),
                    binary: binary.clone(),
                    config,
                    log: dir.path().join(format!("{name}.log")),
                    addr: node.mqtt,
                    child: None,
                });
                urls.push(BrokerUrl::from_socket_addr_with(Scheme::Mqtts, node.mqtt)?);
            }
            let started = nodes.iter_mut().try_for_each(Process::spawn_and_wait);
            match started {
                Ok(()) => {}
                Err(Error::Exited { log, .. }) if attempt < 3 && log.contains("in use") => {
                    // Start over on fresh ports with empty stores and logs.
                    drop(nodes);
                    for index in 1..=NODES {
                        let _ = std::fs::remove_file(dir.path().join(format!("n{index}.log")));
                        let _ =
                            std::fs::remove_dir_all(dir.path().join(format!("n{index}-jetstream")));
                    }
                    continue;
                }
                Err(e) => return Err(e),
            }
            let cluster = Self {
                nodes,
                urls,
                routes,
                monitoring,
                ca_pem: Some(ca_pem),
                dir,
            };
            for node in 0..NODES {
                cluster.wait_ready(node)?;
            }
            // The devices' account makes its MQTT streams at its first session: have it done
            // before the tests' clients come, each with a few seconds for its CONNACK.
            if let Some(login) = logins.first() {
                cluster.wait_for_login(login)?;
            }
            return Ok(cluster);
        }
    }

    /// Each node's cluster (route) address, in node order.
    #[must_use]
    pub fn route_addrs(&self) -> &[SocketAddr] {
        &self.routes
    }

    /// Node `node`'s monitoring (HTTP) address: `None` for the plain cluster, which has none.
    #[must_use]
    pub fn monitoring_addr(&self, node: usize) -> Option<SocketAddr> {
        self.monitoring.get(node).copied()
    }

    /// The deployed cluster's CA certificate (PEM); empty for the plain cluster.
    #[must_use]
    pub fn ca_pem(&self) -> &[u8] {
        self.ca_pem.as_deref().unwrap_or_default()
    }

    /// The deployed cluster's CA as the TLS trust clients connect with.
    #[must_use]
    pub fn tls_trust(&self) -> TlsTrust {
        TlsTrust::from_ca_pem(self.ca_pem().to_vec())
    }

    /// Registers more devices while the cluster runs, the way an operator does: runs the
    /// shipped `tandem-nats-users` on the users file with the new lines, then reloads every
    /// node (SIGHUP) and returns once each has logged its reload.
    ///
    /// # Errors
    /// [`Error::Exited`] if the script fails, [`Error::Io`] if a node cannot be signalled,
    /// [`Error::NotReady`] if a node does not log a reload.
    pub fn register(&self, logins: &[Credentials]) -> Result<()> {
        write_users(self.dir(), logins)?;
        for node in &self.nodes {
            let reloads_before = node.log().matches(RELOAD_LINE).count();
            let Some(pid) = node.pid() else {
                continue;
            };
            run(
                Command::new("kill").arg("-HUP").arg(pid.to_string()),
                &format!("kill -HUP {pid} ({})", node.what),
            )?;
            let started = Instant::now();
            while node.log().matches(RELOAD_LINE).count() <= reloads_before {
                if started.elapsed() > READY_TIMEOUT {
                    return Err(Error::NotReady {
                        what: format!("{} to reload its configuration", node.what),
                        addr: node.addr,
                        waited: READY_TIMEOUT,
                        log: tail(&node.log()),
                    });
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Ok(())
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

    /// Waits until node 1 accepts `login` (TLS, clean session, a client id of the harness).
    fn wait_for_login(&self, login: &Credentials) -> Result<()> {
        let addr = self.nodes.first().map_or_else(
            || SocketAddr::from(([127, 0, 0, 1], 0)),
            |process| process.addr,
        );
        let started = Instant::now();
        while !tls_connect_accepted(
            addr,
            self.ca_pem(),
            "tandem-ready-login",
            Some(login.clone()),
        ) {
            if started.elapsed() > READY_TIMEOUT {
                return Err(Error::NotReady {
                    what: format!("NATS node n1 (MQTT login of {})", login.username),
                    addr,
                    waited: READY_TIMEOUT,
                    log: self.log(),
                });
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        Ok(())
    }

    /// Waits until node `node` accepts an MQTT session: a CONNECT answered with an accepting
    /// CONNACK.
    fn wait_ready(&self, node: usize) -> Result<()> {
        let addr = self.nodes.get(node).map_or_else(
            || SocketAddr::from(([127, 0, 0, 1], 0)),
            |process| process.addr,
        );
        let started = Instant::now();
        let client_id = format!("tandem-ready-{node}");
        loop {
            let ready = match &self.ca_pem {
                None => mqtt_connect_accepted(addr, &client_id),
                Some(ca) => tls_connect_accepted(addr, ca, &client_id, None),
            };
            if ready {
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

/// The shipped `nats-node.conf` adapted to node `name` of a test: its listeners on `ports`
/// (monitoring on `http`), its routes to `routes`, its store and log in `dir`, the users file
/// and certificates from `dir`. Every placeholder line must be found once, and no line may
/// be left naming a host of the example or a file outside `dir`: a shipped file that changed
/// shape fails here, loudly.
fn deployed_config_text(
    shipped: &str,
    name: &str,
    ports: Ports,
    http: SocketAddr,
    routes: &[SocketAddr],
    dir: &Path,
) -> Result<String, String> {
    let quoted = |path: PathBuf| format!("{:?}", path.display().to_string());
    let route = |index: usize| {
        routes
            .get(index)
            .map(|r| format!("nats-route://{r}"))
            .unwrap_or_default()
    };
    let rules = [
        ("server_name: nats1", format!("server_name: {name}")),
        (
            "listen: 127.0.0.1:4222",
            format!("listen: {}", ports.client),
        ),
        ("http: 127.0.0.1:8222", format!("http: {http}")),
        (
            "log_file: /var/log/nats/nats-server.log",
            format!("log_file: {}", quoted(dir.join(format!("{name}.log")))),
        ),
        (
            "store_dir: /var/lib/nats/jetstream",
            format!(
                "store_dir: {}",
                quoted(dir.join(format!("{name}-jetstream")))
            ),
        ),
        ("listen: 0.0.0.0:6222", format!("listen: {}", ports.cluster)),
        ("nats-route://nats1.example.org:6222", route(0)),
        ("nats-route://nats2.example.org:6222", route(1)),
        ("nats-route://nats3.example.org:6222", route(2)),
        ("listen: 0.0.0.0:8883", format!("listen: {}", ports.mqtt)),
        (
            "include nats/tandem/users.conf",
            format!("include {USERS_FILE}"),
        ),
    ];
    let mut found = vec![0usize; rules.len()];
    let mut text = format!("# adapted by tandem-tests from docs/broker/{NODE_CONF}\n");
    let files = format!("{}/", dir.display());
    let mut moved_files = 0;
    for line in shipped.lines() {
        let setting = line.trim();
        let indent = line.strip_suffix(line.trim_start()).unwrap_or_default();
        let mut out = line.to_owned();
        for ((placeholder, replacement), seen) in rules.iter().zip(found.iter_mut()) {
            if setting == *placeholder {
                out = format!("{indent}{replacement}");
                *seen += 1;
            }
        }
        if !setting.starts_with('#') {
            if out.contains(SHIPPED_FILES_DIR) {
                out = out.replace(SHIPPED_FILES_DIR, &files);
                moved_files += 1;
            }
            for left in ["example.org", "/var/", "/etc/", "0.0.0.0"] {
                if out.contains(left) {
                    return Err(format!("an unexpected line `{setting}`"));
                }
            }
        }
        text.push_str(&out);
        text.push('\n');
    }
    for ((placeholder, _), seen) in rules.iter().zip(found) {
        if seen != 1 {
            return Err(format!(
                "the line `{placeholder}` is there {seen} times, not once"
            ));
        }
    }
    if moved_files == 0 {
        return Err(format!("no setting names a file in {SHIPPED_FILES_DIR}"));
    }
    Ok(text)
}

/// Runs the shipped `tandem-nats-users` on `dir/users.conf` with `logins` (a file of
/// `username:password` lines, removed afterwards), as the README says.
fn write_users(dir: &Path, logins: &[Credentials]) -> Result<()> {
    let lines = password_lines(logins).map_err(|reason| Error::Io {
        what: "write the new login lines".to_owned(),
        source: std::io::Error::new(std::io::ErrorKind::InvalidInput, reason),
    })?;
    let new = dir.join("new-logins");
    std::fs::write(&new, lines.as_bytes()).map_err(io(format!("write {}", new.display())))?;
    let script = shipped_config_dir().join(USERS_SCRIPT);
    let users = dir.join(USERS_FILE);
    let ran = run(
        Command::new("bash").arg(&script).arg(&users).arg(&new),
        &format!("{} {} {}", script.display(), users.display(), new.display()),
    );
    std::fs::remove_file(&new).map_err(io(format!("remove {}", new.display())))?;
    ran
}

/// Whether an MQTT client (clean session) with `credentials` (`None`: anonymous, what the
/// deployed cluster's pairing user allows) gets an accepting CONNACK over TLS from `addr`,
/// trusting `ca`. Runs in a thread of its own with its own runtime, so it can be called from
/// sync code and from a test's runtime alike.
fn tls_connect_accepted(
    addr: SocketAddr,
    ca: &[u8],
    client_id: &str,
    credentials: Option<Credentials>,
) -> bool {
    let Ok(url) = BrokerUrl::from_socket_addr_with(Scheme::Mqtts, addr) else {
        return false;
    };
    let settings = ClientSettings {
        tls: Some(TlsTrust::from_ca_pem(ca.to_vec())),
        credentials,
        clean_session: true,
        keep_alive: Duration::from_secs(5),
        ..ClientSettings::default()
    };
    let client_id = client_id.to_owned();
    let attempt = std::thread::spawn(move || {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return false;
        };
        runtime.block_on(async {
            match Probe::connect(&url, &client_id, &settings).await {
                Ok(probe) => probe.disconnect().await.is_ok(),
                Err(_) => false,
            }
        })
    });
    attempt.join().unwrap_or(false)
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
    fn the_shipped_node_config_is_adapted_in_ports_paths_and_routes_only() {
        let shipped = std::fs::read_to_string(shipped_config_dir().join(NODE_CONF)).unwrap();
        let addr = |port| SocketAddr::from(([127, 0, 0, 1], port));
        let ports = Ports {
            client: addr(4001),
            cluster: addr(5001),
            mqtt: addr(6001),
        };
        let routes = [addr(5001), addr(5002), addr(5003)];
        let text = deployed_config_text(
            &shipped,
            "n1",
            ports,
            addr(7001),
            &routes,
            Path::new("/tmp/x"),
        )
        .unwrap();
        for line in [
            "server_name: n1",
            "listen: 127.0.0.1:4001",
            "http: 127.0.0.1:7001",
            "log_file: \"/tmp/x/n1.log\"",
            "  store_dir: \"/tmp/x/n1-jetstream\"",
            "  listen: 127.0.0.1:5001",
            "    nats-route://127.0.0.1:5003",
            "  listen: 127.0.0.1:6001",
            "    cert_file: /tmp/x/server.crt",
            "    ca_file: /tmp/x/ca.crt",
            "  no_auth_user: tandem-pairing",
            "include users.conf",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line:?} missing in:\n{text}"
            );
        }
        // A shipped file that changed shape is refused, not half adapted.
        let extra = format!("{shipped}\nmqtt {{ listen: 0.0.0.0:1883 }}\n");
        let e = deployed_config_text(&extra, "n1", ports, addr(7001), &routes, Path::new("/x"));
        assert!(e.unwrap_err().contains("unexpected line"));
        let missing = shipped.replace("server_name: nats1", "server_name: other");
        let e = deployed_config_text(&missing, "n1", ports, addr(7001), &routes, Path::new("/x"));
        assert!(e.unwrap_err().contains("server_name: nats1"));
    }

    /// Runs the shipped users script on `users` with `input` on stdin.
    fn users_script(users: &Path, input: &str) -> std::process::Output {
        let mut child = Command::new("bash")
            .arg(shipped_config_dir().join(USERS_SCRIPT))
            .arg(users)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    #[test]
    fn the_users_script_refuses_lines_that_are_not_device_logins_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let users = dir.path().join("users.conf");
        let password = "ab".repeat(32);
        let good = format!("# registered today\nabcd-0:{password}\n\nabcd-1:{password}\n");
        let ok = users_script(&users, &good);
        assert!(ok.status.success(), "{ok:?}");
        let before = std::fs::read_to_string(&users).unwrap();
        assert_eq!(before.matches("{ user: \"abcd-").count(), 2, "{before}");

        for (line, complaint) in [
            (
                format!("abcd.2:{password}"),
                "\"abcd.2\" is not a device's broker name",
            ),
            (
                format!("Abcd-2:{password}"),
                "\"Abcd-2\" is not a device's broker name",
            ),
            (
                format!("abc1-2:{password}"),
                "\"abc1-2\" is not a device's broker name",
            ),
            (
                format!("abcd-:{password}"),
                "\"abcd-\" is not a device's broker name",
            ),
            (
                format!("abcd-2 :{password}"),
                "is not a device's broker name",
            ),
            (format!("*-2:{password}"), "is not a device's broker name"),
            (
                format!("tandem-pairing:{password}"),
                "is not a device's broker name",
            ),
            ("abcd-2:secret".to_owned(), "not 64 lowercase hex"),
            (
                format!("abcd-2:{}", password.to_uppercase()),
                "not 64 lowercase hex",
            ),
            (
                format!("abcd-2:{password}\", x: \"y"),
                "not 64 lowercase hex",
            ),
            ("abcd-2".to_owned(), "not a username:password line"),
        ] {
            // The bad line comes after a good one: nothing at all is written.
            let input = format!("abcd-3:{password}\n{line}\n");
            let refused = users_script(&users, &input);
            let stderr = String::from_utf8_lossy(&refused.stderr);
            assert_eq!(refused.status.code(), Some(1), "{line}: {stderr}");
            assert!(stderr.contains("line 2"), "{line}: {stderr}");
            assert!(stderr.contains(complaint), "{line}: {stderr}");
            assert!(stderr.contains("nothing written"), "{line}: {stderr}");
            assert!(
                !stderr.contains(&password),
                "{line}: the password leaked: {stderr}"
            );
            assert_eq!(std::fs::read_to_string(&users).unwrap(), before, "{line}");
        }
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(leftovers.len(), 1, "temporary files left: {leftovers:?}");

        // Re-running adds devices and keeps the earlier ones; a device given again gets its
        // new password.
        let other = "cd".repeat(32);
        let more = users_script(&users, &format!("efgh-0:{password}\nabcd-1:{other}\n"));
        assert!(more.status.success(), "{more:?}");
        let after = std::fs::read_to_string(&users).unwrap();
        assert_eq!(after.matches("{ user: \"").count(), 4, "{after}");
        for (user, pass) in [
            ("abcd-0", &password),
            ("abcd-1", &other),
            ("efgh-0", &password),
        ] {
            assert!(
                after.contains(&format!("{{ user: \"{user}\", password: \"{pass}\"")),
                "{user}: {after}"
            );
        }
        assert!(after.contains("\"tandem.v1.dev.efgh-0.in\""), "{after}");
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(&users).unwrap().permissions(),
        );
        assert_eq!(mode & 0o777, 0o600);

        // A user line it did not write (edited by hand) stops it instead of being dropped.
        let edited = after.replace(
            &format!("\"efgh-0\", password: \"{password}\""),
            "\"efgh-0\", password: \"$2a$11$hashedbyhand\"",
        );
        std::fs::write(&users, &edited).unwrap();
        let refused = users_script(&users, &format!("ijkl-0:{password}\n"));
        let stderr = String::from_utf8_lossy(&refused.stderr);
        assert_eq!(refused.status.code(), Some(1), "{stderr}");
        assert!(
            stderr.contains("a user this script did not write"),
            "{stderr}"
        );
        assert_eq!(std::fs::read_to_string(&users).unwrap(), edited);
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
