use super::*;

#[test]
fn the_config_has_one_listener_anonymous_access_and_a_log() {
    let addr: SocketAddr = "127.0.0.1:41883".parse().unwrap();
    let text = config_text(addr, Path::new("/tmp/m"), false, true);
    assert!(text.contains("user root\n"));
    assert!(text.contains("listener 41883 127.0.0.1\n"));
    assert!(text.contains("allow_anonymous true\n"));
    assert!(text.contains("log_dest file /tmp/m/mosquitto.log\n"));
    assert!(text.contains("persistence false\n"));
    assert!(!text.contains("persistence_location"));

    let persistent = config_text(addr, Path::new("/tmp/m"), true, false);
    assert!(!persistent.contains("user "));
    assert!(persistent.contains("persistence true\npersistence_location /tmp/m/\n"));
}

#[test]
fn a_missing_binary_fails_and_says_how_to_fix_it() {
    let err = find_binary_in(Some("/nonexistent/mosquitto".into()), None).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::MosquittoMissing { .. }));
    assert!(text.contains("apt-get install mosquitto"), "{text}");
    assert!(text.contains("TANDEM_SKIP_MOSQUITTO=1"), "{text}");
    assert!(text.contains("/nonexistent/mosquitto"), "{text}");
}

#[test]
fn missing_mosquitto_is_skipped_only_when_asked() {
    let missing = || -> Result<()> {
        Err(Error::MosquittoMissing {
            searched: "/nowhere".to_owned(),
        })
    };
    assert!(matches!(skip_if_missing(missing(), true), Ok(None)));
    assert!(matches!(
        skip_if_missing(missing(), false),
        Err(Error::MosquittoMissing { .. })
    ));
    // Any other failure is a failure even when skipping is allowed.
    let broken = Err(Error::Mqtt {
        client_id: "x".to_owned(),
        reason: "y".to_owned(),
    });
    assert!(skip_if_missing::<()>(broken, true).is_err());
    assert!(matches!(skip_if_missing(Ok(7), false), Ok(Some(7))));
}

#[test]
fn it_starts_on_a_free_port_and_drop_kills_the_process() {
    let broker = Mosquitto::start(MosquittoOptions::default()).unwrap();
    let addr = broker.addr();
    assert_eq!(broker.url().to_string(), format!("mqtt://{addr}"));
    let pid = broker.pid().unwrap();
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    TcpStream::connect(addr).unwrap();
    assert!(
        broker.log().contains("mosquitto version"),
        "{}",
        broker.log()
    );

    drop(broker);
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "still running"
    );
    assert!(TcpStream::connect(addr).is_err(), "still accepting");
}

#[test]
fn restart_comes_back_on_the_same_port_as_a_new_process() {
    let mut broker = Mosquitto::start(MosquittoOptions::persistent()).unwrap();
    let (addr, pid) = (broker.addr(), broker.pid().unwrap());
    broker.restart().unwrap();
    assert_eq!(broker.addr(), addr);
    assert_ne!(broker.pid().unwrap(), pid);
    TcpStream::connect(addr).unwrap();
    // SIGTERM made it save its database on the way out.
    assert!(broker.dir().join("mosquitto.db").exists());
}

// ---------------------------------------------------------------------------------------
// The shipped configuration (docs/broker/).

fn shipped_conf() -> String {
    std::fs::read_to_string(shipped_config_dir().join("mosquitto.conf")).unwrap()
}

