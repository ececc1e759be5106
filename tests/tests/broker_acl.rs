#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! The broker deployment shipped in `docs/broker/` holds, on a real Mosquitto (2.0.11 on
//! Debian 12) run as two processes, the device broker and the pairing broker: TLS on both, a
//! password per device (derived with `tandem_crypto::broker_auth`), the client id pinned to
//! the username, per-device topic ACLs, and anonymous pairing kept to pairing topics in a
//! process of its own. Every client is a real `rumqttc` client built by
//! `tandem_net::mqtt_options`, so the TLS and credential code is what connects.
//!
//! What Mosquitto 2.0.11 does with these ACLs (checked below):
//! - It grants every SUBSCRIBE (SUBACK with QoS 1), even to another device's inbox, `+` and
//!   `#` filters, and filters each message at delivery with the read rules: a device never
//!   receives what is published to another device's inbox.
//! - A publish the write rules refuse is acknowledged (PUBACK, MQTT 3.1.1 has no way to say
//!   no) and dropped: nothing is delivered and no retained message changes.
//! - A wrong password, an unknown username and an anonymous client get CONNACK return code 5
//!   (not authorized) on the device broker; plain TCP to a TLS port is dropped during the
//!   handshake.
//! - A client id other than the username is replaced by the username.
//! - A Last Will is subject to the write rules when it is published.
//! - Client ids are per process: an anonymous pairing client that uses a device's id on the
//!   pairing broker leaves that device's session on the device broker alone.

use std::time::Duration;

use rumqttc::{ConnectReturnCode, QoS, TlsConfiguration, Transport};
use tandem_net::{BrokerUrl, ClientSettings, Credentials, Scheme, Will, mqtt_options};
use tandem_tests::acl::{
    Outcome, connect_outcome, device_name, devices, inbox, login, presence, text, until_marker,
};
use tandem_tests::mosquitto::DeployedMosquitto;
use tandem_tests::{Probe, Result, TcpProxy, WAIT};

/// Three devices of two accounts: Alice's desktop, Bob's phone and Carol's desktop, each
/// logging in with the password its account's broker secret derives.
struct World {
    broker: DeployedMosquitto,
    alice: String,
    bob: String,
    carol: String,
}

impl World {
    fn start() -> Option<Self> {
        let (alice, bob, carol) = (device_name(1, 1), device_name(2, 0), device_name(3, 1));
        let logins = [&alice, &bob, &carol].map(|d| login(d));
        let broker = DeployedMosquitto::start_or_skip(&logins).unwrap()?;
        Some(Self {
            broker,
            alice,
            bob,
            carol,
        })
    }

    /// A device's settings: its login, the broker's CA, a 5 s keep-alive, a persistent
    /// session.
    fn device(&self, device: &str) -> ClientSettings {
        ClientSettings {
            credentials: Some(login(device)),
            tls: Some(self.broker.tls_trust()),
            keep_alive: Duration::from_secs(5),
            ..ClientSettings::default()
        }
    }

    /// Connects `device` to the device broker with its own login.
    async fn connect(&self, device: &str) -> Result<Probe> {
        Probe::connect(self.broker.device_url(), device, &self.device(device)).await
    }

    /// An anonymous client of the pairing broker (TLS, no credentials, clean session), as
    /// both sides of a pairing use: the desktop's code, the phone's throwaway answer.
    async fn pairing_client(&self, client_id: &str) -> Result<Probe> {
        let settings = ClientSettings {
            tls: Some(self.broker.tls_trust()),
            keep_alive: Duration::from_secs(5),
            clean_session: true,
            ..ClientSettings::default()
        };
        Probe::connect(self.broker.pairing_url(), client_id, &settings).await
    }
}

// ---------------------------------------------------------------------------------------
// The stories.

/// Alice reads her inbox; Bob, of another account, can write to it; and the connection is
/// TLS with Alice's derived password (the options say so, and the broker logs her username).
async fn a_device_reads_its_own_inbox_and_any_device_writes_to_it(w: &World) -> Result<()> {
    let settings = w.device(&w.alice);
    let options = mqtt_options(w.broker.device_url(), &w.alice, &settings)?;
    assert!(matches!(
        options.transport(),
        Transport::Tls(TlsConfiguration::Rustls(_))
    ));
    assert_eq!(options.credentials().unwrap().password.len(), 64);

    let mut alice = w.connect(&w.alice).await?;
    assert_eq!(
        alice.subscribe(&inbox(&w.alice), QoS::AtLeastOnce).await?,
        QoS::AtLeastOnce
    );
    let mut bob = w.connect(&w.bob).await?;
    bob.publish(&inbox(&w.alice), b"hello alice", false).await?;
    let got = alice.next_publish().await?;
    assert_eq!(
        (got.topic.as_str(), text(&got).as_str()),
        (inbox(&w.alice).as_str(), "hello alice")
    );
    assert!(
        w.broker.log().contains(&format!("u'{}'", w.alice)),
        "the broker did not log Alice's username"
    );
    Ok(())
}

