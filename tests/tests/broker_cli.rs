#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! `tandem broker` as a user runs it: it says where it listens (the real port when asked for
//! port 0), carries a QoS 1 message between the stock Mosquitto command-line clients, stops
//! cleanly on Ctrl-C (SIGINT) or SIGTERM, and refuses a port that is taken with a clear error.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tandem_tests::ChildGuard;
use tandem_tests::cli::{BrokerProcess, command, run};

const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// `name` from `$PATH` (or the usual Debian places), or a failure saying how to install it.
fn mosquitto_client(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin", "/usr/local/bin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not installed: the broker test uses the Mosquitto command-line \
                 clients (`apt-get install mosquitto-clients`)"
            )
        })
}

#[test]
fn the_broker_carries_a_qos1_message_between_mosquitto_clients_and_stops_on_ctrl_c() {
    let (sub, publish) = (
        mosquitto_client("mosquitto_sub"),
        mosquitto_client("mosquitto_pub"),
    );
    let broker = BrokerProcess::start("127.0.0.1:0").unwrap();
    let addr = broker.addr();
    assert!(addr.ip().is_loopback(), "{addr}");
    assert_ne!(addr.port(), 0, "the real port is printed, not 0");
    let port = addr.port().to_string();

    // A subscriber waits for one message at QoS 1 (and gives up after 5 s).
    let mut subscriber = ChildGuard::spawn(
        Command::new(&sub)
            .args(["-h", "127.0.0.1", "-p", &port, "-i", "tandem-test-sub"])
            .args(["-t", "t/x", "-q", "1", "-C", "1", "-W", "5", "-v"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    )
    .unwrap();
    // Publish until the subscriber has it: its SUBSCRIBE may reach the broker after our
    // first PUBLISH, and a message published before the subscription is not delivered.
    let started = Instant::now();
    let status = loop {
        let published = run(Command::new(&publish)
            .args(["-h", "127.0.0.1", "-p", &port, "-i", "tandem-test-pub"])
            .args(["-t", "t/x", "-q", "1", "-m", "hello"]))
        .unwrap();
        assert!(published.success(), "{published}");
        if let Some(status) = subscriber.wait_timeout(Duration::from_millis(200)).unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "mosquitto_sub received nothing in 5 s"
        );
    };
    let mut received = String::new();
    std::io::Read::read_to_string(
        subscriber.child_mut().stdout.as_mut().unwrap(),
        &mut received,
    )
    .unwrap();
    assert!(
        status.success(),
        "mosquitto_sub exited with {status}: {received}"
    );
    assert_eq!(received, "t/x hello\n");

    // Ctrl-C: a clean stop.
    let stopped = broker.stop("INT", STOP_TIMEOUT).unwrap();
    assert_eq!(stopped.status.code(), Some(0), "{stopped:?}");
    assert_eq!(stopped.stdout, "broker stopped\n", "{stopped:?}");
}

#[test]
fn sigterm_stops_the_broker_cleanly_too() {
    let broker = BrokerProcess::start("127.0.0.1:0").unwrap();
    // Let it settle first (see the next test for a signal that comes at once).
    std::net::TcpStream::connect(broker.addr()).unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let stopped = broker.stop("TERM", STOP_TIMEOUT).unwrap();
    assert_eq!(stopped.status.code(), Some(0), "{stopped:?}");
    assert_eq!(stopped.stdout, "broker stopped\n", "{stopped:?}");
}

/// A supervisor may stop the broker as soon as it has said where it listens: once the
/// address line is out, SIGINT and SIGTERM must already mean a clean stop, not the default
/// "killed by a signal". Thirty quick starts and stops, alternating the signals: the
/// window between the line and the handlers is short, so it takes a few tries to hit it.
#[test]
fn a_signal_right_after_the_address_line_still_stops_cleanly() {
    let mut outcomes = Vec::new();
    for signal in ["TERM", "INT"].repeat(15) {
        let broker = BrokerProcess::start("127.0.0.1:0").unwrap();
        let stopped = broker.stop(signal, STOP_TIMEOUT).unwrap();
        outcomes.push(format!("SIG{signal}: {}", stopped.status));
    }
    let unclean: Vec<&String> = outcomes
        .iter()
        .filter(|o| !o.ends_with("exit status: 0"))
        .collect();
    assert!(
        unclean.is_empty(),
        "{} of {} stops were not clean: {outcomes:#?}",
        unclean.len(),
        outcomes.len()
    );
}

/// A second broker on a port that is taken fails at once, exit code 1, saying which address
/// and why; the first one keeps running.
fn second_broker_on_a_taken_port() -> (BrokerProcess, tandem_tests::cli::Run) {
    let first = BrokerProcess::start("127.0.0.1:0").unwrap();
    let addr = first.addr().to_string();
    let mut second = command("tandem").unwrap();
    second.args(["broker", "--listen", &addr]);
    let started = Instant::now();
    let second = run(&mut second).unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "the second broker took {:?} to give up",
        started.elapsed()
    );
    (first, second)
}

#[test]
fn a_second_broker_on_a_taken_port_fails_clearly() {
    let (first, second) = second_broker_on_a_taken_port();
    let addr = first.addr().to_string();
    assert_eq!(second.code(), Some(1), "{second}");
    assert!(!second.stdout.contains("listening"), "{second}");
    let errors = second.errors();
    assert_eq!(errors.len(), 1, "{second}");
    assert!(
        errors[0].contains(&addr),
        "the error names {addr}: {second}"
    );
    assert!(errors[0].contains("in use"), "the error says why: {second}");

    // The first broker was not disturbed.
    let stopped = first.stop("INT", STOP_TIMEOUT).unwrap();
    assert_eq!(stopped.status.code(), Some(0), "{stopped:?}");
}

#[test]
fn the_reason_a_port_is_taken_is_given_once() {
    let (_first, second) = second_broker_on_a_taken_port();
    let errors = second.errors();
    let reason = "Address already in use";
    assert_eq!(
        errors.first().map(|e| e.matches(reason).count()),
        Some(1),
        "the error repeats the operating system's reason: {second}"
    );
}
