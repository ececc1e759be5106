#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The NATS cluster deployment shipped in `docs/broker/` holds, on three real nodes of
//! Debian's nats-server 2.9 each run with the shipped `nats-node.conf` and the users file
//! written by the shipped `tandem-nats-users` (see `NatsCluster::deployed`): MQTT over TLS, a
//! login per device (password derived with `tandem_crypto::broker_auth`), per-device
//! permissions, and anonymous clients kept to the pairing topics. The clients of a story sit
//! on different nodes. Every client is a real `rumqttc` client built by
//! `tandem_net::mqtt_options`, so the TLS and credential code is what connects.
//!
//! What nats-server 2.9 does with these permissions (checked below):
//! - A subscription the user may not make is refused at SUBACK (0x80) and logged as a
//!   "Subscription Violation"; the connection stays up.
//! - A publish the user may not make is acknowledged (PUBACK) and dropped ("Publish
//!   Violation"): nothing is delivered and no retained message changes.
//! - A Last Will aimed at a topic the user may not publish to is accepted at CONNECT and
//!   dropped (a "Publish Violation") when the connection dies.
//! - A wrong password, an unknown user, another device's password are refused at CONNACK
//!   (code 5, not authorized).
//! - Anonymous clients are the pairing user, in an account of its own: MQTT sessions are
//!   per account, so their client ids never reach a device's session.
//! - Sessions and queued messages follow a device across nodes and survive a lost node.
//! - Routes use mutual TLS with the private CA: a node with another CA's certificate, or
//!   without TLS, cannot join.
//! - It cannot tie the client id to the username: a device connecting with another device's
//!   client id takes that device's session over (the owner is disconnected), but the
//!   session's subscription to the owner's inbox is refused by the intruder's permissions:
//!   nothing leaks, and the owner gets its messages when it comes back. With a clean session,
//!   though, the intruder discards the owner's session and queued messages. A denial of
//!   service, not a leak (README: "What NATS cannot do").

use std::net::SocketAddr;
use std::time::Duration;

use rumqttc::{ConnectReturnCode, QoS};

use tandem_net::{BrokerUrl, ClientSettings, Credentials, Scheme, Will};
use tandem_tests::acl::{
    Outcome, connect_outcome, device_name, devices, inbox, login, presence, text, until_marker,
};
use tandem_tests::mosquitto::shipped_config_dir;
use tandem_tests::{ChildGuard, NatsCluster, Probe, Result, TcpProxy, WAIT};

/// Three devices of two accounts on a three-node cluster: Alice's desktop, Bob's phone and
/// Carol's desktop, each logging in with the password its account's broker secret derives.
struct World {
    cluster: NatsCluster,
    alice: String,
    bob: String,
    carol: String,
}

impl World {
    fn start() -> Self {
        let (alice, bob, carol) = (device_name(1, 1), device_name(2, 0), device_name(3, 1));
        let logins = [&alice, &bob, &carol].map(|d| login(d));
        let cluster = NatsCluster::deployed(&logins).unwrap();
        Self {
            cluster,
            alice,
            bob,
            carol,
        }
    }

    /// A device's settings: its login, the cluster's CA, a 5 s keep-alive, a persistent
    /// session.
    fn device(&self, device: &str) -> ClientSettings {
        ClientSettings {
            credentials: Some(login(device)),
            tls: Some(self.cluster.tls_trust()),
            keep_alive: Duration::from_secs(5),
            ..ClientSettings::default()
        }
    }

    /// Connects `device` to node `node` with its own login and its broker name as client id,
    /// as Tandem does. A connection closed before its CONNACK is tried again after a pause,
    /// as the engine's connection loop does: NATS 2.9 refuses, for a moment, a client id that
    /// has just left another node.
    async fn connect(&self, device: &str, node: usize) -> Result<Probe> {
        self.connect_as(device, device, node).await
    }