/// Alice subscribes to Bob's inbox by name, with `+`, and with `tandem/v1/#`. Mosquitto
/// grants all three (SUBACK QoS 1) but delivers none of what Carol sends to Bob; Bob gets it,
/// and Alice gets what is sent to her own inbox.
async fn a_device_cannot_read_another_devices_inbox_by_name_or_wildcard(w: &World) -> Result<()> {
    let mut bob = w.connect(&w.bob).await?;
    bob.subscribe(&inbox(&w.bob), QoS::AtLeastOnce).await?;
    let mut alice = w.connect(&w.alice).await?;
    for filter in [
        inbox(&w.bob),
        "tandem/v1/dev/+/in".to_owned(),
        "tandem/v1/#".to_owned(),
    ] {
        let granted = alice.subscribe(&filter, QoS::AtLeastOnce).await?;
        assert_eq!(granted, QoS::AtLeastOnce, "SUBACK for {filter}");
    }

    let mut carol = w.connect(&w.carol).await?;
    for n in 0..3 {
        carol
            .publish(
                &inbox(&w.bob),
                format!("secret {n} for bob").as_bytes(),
                false,
            )
            .await?;
    }
    carol
        .publish(&inbox(&w.alice), b"marker for alice", false)
        .await?;

    for n in 0..3 {
        assert_eq!(
            text(&bob.next_publish().await?),
            format!("secret {n} for bob")
        );
    }
    let seen = until_marker(&mut alice, "marker for alice").await?;
    assert!(
        seen.iter().all(|p| p.topic == inbox(&w.alice)),
        "Alice received another device's mail: {:?}",
        seen.iter().map(|p| (&p.topic, text(p))).collect::<Vec<_>>()
    );
    Ok(())
}

/// Bob's retained device list and presence are his alone: Alice's forged retained publishes
/// and her attempt to clear them are acknowledged and dropped; live subscribers never see
/// them and late subscribers get Bob's values.
async fn a_device_cannot_overwrite_anothers_retained_device_list_or_presence(
    w: &World,
) -> Result<()> {
    let mut bob = w.connect(&w.bob).await?;
    bob.publish(&devices(&w.bob), b"bob's signed list v1", true)
        .await?;
    bob.publish(&presence(&w.bob), b"online", true).await?;

    let mut carol = w.connect(&w.carol).await?;
    carol.subscribe(&devices(&w.bob), QoS::AtLeastOnce).await?;
    carol.subscribe(&presence(&w.bob), QoS::AtLeastOnce).await?;
    let mut retained = [carol.next_publish().await?, carol.next_publish().await?].map(|p| text(&p));
    retained.sort();
    assert_eq!(retained, ["bob's signed list v1", "online"]);

    let mut alice = w.connect(&w.alice).await?;
    alice
        .publish(&devices(&w.bob), b"forged list", true)
        .await?;
    alice
        .publish(&presence(&w.bob), b"forged offline", true)
        .await?;
    alice.publish(&devices(&w.bob), b"", true).await?;

    // A late subscriber still gets Bob's retained values.
    let mut late = w.connect(&w.alice).await?;
    late.subscribe(&devices(&w.bob), QoS::AtLeastOnce).await?;
    late.subscribe(&presence(&w.bob), QoS::AtLeastOnce).await?;
    let mut late_seen = [late.next_publish().await?, late.next_publish().await?].map(|p| {
        assert!(p.retain);
        text(&p)
    });
    late_seen.sort();
    assert_eq!(late_seen, ["bob's signed list v1", "online"]);

    // The live subscriber saw nothing between Bob's values and Bob's next one.
    bob.publish(&presence(&w.bob), b"bob marker", true).await?;
    let seen = until_marker(&mut carol, "bob marker").await?;
    assert_eq!(
        seen.len(),
        1,
        "forgeries reached Carol: {:?}",
        seen.iter().map(text).collect::<Vec<_>>()
    );
    Ok(())
}

