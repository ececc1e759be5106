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

fn shipped(name: &str) -> String {
    std::fs::read_to_string(shipped_config_dir().join(name)).unwrap()
}

/// The settings of a config file: its lines that are neither blank nor comments.
fn settings(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// `adapted` holds `shipped`'s settings in order, each as `expected` maps it, after a
/// leading `user root`.
fn assert_adapted_only_in(shipped: &str, adapted: &str, expected: impl Fn(&str) -> String) {
    let (before, after) = (settings(shipped), settings(adapted));
    assert_eq!(after.first().map(String::as_str), Some("user root"));
    assert_eq!(after.len(), before.len() + 1);
    for (was, now) in before.iter().zip(after.iter().skip(1)) {
        assert_eq!(now, &expected(was));
    }
}

#[test]
fn the_shipped_device_config_is_adapted_only_in_ports_and_paths() {
    let device: SocketAddr = "127.0.0.1:40001".parse().unwrap();
    let shipped = shipped(DEVICE_CONF);
    let text = device_config_text(&shipped, device, Path::new("/tmp/t"), true).unwrap();
    assert_adapted_only_in(&shipped, &text, |was| match was {
        "listener 8883" => "listener 40001 127.0.0.1".to_owned(),
        "persistence_location /var/lib/mosquitto/" => "persistence_location /tmp/t/".to_owned(),
        "log_dest file /var/log/mosquitto/mosquitto.log" => {
            "log_dest file /tmp/t/mosquitto.log".to_owned()
        }
        other => other.replace("/etc/mosquitto/tandem/", "/tmp/t/"),
    });
    assert!(text.starts_with("# adapted by tandem-tests from docs/broker/mosquitto.conf\n"));
    let not_root = device_config_text(&shipped, device, Path::new("/x"), false).unwrap();
    assert!(!not_root.contains("user root"));
}

#[test]
fn the_shipped_pairing_config_is_adapted_only_in_ports_and_paths() {
    let pairing: SocketAddr = "127.0.0.1:40002".parse().unwrap();
    let shipped = shipped(PAIRING_CONF);
    let text = pairing_config_text(&shipped, pairing, Path::new("/tmp/t"), true).unwrap();
    assert_adapted_only_in(&shipped, &text, |was| match was {
        "listener 8884" => "listener 40002 127.0.0.1".to_owned(),
        "log_dest file /var/log/mosquitto/mosquitto-pairing.log" => {
            "log_dest file /tmp/t/mosquitto-pairing.log".to_owned()
        }
        other => other.replace("/etc/mosquitto/tandem/", "/tmp/t/"),
    });
    assert!(
        text.starts_with("# adapted by tandem-tests from docs/broker/mosquitto-pairing.conf\n")
    );
    let not_root = pairing_config_text(&shipped, pairing, Path::new("/x"), false).unwrap();
    assert!(!not_root.contains("user root"));
}

/// What the deployment model decides is in the shipped files as they are: devices and
/// pairing are two processes, one listener each; only the device broker takes passwords,
/// pins client ids and persists; only the pairing broker takes anonymous clients; and the
/// device rules hold no pairing topics.
#[test]
fn the_shipped_configs_split_devices_and_pairing_into_two_processes() {
    let device = settings(&shipped(DEVICE_CONF));
    let pairing = settings(&shipped(PAIRING_CONF));
    let has = |settings: &[String], line: &str| settings.iter().any(|l| l == line);
    let listeners = |settings: &[String]| {
        settings
            .iter()
            .filter(|l| l.starts_with("listener "))
            .cloned()
            .collect::<Vec<_>>()
    };
    assert_eq!(listeners(&device), ["listener 8883"]);
    assert_eq!(listeners(&pairing), ["listener 8884"]);
    for line in [
        "per_listener_settings true",
        "persistence true",
        "allow_anonymous false",
        "password_file /etc/mosquitto/tandem/passwords",
        "acl_file /etc/mosquitto/tandem/acl-devices",
        "use_username_as_clientid true",
        "certfile /etc/mosquitto/tandem/server.crt",
        "tls_version tlsv1.2",
    ] {
        assert!(has(&device, line), "mosquitto.conf lacks `{line}`");
    }
    for line in [
        "per_listener_settings true",
        "persistence false",
        "allow_anonymous true",
        "acl_file /etc/mosquitto/tandem/acl-pairing",
        "certfile /etc/mosquitto/tandem/server.crt",
        "tls_version tlsv1.2",
    ] {
        assert!(has(&pairing, line), "mosquitto-pairing.conf lacks `{line}`");
    }
    assert!(!device.iter().any(|l| l.contains("allow_anonymous true")));
    assert!(!device.iter().any(|l| l.contains("acl-pairing")));
    assert!(!pairing.iter().any(|l| l.contains("password_file")));
    assert!(!pairing.iter().any(|l| l.contains("acl-devices")));
    assert!(
        !settings(&shipped("acl-devices"))
            .iter()
            .any(|l| l.contains("pair/"))
    );
    assert_eq!(
        settings(&shipped("acl-pairing")),
        ["topic readwrite tandem/v1/pair/+"]
    );
}

#[test]
fn a_shipped_config_that_changed_shape_fails_loudly() {
    let device: SocketAddr = "127.0.0.1:40001".parse().unwrap();
    let pairing: SocketAddr = "127.0.0.1:40002".parse().unwrap();
    let dir = Path::new("/tmp/t");
    let (device_conf, pairing_conf) = (shipped(DEVICE_CONF), shipped(PAIRING_CONF));

    let renumbered = pairing_conf.replace("listener 8884", "listener 9999");
    let err = pairing_config_text(&renumbered, pairing, dir, false).unwrap_err();
    assert!(err.contains("listener 9999"), "{err}");
    let no_listener = pairing_conf.replace("listener 8884", "");
    let err = pairing_config_text(&no_listener, pairing, dir, false).unwrap_err();
    assert!(err.contains("`listener 8884` is missing"), "{err}");
    let no_log = pairing_conf.replace("mosquitto-pairing.log", "pairing.log");
    let err = pairing_config_text(&no_log, pairing, dir, false).unwrap_err();
    assert!(err.contains("mosquitto-pairing.log"), "{err}");

    let moved_data = device_conf.replace("/var/lib/mosquitto/", "/srv/mosquitto/");
    let err = device_config_text(&moved_data, device, dir, false).unwrap_err();
    assert!(
        err.contains("persistence_location /var/lib/mosquitto/"),
        "{err}"
    );
    let moved = device_conf.replace("/etc/mosquitto/tandem/", "/srv/tandem/");
    let err = device_config_text(&moved, device, dir, false).unwrap_err();
    assert!(err.contains("/etc/mosquitto/tandem/"), "{err}");
    // The pairing listener back in the device broker's process is refused.
    let merged = format!("{device_conf}\nlistener 8884\nallow_anonymous true\n");
    let err = device_config_text(&merged, device, dir, false).unwrap_err();
    assert!(err.contains("unexpected line `listener 8884`"), "{err}");
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
fn the_deployed_brokers_are_two_processes_serving_tls_and_registering_devices_live() {
    let broker = DeployedMosquitto::start(&[Credentials::new("acct-0", "first")]).unwrap();
    assert_eq!(
        broker.device_url().to_string(),
        format!("mqtts://{}", broker.device_addr())
    );
    assert_eq!(
        broker.pairing_url().to_string(),
        format!("mqtts://{}", broker.pairing_addr())
    );
    assert_ne!(broker.device_addr(), broker.pairing_addr());
    let (device_pid, pairing_pid) = (broker.devices.pid().unwrap(), broker.pairing.pid().unwrap());
    assert_ne!(device_pid, pairing_pid);
    TcpStream::connect(broker.device_addr()).unwrap();
    TcpStream::connect(broker.pairing_addr()).unwrap();
    assert!(broker.ca_pem().starts_with(b"-----BEGIN CERTIFICATE-----"));
    for file in [
        DEVICE_CONF,
        PAIRING_CONF,
        "acl-devices",
        "acl-pairing",
        "server.crt",
    ] {
        assert!(broker.dir().join(file).is_file(), "{file} missing");
    }
    // Each process logs to its own file.
    assert!(
        broker.log().contains("mosquitto version"),
        "{}",
        broker.log()
    );
    assert!(
        broker.pairing_log().contains("mosquitto version"),
        "{}",
        broker.pairing_log()
    );
    assert_ne!(broker.log(), broker.pairing_log());
    let passwords = std::fs::read_to_string(broker.dir().join("passwords")).unwrap();
    assert!(passwords.starts_with("acct-0:$7$"), "{passwords}");
    assert!(!passwords.contains("first"));

    broker
        .register(&[Credentials::new("acct-1", "second")])
        .unwrap();
    let passwords = std::fs::read_to_string(broker.dir().join("passwords")).unwrap();
    let users: Vec<&str> = passwords
        .lines()
        .filter_map(|l| l.split(':').next())
        .collect();
    assert_eq!(users, ["acct-0", "acct-1"]);
    assert!(broker.log().contains(RELOAD_LINE), "{}", broker.log());
    assert!(!broker.pairing_log().contains(RELOAD_LINE));

    let (device_addr, pairing_addr) = (broker.device_addr(), broker.pairing_addr());
    drop(broker);
    for pid in [device_pid, pairing_pid] {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "{pid} still running"
        );
    }
    assert!(
        TcpStream::connect(device_addr).is_err(),
        "devices still accepting"
    );
    assert!(
        TcpStream::connect(pairing_addr).is_err(),
        "pairing still accepting"
    );
}
