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