/// The device broker refuses wrong passwords, unknown users, another device's password and
/// anonymous clients with CONNACK code 5 (not authorized); a correct login is accepted.
async fn logins_that_are_not_a_devices_own_are_refused(w: &World) -> Result<()> {
    let url = w.broker.device_url();
    let with = |credentials: Option<Credentials>| ClientSettings {
        credentials,
        ..w.device(&w.alice)
    };
    let cases = [
        (
            "a wrong password",
            with(Some(Credentials::new(w.alice.as_str(), "0".repeat(64)))),
        ),
        ("an unknown user", with(Some(login("mallory-1")))),
        (
            "Bob's password as Alice",
            with(Some(Credentials::new(
                w.alice.as_str(),
                login(&w.bob).password,
            ))),
        ),
        ("no credentials", with(None)),
    ];
    for (what, settings) in cases {
        match connect_outcome(url, &w.alice, &settings).await {
            Outcome::Connack(ConnectReturnCode::NotAuthorized) => {}
            other => panic!("{what}: expected CONNACK 5 (not authorized), got {other:?}"),
        }
    }
    assert!(matches!(
        connect_outcome(url, &w.alice, &w.device(&w.alice)).await,
        Outcome::Connack(ConnectReturnCode::Success)
    ));
    Ok(())
}

/// TLS is not optional and is checked: plain MQTT to the TLS port gets no CONNACK (Mosquitto
/// drops it: "wrong version number"), a client that does not trust the broker's CA (the
/// system roots only) stops at the handshake, and so does one that reaches the broker by a
/// name its certificate does not carry (`localhost`: the certificate names 127.0.0.1).
async fn tls_is_required_and_the_certificate_is_checked(w: &World) -> Result<()> {
    let addr = w.broker.device_addr();
    let plain_url = BrokerUrl::from_socket_addr(addr)?;
    let plain = ClientSettings {
        tls: None,
        ..w.device(&w.alice)
    };
    match connect_outcome(&plain_url, &w.alice, &plain).await {
        Outcome::Failed(_) => {}
        other => panic!("plain MQTT to the TLS port: expected a failure, got {other:?}"),
    }
    assert!(
        w.broker.log().contains("wrong version number"),
        "{}",
        w.broker.log()
    );

    let system_roots = ClientSettings {
        tls: None,
        ..w.device(&w.alice)
    };
    match connect_outcome(w.broker.device_url(), &w.alice, &system_roots).await {
        Outcome::Failed(reason) => assert!(reason.contains("UnknownIssuer"), "{reason}"),
        other => panic!("untrusted CA: expected a TLS failure, got {other:?}"),
    }

    let by_name = BrokerUrl::parse(&format!("mqtts://localhost:{}", addr.port()))?;
    match connect_outcome(&by_name, &w.alice, &w.device(&w.alice)).await {
        Outcome::Failed(reason) => assert!(reason.contains("NotValidForName"), "{reason}"),
        other => panic!("wrong name: expected a TLS failure, got {other:?}"),
    }

    // The pairing broker, a process of its own, is TLS only too.
    let plain_pairing = BrokerUrl::from_socket_addr(w.broker.pairing_addr())?;
    let anonymous_plain = ClientSettings {
        clean_session: true,
        ..ClientSettings::default()
    };
    match connect_outcome(&plain_pairing, "plain-pairing", &anonymous_plain).await {
        Outcome::Failed(_) => {}
        other => panic!("plain MQTT to the pairing port: expected a failure, got {other:?}"),
    }
    assert!(
        w.broker.pairing_log().contains("wrong version number"),
        "{}",
        w.broker.pairing_log()
    );
    Ok(())
}