#[test]
fn the_shipped_config_is_adapted_only_in_ports_and_paths() {
    let device: SocketAddr = "127.0.0.1:40001".parse().unwrap();
    let pairing: SocketAddr = "127.0.0.1:40002".parse().unwrap();
    let shipped = shipped_conf();
    let text = deployed_config_text(&shipped, device, pairing, Path::new("/tmp/t"), true).unwrap();
    let settings = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
            .map(str::to_owned)
            .collect()
    };
    let (before, after) = (settings(&shipped), settings(&text));
    assert_eq!(after.first().map(String::as_str), Some("user root"));
    assert_eq!(after.len(), before.len() + 1);
    for (was, now) in before.iter().zip(after.iter().skip(1)) {
        let expected = match was.as_str() {
            "listener 8883" => "listener 40001 127.0.0.1".to_owned(),
            "listener 8884" => "listener 40002 127.0.0.1".to_owned(),
            "persistence_location /var/lib/mosquitto/" => "persistence_location /tmp/t/".to_owned(),
            "log_dest file /var/log/mosquitto/mosquitto.log" => {
                "log_dest file /tmp/t/mosquitto.log".to_owned()
            }
            other => other.replace("/etc/mosquitto/tandem/", "/tmp/t/"),
        };
        assert_eq!(now, &expected);
    }
    // What the deployment model decides is in the shipped file as it is.
    for line in [
        "per_listener_settings true",
        "allow_anonymous false",
        "password_file /tmp/t/passwords",
        "acl_file /tmp/t/acl-devices",
        "use_username_as_clientid true",
        "allow_anonymous true",
        "acl_file /tmp/t/acl-pairing",
        "certfile /tmp/t/server.crt",
    ] {
        assert!(after.iter().any(|l| l == line), "missing `{line}`");
    }
    assert!(text.starts_with("# adapted by tandem-tests"));
    let not_root = deployed_config_text(&shipped, device, pairing, Path::new("/x"), false).unwrap();
    assert!(!not_root.contains("user root"));
}

#[test]
fn a_shipped_config_that_changed_shape_fails_loudly() {
    let device: SocketAddr = "127.0.0.1:40001".parse().unwrap();
    let pairing: SocketAddr = "127.0.0.1:40002".parse().unwrap();
    let shipped = shipped_conf();
    let dir = Path::new("/tmp/t");
    let without_pairing = shipped.replace("listener 8884", "listener 9999");
    let err = deployed_config_text(&without_pairing, device, pairing, dir, false).unwrap_err();
    assert!(err.contains("listener 8884"), "{err}");
    let moved = shipped.replace("/etc/mosquitto/tandem/", "/srv/tandem/");
    let err = deployed_config_text(&moved, device, pairing, dir, false).unwrap_err();
    assert!(err.contains("/etc/mosquitto/tandem/"), "{err}");
}

#[test]
fn password_lines_refuse_what_the_file_cannot_hold() {
    let ok = password_lines(&[
        Credentials::new("a.0", "pw0"),
        Credentials::new("a.1", "pw1"),
    ])
    .unwrap();
    assert_eq!(ok, "a.0:pw0\na.1:pw1\n");
    for bad in [
        Credentials::new("a:0", "pw"),
        Credentials::new("", "pw"),
        Credentials::new("a.0", "p\nw"),
    ] {
        assert!(password_lines(&[bad]).is_err());
    }
}

#[test]
fn the_deployed_broker_serves_tls_on_two_ports_and_registers_devices_live() {
    let broker = DeployedMosquitto::start(&[Credentials::new("acct.0", "first")]).unwrap();
    assert_eq!(
        broker.device_url().to_string(),
        format!("mqtts://{}", broker.device_addr())
    );
    assert_eq!(
        broker.pairing_url().to_string(),
        format!("mqtts://{}", broker.pairing_addr())
    );
    assert_ne!(broker.device_addr(), broker.pairing_addr());
    TcpStream::connect(broker.pairing_addr()).unwrap();
    assert!(broker.ca_pem().starts_with(b"-----BEGIN CERTIFICATE-----"));
    let passwords = std::fs::read_to_string(broker.dir().join("passwords")).unwrap();
    assert!(passwords.starts_with("acct.0:$7$"), "{passwords}");
    assert!(!passwords.contains("first"));

    broker
        .register(&[Credentials::new("acct.1", "second")])
        .unwrap();
    let passwords = std::fs::read_to_string(broker.dir().join("passwords")).unwrap();
    let users: Vec<&str> = passwords
        .lines()
        .filter_map(|l| l.split(':').next())
        .collect();
    assert_eq!(users, ["acct.0", "acct.1"]);
    assert!(broker.log().contains(RELOAD_LINE), "{}", broker.log());
}