    /// Connects with `device`'s login and `client_id` to node `node`.
    async fn connect_as(&self, device: &str, client_id: &str, node: usize) -> Result<Probe> {
        let settings = self.device(device);
        let mut refused = 0;
        loop {
            match Probe::connect(self.cluster.url(node), client_id, &settings).await {
                Err(e) if refused < 5 && e.to_string().contains("waiting for CONNACK") => {
                    refused += 1;
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                other => return other,
            }
        }
    }

    /// A device reading with a clean session under a client id of its own (NATS does not tie
    /// client ids to usernames, so a device's second reader need not take its session).
    async fn reader(&self, device: &str, client_id: &str, node: usize) -> Result<Probe> {
        let settings = ClientSettings {
            clean_session: true,
            ..self.device(device)
        };
        Probe::connect(self.cluster.url(node), client_id, &settings).await
    }

    /// An anonymous client (TLS, no credentials, clean session), as both sides of a pairing
    /// use: the desktop's code, the phone's throwaway answer.
    async fn pairing_client(&self, client_id: &str, node: usize) -> Result<Probe> {
        let settings = ClientSettings {
            tls: Some(self.cluster.tls_trust()),
            keep_alive: Duration::from_secs(5),
            clean_session: true,
            ..ClientSettings::default()
        };
        Probe::connect(self.cluster.url(node), client_id, &settings).await
    }

    /// Every node's log (all three), for counting violations.
    fn logs(&self) -> String {
        (0..3)
            .map(|n| std::fs::read_to_string(self.cluster.dir().join(format!("n{}.log", n + 1))))
            .map(|log| log.unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The retained messages of `topics` a fresh reader (`device`'s login) on `node` gets, once
/// they are `expected`: NATS 2.9 copies retained messages to the other nodes a moment after
/// the publish, so a reader on another node may first see an older state.
async fn retained_once(
    w: &World,
    device: &str,
    node: usize,
    topics: &[String],
    expected: &[&str],
) -> Result<Vec<String>> {
    let mut seen = Vec::new();
    for attempt in 0..20 {
        let mut reader = w
            .reader(device, &format!("{device}-reader-{attempt}"), node)
            .await?;
        for topic in topics {
            reader.subscribe(topic, QoS::AtLeastOnce).await?;
        }
        seen.clear();
        while let Ok(p) = reader.next_publish_within(Duration::from_millis(500)).await {
            assert!(
                p.retain,
                "a live message reached a fresh reader: {}",
                text(&p)
            );
            seen.push(text(&p));
        }
        seen.sort();
        reader.disconnect().await?;
        if seen == expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Ok(seen)
}

/// Whether `probe`'s subscription to `filter` is refused (SUBACK failure).
async fn refused(probe: &mut Probe, filter: &str) -> bool {
    match probe.subscribe(filter, QoS::AtLeastOnce).await {
        Ok(_) => false,
        Err(e) => {
            assert!(
                e.to_string().contains("refused the subscription"),
                "{filter}: {e}"
            );
            true
        }
    }
}

// ---------------------------------------------------------------------------------------
// The stories.

/// Alice reads her inbox on node 1 what Bob sends from node 2; she leaves, Bob writes again,
/// and she finds the message queued in her session when she comes back on node 3.
async fn a_device_reads_its_own_inbox_across_nodes_and_what_was_queued_while_away(
    w: &World,
) -> Result<()> {
    let mut alice = w.connect(&w.alice, 0).await?;
    assert_eq!(
        alice.subscribe(&inbox(&w.alice), QoS::AtLeastOnce).await?,
        QoS::AtLeastOnce
    );
    let mut bob = w.connect(&w.bob, 1).await?;
    bob.publish(&inbox(&w.alice), b"hello alice", false).await?;
    let got = alice.next_publish().await?;
    assert_eq!(
        (got.topic.as_str(), text(&got).as_str(), got.qos),
        (inbox(&w.alice).as_str(), "hello alice", QoS::AtLeastOnce)
    );

    alice.disconnect().await?;
    bob.publish(&inbox(&w.alice), b"queued for alice", false)
        .await?;
    let mut alice = w.connect(&w.alice, 2).await?;
    assert!(alice.session_present(), "Alice's session is gone");
    assert_eq!(text(&alice.next_publish().await?), "queued for alice");
    Ok(())
}

/// Alice may not subscribe to Bob's inbox, by name or with `+`, nor to `tandem/v1/#`: each is
/// refused at SUBACK and logged, her connection stays up, and what Carol sends to Bob reaches
/// Bob only.
async fn a_device_cannot_subscribe_to_another_devices_inbox_or_to_everything(
    w: &World,
) -> Result<()> {
    let mut bob = w.connect(&w.bob, 1).await?;
    bob.subscribe(&inbox(&w.bob), QoS::AtLeastOnce).await?;
    let mut alice = w.connect(&w.alice, 0).await?;
    alice.subscribe(&inbox(&w.alice), QoS::AtLeastOnce).await?;
    for filter in [
        inbox(&w.bob),
        "tandem/v1/dev/+/in".to_owned(),
        "tandem/v1/#".to_owned(),
        "#".to_owned(),
        "$MQTT/sub/#".to_owned(),
    ] {
        assert!(refused(&mut alice, &filter).await, "{filter} was granted");
    }
    let violations = w.logs().matches("Subscription Violation").count();
    assert!(violations >= 4, "{violations} violations logged");

    let mut carol = w.connect(&w.carol, 2).await?;
    for n in 0..3 {
        carol
            .publish(&inbox(&w.bob), format!("secret {n}").as_bytes(), false)
            .await?;
    }
    carol
        .publish(&inbox(&w.alice), b"marker for alice", false)
        .await?;
    for n in 0..3 {
        assert_eq!(text(&bob.next_publish().await?), format!("secret {n}"));
    }
    let seen = until_marker(&mut alice, "marker for alice").await?;
    assert_eq!(
        seen.iter()
            .map(|p| (p.topic.clone(), text(p)))
            .collect::<Vec<_>>(),
        [(inbox(&w.alice), "marker for alice".to_owned())],
        "Alice received another device's mail"
    );
    Ok(())
}

/// Bob's retained device list and presence are his alone: Alice's forged retained publishes
/// and her attempt to clear them are acknowledged and dropped; a live reader on another node
/// never sees them and late readers on every node get Bob's values.
async fn forged_device_lists_and_presence_never_reach_a_reader(w: &World) -> Result<()> {
    let mut bob = w.connect(&w.bob, 0).await?;
    bob.publish(&devices(&w.bob), b"bob's signed list v1", true)
        .await?;
    bob.publish(&presence(&w.bob), b"online", true).await?;
    let topics = [devices(&w.bob), presence(&w.bob)];
    let bobs = ["bob's signed list v1", "online"];
    assert_eq!(retained_once(w, &w.carol, 1, &topics, &bobs).await?, bobs);

    let mut carol = w.connect(&w.carol, 1).await?;
    carol.subscribe(&devices(&w.bob), QoS::AtLeastOnce).await?;
    carol.subscribe(&presence(&w.bob), QoS::AtLeastOnce).await?;
    let mut retained = [carol.next_publish().await?, carol.next_publish().await?].map(|p| text(&p));
    retained.sort();
    assert_eq!(retained, bobs);

    let mut alice = w.connect(&w.alice, 2).await?;
    alice
        .publish(&devices(&w.bob), b"forged list", true)
        .await?;
    alice
        .publish(&presence(&w.bob), b"forged offline", true)
        .await?;
    alice
        .publish(&presence(&w.bob), b"forged, live", false)
        .await?;
    alice.publish(&devices(&w.bob), b"", true).await?;
    assert!(w.logs().contains("Publish Violation"), "{}", w.logs());

    // Late readers on every node still get Bob's values (given time to copy a forgery, were
    // there one: the retained copies are what lags).
    tokio::time::sleep(Duration::from_millis(500)).await;
    for node in 0..3 {
        assert_eq!(
            retained_once(w, &w.carol, node, &topics, &bobs).await?,
            bobs,
            "node {node}"
        );
    }
    // The live reader saw nothing between Bob's values and Bob's next one.
    bob.publish(&presence(&w.bob), b"bob marker", true).await?;
    let seen = until_marker(&mut carol, "bob marker").await?;
    assert_eq!(
        seen.iter().map(text).collect::<Vec<_>>(),
        ["bob marker"],
        "forgeries reached Carol"
    );
    Ok(())
}

/// A proxy in front of node `node` (TLS passes through it untouched), and the URL to reach
/// the node through it.
async fn proxy_to(w: &World, node: usize) -> Result<(TcpProxy, BrokerUrl)> {
    let url = w.cluster.url(node);
    let addr = SocketAddr::new(url.host().parse().unwrap(), url.port());
    let network = TcpProxy::start(addr).await?;
    let through = BrokerUrl::from_socket_addr_with(Scheme::Mqtts, network.addr())?;
    Ok((network, through))
}

/// Alice's Last Will on her presence is published, retained, when her connection drops (cut
/// in a proxy); a will she sets on Bob's presence is accepted at CONNECT but dropped when it
/// would be published ("Publish Violation"): it reaches no reader and no retained presence.
async fn a_last_will_is_published_on_the_devices_own_presence_only(w: &World) -> Result<()> {
    let mut watcher = w.connect(&w.carol, 0).await?;
    watcher
        .subscribe(&presence(&w.alice), QoS::AtLeastOnce)
        .await?;
    watcher
        .subscribe(&presence(&w.bob), QoS::AtLeastOnce)
        .await?;
    let mut bob = w.connect(&w.bob, 1).await?;
    bob.publish(&presence(&w.bob), b"bob online", true).await?;
    assert_eq!(text(&watcher.next_publish().await?), "bob online");

    let (network, through) = proxy_to(w, 2).await?;
    let settings = ClientSettings {
        last_will: Some(Will::new(
            presence(&w.alice),
            b"alice offline".to_vec(),
            true,
        )),
        ..w.device(&w.alice)
    };
    let mut alice = Probe::connect(&through, &w.alice, &settings).await?;
    alice
        .publish(&presence(&w.alice), b"alice online", true)
        .await?;
    assert_eq!(text(&watcher.next_publish().await?), "alice online");
    network.cut();
    let will = watcher.next_publish().await?;
    assert_eq!(
        (will.topic.clone(), text(&will)),
        (presence(&w.alice), "alice offline".to_owned())
    );

    let (network, through) = proxy_to(w, 2).await?;
    let forger = ClientSettings {
        last_will: Some(Will::new(
            presence(&w.bob),
            b"bob offline (forged)".to_vec(),
            true,
        )),
        ..w.device(&w.alice)
    };
    // nats-server 2.9 accepts the CONNECT and drops the will when the connection dies.
    let _forger = Probe::connect(&through, &w.alice, &forger).await?;
    network.cut();
    let violation = format!(
        "Publish Violation - User \"{}\", Subject \"tandem.v1.dev.{}.presence\"",
        w.alice, w.bob
    );
    let started = std::time::Instant::now();
    while !w.logs().contains(&violation) {
        assert!(started.elapsed() < WAIT, "no {violation:?} logged");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bob.publish(&presence(&w.bob), b"bob marker", true).await?;
    let seen = until_marker(&mut watcher, "bob marker").await?;
    assert_eq!(
        seen.iter().map(text).collect::<Vec<_>>(),
        ["bob marker"],
        "the forged will reached Carol"
    );
    for node in 0..3 {
        assert_eq!(
            retained_once(w, &w.carol, node, &[presence(&w.bob)], &["bob marker"]).await?,
            ["bob marker"],
            "node {node}"
        );
    }
    Ok(())
}

/// The cluster refuses a wrong password, an unknown user and another device's password at
/// CONNACK, on every node; a device's own login is accepted. Plain MQTT to the TLS port gets
/// no CONNACK.
async fn logins_that_are_not_a_devices_own_are_refused(w: &World) -> Result<()> {
    let with = |credentials: Option<Credentials>| ClientSettings {
        credentials,
        ..w.device(&w.alice)
    };
    let mallory = device_name(9, 1);
    let cases = [
        (
            "a wrong password",
            with(Some(Credentials::new(w.alice.as_str(), "0".repeat(64)))),
        ),
        ("an unknown user", with(Some(login(&mallory)))),
        (
            "Bob's password as Alice",
            with(Some(Credentials::new(
                w.alice.as_str(),
                login(&w.bob).password,
            ))),
        ),
        (
            "the pairing user by name",
            with(Some(Credentials::new("tandem-pairing", "0".repeat(64)))),
        ),
    ];
    for node in 0..3 {
        for (what, settings) in &cases {
            match connect_outcome(w.cluster.url(node), &w.alice, settings).await {
                Outcome::Connack(ConnectReturnCode::NotAuthorized) => {}
                other => panic!(
                    "{what} on node {node}: expected CONNACK 5 (not authorized), got {other:?}"
                ),
            }
        }
        assert!(matches!(
            connect_outcome(w.cluster.url(node), &w.alice, &w.device(&w.alice)).await,
            Outcome::Connack(ConnectReturnCode::Success)
        ));
    }

    let url = w.cluster.url(0);
    let plain_url = BrokerUrl::parse(&format!("mqtt://{}:{}", url.host(), url.port()))?;
    let plain = ClientSettings {
        tls: None,
        ..w.device(&w.alice)
    };
    match connect_outcome(&plain_url, &w.alice, &plain).await {
        // nats-server waits for a TLS ClientHello, gets MQTT and closes the connection.
        Outcome::Failed(reason) => assert!(reason.contains("closed by peer"), "{reason}"),
        other => panic!("plain MQTT to the TLS port: expected a failure, got {other:?}"),
    }
    Ok(())
}

/// A desktop that is not linked yet pairs with the phone's throwaway client, both anonymous,
/// on different nodes: `pair/{ref}` works both ways. Anything under `dev/` is refused to them
/// (subscribing) or dropped (publishing).
async fn anonymous_clients_use_pairing_topics_only(w: &World) -> Result<()> {
    let rendezvous = "tandem/v1/pair/7f3a9c";
    let mut desktop = w.pairing_client("tandem-pair-1", 0).await?;
    desktop.subscribe(rendezvous, QoS::AtLeastOnce).await?;
    let mut phone = w.pairing_client("tandem-scan-1", 1).await?;
    phone.subscribe(rendezvous, QoS::AtLeastOnce).await?;

    desktop.publish(rendezvous, b"offer", false).await?;
    assert_eq!(text(&phone.next_publish().await?), "offer");
    phone.publish(rendezvous, b"answer", false).await?;
    let mut on_desktop = until_marker(&mut desktop, "answer").await?;
    on_desktop.retain(|p| text(p) != "offer"); // its own publish comes back too
    assert_eq!(on_desktop.len(), 1);

    for filter in [
        inbox(&w.bob),
        presence(&w.bob),
        devices(&w.bob),
        "tandem/v1/pair/#".to_owned(),
        "tandem/v1/#".to_owned(),
    ] {
        assert!(refused(&mut desktop, &filter).await, "{filter} was granted");
    }

    let mut bob = w.connect(&w.bob, 2).await?;
    bob.subscribe(&inbox(&w.bob), QoS::AtLeastOnce).await?;
    bob.publish(&presence(&w.bob), b"online", true).await?;
    phone
        .publish(&inbox(&w.bob), b"spam from pairing", false)
        .await?;
    phone.publish(&presence(&w.bob), b"forged", true).await?;
    let mut carol = w.connect(&w.carol, 0).await?;
    carol.publish(&inbox(&w.bob), b"bob marker", false).await?;
    let seen = until_marker(&mut bob, "bob marker").await?;
    assert_eq!(seen.iter().map(text).collect::<Vec<_>>(), ["bob marker"]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    for node in 0..3 {
        assert_eq!(
            retained_once(w, &w.carol, node, &[presence(&w.bob)], &["online"]).await?,
            ["online"],
            "node {node}"
        );
    }
    Ok(())
}

/// NATS cannot tie the client id to the username. Bob, logged in as himself, connects with
/// Alice's client id while she is online: her connection is closed and her session is his
/// now; but its subscription to her inbox is refused by Bob's permissions, so what is sent to
/// her meanwhile does not reach him, nor does his own subscription to her inbox. When he
/// leaves and she comes back, she finds what was queued for her. A denial of service (Alice
/// kicked off), not a leak.
async fn a_client_id_takeover_kicks_the_owner_off_but_leaks_nothing(w: &World) -> Result<()> {
    let mut alice = w.connect(&w.alice, 0).await?;
    alice.subscribe(&inbox(&w.alice), QoS::AtLeastOnce).await?;
    let mut carol = w.connect(&w.carol, 2).await?;
    carol
        .publish(&inbox(&w.alice), b"before the takeover", false)
        .await?;
    assert_eq!(text(&alice.next_publish().await?), "before the takeover");

    let mut intruder = w.connect_as(&w.bob, &w.alice, 1).await?;
    assert!(
        intruder.session_present(),
        "Bob did not get Alice's session"
    );
    // Alice's connection was closed by the takeover.
    let lost = alice.next_publish_within(WAIT).await.unwrap_err();
    assert!(lost.to_string().contains("connection lost"), "{lost}");

    carol
        .publish(&inbox(&w.alice), b"during the takeover", false)
        .await?;
    assert!(
        refused(&mut intruder, &inbox(&w.alice)).await,
        "Bob subscribed to Alice's inbox"
    );
    assert!(
        intruder
            .next_publish_within(Duration::from_secs(1))
            .await
            .is_err(),
        "the intruder read Alice's inbox"
    );
    intruder.disconnect().await?;

    let mut alice = w.connect(&w.alice, 2).await?;
    alice.subscribe(&inbox(&w.alice), QoS::AtLeastOnce).await?;
    carol
        .publish(&inbox(&w.alice), b"after the takeover", false)
        .await?;
    let seen = until_marker(&mut alice, "after the takeover").await?;
    let seen: Vec<String> = seen.iter().map(text).collect();
    assert!(
        seen.iter().all(|t| t != "before the takeover"),
        "delivered twice: {seen:?}"
    );
    assert!(
        seen.contains(&"during the takeover".to_owned()),
        "lost while Bob held the session: {seen:?}"
    );
    Ok(())
}

/// The pairing user has an account of its own, and NATS keeps MQTT sessions per account: an
/// anonymous client that connects with Alice's client id, with a persistent or a clean
/// session, gets no session of hers and leaves her alone. Online, she stays connected and
/// receives what is sent to her afterwards; offline, what was queued for her survives a
/// clean-session "wipe".
async fn a_pairing_client_with_a_devices_client_id_leaves_that_devices_session_alone(
    w: &World,
) -> Result<()> {
    let mut alice = w.connect(&w.alice, 0).await?;
    alice.subscribe(&inbox(&w.alice), QoS::AtLeastOnce).await?;
    let mut bob = w.connect(&w.bob, 2).await?;

    let persistent = ClientSettings {
        tls: Some(w.cluster.tls_trust()),
        keep_alive: Duration::from_secs(5),
        ..ClientSettings::default()
    };
    let intruder = Probe::connect(w.cluster.url(1), &w.alice, &persistent).await?;
    assert!(
        !intruder.session_present(),
        "the pairing user got a session of Alice's"
    );
    bob.publish(&inbox(&w.alice), b"after the intruder", false)
        .await?;
    let got = alice.next_publish().await?;
    assert_eq!(
        (got.topic.as_str(), text(&got).as_str()),
        (inbox(&w.alice).as_str(), "after the intruder")
    );
    intruder.disconnect().await?;

    alice.disconnect().await?;
    bob.publish(&inbox(&w.alice), b"queued for alice", false)
        .await?;
    let wipe = ClientSettings {
        clean_session: true,
        ..persistent
    };
    Probe::connect(w.cluster.url(1), &w.alice, &wipe)
        .await?
        .disconnect()
        .await?;
    let mut alice = w.connect(&w.alice, 1).await?;
    assert!(alice.session_present(), "Alice's session is gone");
    assert_eq!(text(&alice.next_publish().await?), "queued for alice");
    Ok(())
}

/// The worse side of the same limit, kept here so that the README's warning stays true: Bob,
/// logged in as himself, connecting with Alice's client id and a clean session while she is
/// away discards her session and the message queued in it. She comes back to no session and
/// never gets that message. (Still no leak: Bob received nothing.)
async fn a_clean_session_with_another_devices_client_id_discards_its_queue(
    w: &World,
) -> Result<()> {
    let mut alice = w.connect(&w.alice, 0).await?;
    alice.subscribe(&inbox(&w.alice), QoS::AtLeastOnce).await?;
    alice.disconnect().await?;
    let mut carol = w.connect(&w.carol, 2).await?;
    carol
        .publish(&inbox(&w.alice), b"queued for alice", false)
        .await?;

    let wipe = ClientSettings {
        clean_session: true,
        ..w.device(&w.bob)
    };
    let mut intruder = Probe::connect(w.cluster.url(1), &w.alice, &wipe).await?;
    assert!(!intruder.session_present());
    assert!(
        intruder
            .next_publish_within(Duration::from_secs(1))
            .await
            .is_err(),
        "the intruder read Alice's inbox"
    );
    intruder.disconnect().await?;

    let mut alice = w.connect(&w.alice, 1).await?;
    assert!(
        !alice.session_present(),
        "Alice's session survived: NATS now protects it; update the README"
    );
    alice.subscribe(&inbox(&w.alice), QoS::AtLeastOnce).await?;
    carol.publish(&inbox(&w.alice), b"marker", false).await?;
    let seen = until_marker(&mut alice, "marker").await?;
    assert_eq!(seen.iter().map(text).collect::<Vec<_>>(), ["marker"]);
    Ok(())
}

/// How many routes node `node` has, from its monitoring endpoint (`/routez`).
fn routes_of(w: &World, node: usize) -> u64 {
    use std::io::{Read, Write};
    let addr = w.cluster.monitoring_addr(node).unwrap();
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        stream,
        "GET /routez HTTP/1.0\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let body = response.split("\r\n\r\n").nth(1).unwrap();
    let routez: serde_json::Value = serde_json::from_str(body).unwrap();
    routez["num_routes"].as_u64().unwrap()
}

/// A free 127.0.0.1 port.
fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Routes use mutual TLS with the deployment's private CA: a node that dials the cluster's
/// route ports with a certificate of another CA (and checks nothing itself), or without TLS,
/// is turned away at the handshake and never becomes a route; the cluster keeps its two
/// routes per node.
async fn a_node_without_a_certificate_of_the_ca_cannot_join_the_cluster(w: &World) -> Result<()> {
    for node in 0..3 {
        assert_eq!(routes_of(w, node), 2, "node {node} before");
    }
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("other-ca");
    let made = std::process::Command::new("bash")
        .arg(shipped_config_dir().join("make-certs.sh"))
        .arg(&certs)
        .arg("127.0.0.1")
        .output()
        .unwrap();
    assert!(made.status.success(), "{made:?}");
    let routes: Vec<String> = w
        .cluster
        .route_addrs()
        .iter()
        .map(|r| format!("nats-route://{r}"))
        .collect();
    let file = |name: &str| format!("{:?}", certs.join(name).display().to_string());
    let other_ca = format!(
        "tls {{ cert_file: {}, key_file: {}, ca_file: {}, insecure: true }}",
        file("server.crt"),
        file("server.key"),
        file("ca.crt")
    );
    let binary = std::env::var("TANDEM_NATS_SERVER").unwrap_or_else(|_| "nats-server".into());
    let handshake_errors = || w.logs().matches("TLS route handshake error").count();
    let before = handshake_errors();
    let mut rogues = Vec::new();
    for (name, tls) in [("other-ca", other_ca.as_str()), ("plain", "")] {
        let config = dir.path().join(format!("{name}.conf"));
        let log = dir.path().join(format!("{name}.log"));
        std::fs::write(
            &config,
            format!(
                "server_name: rogue-{name}\nlisten: {}\nlog_file: {:?}\n\
                 cluster {{\n  name: tandem\n  listen: {}\n  {tls}\n  routes: [{}]\n}}\n",
                free_port(),
                log.display().to_string(),
                free_port(),
                routes.join(", ")
            ),
        )
        .unwrap();
        rogues.push(ChildGuard::spawn(
            std::process::Command::new(&binary)
                .arg("-c")
                .arg(&config)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null()),
        )?);
    }
    // Each rogue dials all three nodes: wait for the nodes to have turned away both rogues'
    // first attempts, then give them a moment more.
    let started = std::time::Instant::now();
    while handshake_errors() < before + 6 {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{} handshake errors since the rogues started\n{}",
            handshake_errors() - before,
            w.logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    for node in 0..3 {
        assert_eq!(routes_of(w, node), 2, "node {node} with the rogues about");
    }
    let logs = w.logs();
    for turned_away in [
        "TLS route handshake error: tls: failed to verify client certificate: x509: certificate signed by unknown authority",
        "TLS route handshake error: tls: first record does not look like a TLS handshake",
    ] {
        assert!(logs.contains(turned_away), "no {turned_away:?}\n{logs}");
    }
    drop(rogues);
    // The cluster still works.
    let mut alice = w.connect(&w.alice, 0).await?;
    alice.subscribe(&inbox(&w.alice), QoS::AtLeastOnce).await?;
    let mut bob = w.connect(&w.bob, 2).await?;
    bob.publish(&inbox(&w.alice), b"still here", false).await?;
    assert_eq!(text(&alice.next_publish().await?), "still here");
    Ok(())
}

/// An operator registers a device after the cluster started (the README's script run again,
/// then a reload of every node): refused before, accepted on every node after, without a
/// restart; the devices registered before still log in.
async fn a_device_registered_later_logs_in_after_a_reload(w: &World) -> Result<()> {
    let newcomer = device_name(1, 2);
    let settings = w.device(&newcomer);
    assert!(matches!(
        connect_outcome(w.cluster.url(0), &newcomer, &settings).await,
        Outcome::Connack(ConnectReturnCode::NotAuthorized)
    ));
    w.cluster.register(&[login(&newcomer)]).unwrap();
    for node in 0..3 {
        let mut desktop = w.connect(&newcomer, node).await?;
        desktop
            .subscribe(&inbox(&newcomer), QoS::AtLeastOnce)
            .await?;
        assert!(refused(&mut desktop, &inbox(&w.alice)).await);
        desktop.disconnect().await?;
    }
    let _alice = w.connect(&w.alice, 1).await?;
    Ok(())
}

/// See `nats_cluster::a_lost_node_loses_no_session_and_no_queued_message`.
async fn a_lost_node_loses_nothing(w: &mut World) -> Result<()> {
    let mut alice = w.connect(&w.alice, 0).await?;
    alice.subscribe(&inbox(&w.alice), QoS::AtLeastOnce).await?;
    alice.disconnect().await?;
    let mut bob = w.connect(&w.bob, 1).await?;
    bob.publish(&inbox(&w.alice), b"queued for alice", false)
        .await?;
    drop(bob);

    w.cluster.kill_node(1);
    // The JetStream leaders that lived on node 2 are elected again on the others: retry the
    // CONNECT for a while, as a device's client does.
    let mut alice = None;
    for _ in 0..40 {
        match w.connect(&w.alice, 2).await {
            Ok(probe) => {
                alice = Some(probe);
                break;
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
    let mut alice = alice.expect("Alice could not connect to node 3 after node 2 was lost");
    assert!(alice.session_present(), "Alice's session is gone");
    assert_eq!(text(&alice.next_publish().await?), "queued for alice");
    alice.disconnect().await?;

    w.cluster.start_node(1).unwrap();
    let mut alice = w.connect(&w.alice, 1).await?;
    assert!(
        alice.session_present(),
        "node 2 came back without Alice's session"
    );
    let mut carol = w.connect(&w.carol, 0).await?;
    carol
        .publish(&inbox(&w.alice), b"after the node came back", false)
        .await?;
    assert_eq!(
        text(&alice.next_publish().await?),
        "after the node came back"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Each story on its own cluster.

macro_rules! stories {
    ($($story:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $story() {
                run(stringify!($story), super::$story).await;
            }
        )*
    };
}

/// Starts the shipped deployment, runs `story`, and fails with the nodes' logs.
async fn run<F>(name: &str, story: F)
where
    F: AsyncFnOnce(&World) -> Result<()>,
{
    let world = World::start();
    if let Err(e) = story(&world).await {
        panic!("{name}: {e}\n{}", world.cluster.log());
    }
}

mod nats_cluster {
    use super::{World, run};

    /// The streams have three replicas: a node lost (killed) takes nothing with it. Alice's
    /// session and the message queued for her while away, written through the node that is
    /// then lost, are there when she comes back on another node; and the lost node, started
    /// again, serves her too.
    #[tokio::test]
    async fn a_lost_node_loses_no_session_and_no_queued_message() {
        let mut w = World::start();
        if let Err(e) = super::a_lost_node_loses_nothing(&mut w).await {
            panic!("{e}\n{}", w.cluster.log());
        }
    }

    stories!(
        a_device_reads_its_own_inbox_across_nodes_and_what_was_queued_while_away,
        a_device_cannot_subscribe_to_another_devices_inbox_or_to_everything,
        forged_device_lists_and_presence_never_reach_a_reader,
        a_last_will_is_published_on_the_devices_own_presence_only,
        logins_that_are_not_a_devices_own_are_refused,
        anonymous_clients_use_pairing_topics_only,
        a_client_id_takeover_kicks_the_owner_off_but_leaks_nothing,
        a_clean_session_with_another_devices_client_id_discards_its_queue,
        a_pairing_client_with_a_devices_client_id_leaves_that_devices_session_alone,
        a_device_registered_later_logs_in_after_a_reload,
        a_node_without_a_certificate_of_the_ca_cannot_join_the_cluster,
    );
}