/// `use_username_as_clientid`: Alice connecting with Bob's device id as client id becomes
/// client `alice...`: Bob's connection is untouched, Alice's own earlier connection is the
/// one taken over, and the broker logs the connection under Alice's id.
async fn a_client_id_other_than_the_username_is_replaced_by_the_username(w: &World) -> Result<()> {
    let mut bob = w.connect(&w.bob).await?;
    let mut alice_first = w.connect(&w.alice).await?;
    let mut impostor = Probe::connect(w.broker.device_url(), &w.bob, &w.device(&w.alice)).await?;

    // Alice's earlier connection was closed by the takeover...
    let lost = alice_first.next_publish_within(WAIT).await.unwrap_err();
    assert!(lost.to_string().contains("connection lost"), "{lost}");
    // ...Bob's still works.
    bob.publish(&presence(&w.bob), b"still here", false).await?;
    // And the "bob" connection reads Alice's inbox, not Bob's.
    impostor
        .subscribe(&inbox(&w.alice), QoS::AtLeastOnce)
        .await?;
    bob.publish(&inbox(&w.alice), b"to alice", false).await?;
    assert_eq!(text(&impostor.next_publish().await?), "to alice");
    let log = w.broker.log();
    let connected_as_alice = format!("as {} (p2, c0, k5, u'{}')", w.alice, w.alice);
    assert_eq!(log.matches(&connected_as_alice).count(), 2, "{log}");
    Ok(())
}

/// A desktop that is not linked yet talks to the phone on the pairing broker with no
/// password, the phone answering with a throwaway anonymous client (as `tandem-phone scan`
/// does): `pair/{ref}` works both ways, and nothing under `dev/` can be read or written
/// there. The device broker, a separate process, neither sees pairing traffic nor carries
/// pairing topics itself.
async fn anonymous_pairing_clients_use_pair_topics_and_nothing_else(w: &World) -> Result<()> {
    let rendezvous = "tandem/v1/pair/7f3a9c";
    let mut desktop = w.pairing_client("pairing-desktop").await?;
    desktop.subscribe(rendezvous, QoS::AtLeastOnce).await?;
    let mut phone = w.pairing_client("pairing-phone").await?;
    phone.subscribe(rendezvous, QoS::AtLeastOnce).await?;

    desktop.publish(rendezvous, b"offer", false).await?;
    assert_eq!(text(&phone.next_publish().await?), "offer");
    phone.publish(rendezvous, b"answer", false).await?;
    let mut on_desktop = until_marker(&mut desktop, "answer").await?;
    on_desktop.retain(|p| text(p) != "offer"); // its own publish comes back too
    assert_eq!(on_desktop.len(), 1);

    // Reading `dev/` on the pairing broker: granted at SUBACK, filtered at delivery. (These
    // would only ever be the pairing broker's own topics: no device is there.)
    for filter in [inbox(&w.bob), presence(&w.bob), "tandem/v1/#".to_owned()] {
        desktop.subscribe(&filter, QoS::AtLeastOnce).await?;
    }
    phone
        .publish(&inbox(&w.bob), b"spam from pairing", false)
        .await?;
    phone.publish(&presence(&w.bob), b"forged", true).await?;
    phone.publish(rendezvous, b"pairing marker", false).await?;
    let seen = until_marker(&mut desktop, "pairing marker").await?;
    assert!(
        seen.iter().all(|p| p.topic.starts_with("tandem/v1/pair/")),
        "the pairing client read {:?}",
        seen.iter().map(|p| (&p.topic, text(p))).collect::<Vec<_>>()
    );

    // The device broker: Bob, online there with his presence retained, gets none of it, and
    // there are no pairing topics there (a device's rendezvous publish reaches nobody).
    let mut bob = w.connect(&w.bob).await?;
    bob.subscribe(&inbox(&w.bob), QoS::AtLeastOnce).await?;
    bob.subscribe(rendezvous, QoS::AtLeastOnce).await?;
    bob.publish(&presence(&w.bob), b"online", true).await?;
    desktop
        .publish(&inbox(&w.bob), b"spam from pairing", false)
        .await?;
    desktop.publish(rendezvous, b"to the phone?", false).await?;
    let mut carol = w.connect(&w.carol).await?;
    carol
        .publish(rendezvous, b"device rendezvous", false)
        .await?;
    carol.publish(&inbox(&w.bob), b"bob marker", false).await?;
    let seen = until_marker(&mut bob, "bob marker").await?;
    assert_eq!(
        seen.iter().map(text).collect::<Vec<_>>(),
        ["bob marker"],
        "Bob got more than his own inbox"
    );
    let mut late = w.connect(&w.carol).await?;
    late.subscribe(&presence(&w.bob), QoS::AtLeastOnce).await?;
    assert_eq!(text(&late.next_publish().await?), "online");
    phone.publish(rendezvous, b"third marker", false).await?;
    let seen = until_marker(&mut desktop, "third marker").await?;
    assert!(
        seen.iter().all(|p| text(p) != "device rendezvous"),
        "{:?}",
        seen.iter().map(text).collect::<Vec<_>>()
    );

    // A pairing client that sends a username is not anonymous: the pairing ACL's `topic`
    // lines do not apply to it, so it gets nothing at all.
    let named = ClientSettings {
        credentials: Some(Credentials::new("someone", "anything")),
        tls: Some(w.broker.tls_trust()),
        clean_session: true,
        ..ClientSettings::default()
    };
    let mut named = Probe::connect(w.broker.pairing_url(), "pairing-named", &named).await?;
    named
        .publish(rendezvous, b"from a named client", false)
        .await?;
    phone.publish(rendezvous, b"second marker", false).await?;
    let seen = until_marker(&mut desktop, "second marker").await?;
    assert!(seen.iter().all(|p| text(p) != "from a named client"));
    Ok(())
}

/// Alice's Last Will on her presence is published, retained, when her TCP connection drops
/// (cut in a proxy: TLS passes through it untouched); a will she sets on Bob's presence is
/// not.
async fn last_will_on_presence_is_published_when_the_connection_drops(w: &World) -> Result<()> {
    let mut watcher = w.connect(&w.carol).await?;
    watcher
        .subscribe(&presence(&w.alice), QoS::AtLeastOnce)
        .await?;
    watcher
        .subscribe(&presence(&w.bob), QoS::AtLeastOnce)
        .await?;
    let mut bob = w.connect(&w.bob).await?;
    bob.publish(&presence(&w.bob), b"bob online", true).await?;
    assert_eq!(text(&watcher.next_publish().await?), "bob online");

    let network = TcpProxy::start(w.broker.device_addr()).await?;
    let through_proxy = BrokerUrl::from_socket_addr_with(Scheme::Mqtts, network.addr())?;
    let settings = ClientSettings {
        last_will: Some(Will::new(
            presence(&w.alice),
            b"alice offline".to_vec(),
            true,
        )),
        ..w.device(&w.alice)
    };
    let mut alice = Probe::connect(&through_proxy, &w.alice, &settings).await?;
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
    // (A new connection of Alice herself: Bob's or Carol's id would take theirs over.)
    let mut late = w.connect(&w.alice).await?;
    late.subscribe(&presence(&w.alice), QoS::AtLeastOnce)
        .await?;
    let retained = late.next_publish().await?;
    assert!(retained.retain);
    assert_eq!(text(&retained), "alice offline");
    late.disconnect().await?;

    // A will aimed at Bob's presence is dropped like any forged publish.
    let forger = ClientSettings {
        last_will: Some(Will::new(
            presence(&w.bob),
            b"bob offline (forged)".to_vec(),
            true,
        )),
        ..w.device(&w.alice)
    };
    let network = TcpProxy::start(w.broker.device_addr()).await?;
    let through_proxy = BrokerUrl::from_socket_addr_with(Scheme::Mqtts, network.addr())?;
    let _forger = Probe::connect(&through_proxy, &w.alice, &forger).await?;
    network.cut();
    // The forger's connection took Alice's id over and died: her presence got nothing new
    // (no will of its own), Bob's presence must not get the forged will.
    tokio::time::sleep(Duration::from_millis(300)).await;
    bob.publish(&presence(&w.bob), b"bob marker", true).await?;
    let seen = until_marker(&mut watcher, "bob marker").await?;
    assert!(
        seen.iter().all(|p| text(p) != "bob offline (forged)"),
        "{:?}",
        seen.iter().map(text).collect::<Vec<_>>()
    );
    Ok(())
}

/// An operator registers a device after the broker started (the README's `-U`, append,
/// reload): refused before, accepted after, without restarting.
async fn a_device_registered_later_logs_in_after_a_reload(w: &World) -> Result<()> {
    let newcomer = device_name(1, 2);
    let settings = w.device(&newcomer);
    assert!(matches!(
        connect_outcome(w.broker.device_url(), &newcomer, &settings).await,
        Outcome::Connack(ConnectReturnCode::NotAuthorized)
    ));
    w.broker.register(&[login(&newcomer)]).unwrap();
    let mut desktop = Probe::connect(w.broker.device_url(), &newcomer, &settings).await?;
    desktop
        .subscribe(&inbox(&newcomer), QoS::AtLeastOnce)
        .await?;
    // The devices registered at start still log in.
    let _alice = w.connect(&w.alice).await?;
    Ok(())
}

/// Pairing runs in a Mosquitto process of its own, so it has a client id space of its own: an
/// anonymous pairing client that connects with Alice's device id, with a persistent or a
/// clean session, gets no session of hers and leaves her alone. Online, she stays connected
/// and receives what is sent to her afterwards; offline, what was queued for her survives.
/// (With both listeners in one process, such a client closed her connection and, with a
/// clean session, discarded her queued messages.)
async fn a_pairing_client_with_a_devices_client_id_leaves_that_devices_session_alone(
    w: &World,
) -> Result<()> {
    let mut alice = w.connect(&w.alice).await?;
    alice.subscribe(&inbox(&w.alice), QoS::AtLeastOnce).await?;
    let mut bob = w.connect(&w.bob).await?;

    // Online: an intruder takes Alice's id on the pairing broker, asking for her session.
    let intruder_settings = ClientSettings {
        tls: Some(w.broker.tls_trust()),
        keep_alive: Duration::from_secs(5),
        clean_session: false,
        ..ClientSettings::default()
    };
    let mut intruder = Probe::connect(w.broker.pairing_url(), &w.alice, &intruder_settings).await?;
    assert!(
        !intruder.session_present(),
        "the pairing broker handed out a session of Alice's"
    );
    intruder
        .subscribe(&inbox(&w.alice), QoS::AtLeastOnce)
        .await?;
    bob.publish(&inbox(&w.alice), b"after the intruder", false)
        .await?;
    // Alice's connection was not closed: what is sent to her afterwards reaches her.
    let got = alice.next_publish().await?;
    assert_eq!(
        (got.topic.as_str(), text(&got).as_str()),
        (inbox(&w.alice).as_str(), "after the intruder")
    );
    assert!(
        intruder
            .next_publish_within(Duration::from_millis(300))
            .await
            .is_err(),
        "the intruder read Alice's inbox"
    );

    // Offline: a message is queued for Alice; a clean-session intruder with her id (which
    // used to wipe her session) comes and goes; she gets her session and the message back.
    alice.disconnect().await?;
    bob.publish(&inbox(&w.alice), b"queued for alice", false)
        .await?;
    intruder.disconnect().await?;
    let wipe = ClientSettings {
        clean_session: true,
        ..intruder_settings
    };
    Probe::connect(w.broker.pairing_url(), &w.alice, &wipe)
        .await?
        .disconnect()
        .await?;
    let mut alice = w.connect(&w.alice).await?;
    assert!(alice.session_present(), "Alice's session is gone");
    assert_eq!(text(&alice.next_publish().await?), "queued for alice");

    // Both intruders really used Alice's id, on the pairing broker; the device broker never
    // closed a connection of Alice's for another one.
    let as_alice = format!(" as {} (", w.alice);
    let pairing_log = w.broker.pairing_log();
    assert_eq!(pairing_log.matches(&as_alice).count(), 2, "{pairing_log}");
    let device_log = w.broker.log();
    assert_eq!(device_log.matches(&as_alice).count(), 2, "{device_log}");
    assert!(
        !device_log.contains(&format!("Client {} already connected", w.alice)),
        "{device_log}"
    );
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Each story on its own broker.

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

/// Starts the shipped deployment, runs `story`, and fails with both brokers' logs.
async fn run<F>(name: &str, story: F)
where
    F: AsyncFnOnce(&World) -> Result<()>,
{
    let Some(world) = World::start() else {
        return;
    };
    if let Err(e) = story(&world).await {
        panic!(
            "{name}: {e}\ndevice broker log:\n{}\npairing broker log:\n{}",
            world.broker.log(),
            world.broker.pairing_log()
        );
    }
}

mod mosquitto {
    use super::run;

    stories!(
        a_device_reads_its_own_inbox_and_any_device_writes_to_it,
        a_device_cannot_read_another_devices_inbox_by_name_or_wildcard,
        a_device_cannot_overwrite_anothers_retained_device_list_or_presence,
        logins_that_are_not_a_devices_own_are_refused,
        tls_is_required_and_the_certificate_is_checked,
        a_client_id_other_than_the_username_is_replaced_by_the_username,
        anonymous_pairing_clients_use_pair_topics_and_nothing_else,
        last_will_on_presence_is_published_when_the_connection_drops,
        a_device_registered_later_logs_in_after_a_reload,
        a_pairing_client_with_a_devices_client_id_leaves_that_devices_session_alone,
    );
}
