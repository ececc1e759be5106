#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Tandem under the broker configuration shipped in `docs/broker/` (Mosquitto, TLS, a password
//! per device, per-client ACLs), with real processes: the phones log in with passwords derived
//! from their accounts' broker secrets, which the operator registered from `tandem-phone
//! broker-passwords`; a desktop pairs anonymously on the pairing listener and gets its own
//! login in the phone's offer; then messages flow both ways.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use tandem_net::Credentials;
use tandem_tests::cli::{Background, Home, Run};
use tandem_tests::mosquitto::DeployedMosquitto;

const STEP: Duration = Duration::from_secs(20);

fn must<T>(result: tandem_tests::Result<T>) -> T {
    result.unwrap_or_else(|e| panic!("{e}"))
}

fn ok(run: Run) -> Run {
    assert!(run.success(), "{run}");
    run
}

fn path_arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// The `username:password` lines `tandem-phone broker-passwords` prints, as logins.
fn logins(phone: &Home, devices: u32) -> Vec<Credentials> {
    let run = ok(must(phone.phone([
        "broker-passwords",
        "--devices",
        &devices.to_string(),
    ])));
    run.stdout
        .lines()
        .map(|line| {
            let (user, password) = line.split_once(':').unwrap();
            Credentials::new(user, password)
        })
        .collect()
}

/// A phone whose account uses the deployed broker, registered with the operator.
fn phone(broker: &DeployedMosquitto, ca: &Path, name: &str) -> Home {
    let home = must(Home::new());
    ok(must(home.phone([
        "init",
        "--name",
        name,
        "--broker",
        &broker.device_url().to_string(),
        "--broker-ca",
        path_arg(ca),
        "--broker-login",
    ])));
    must(broker.register(&logins(&home, 3)));
    home
}

fn contact_link(phone: &Home) -> String {
    let value = must(ok(must(phone.phone(["--json", "contact-link"]))).json());
    value["link"].as_str().unwrap().to_owned()
}

fn wait_for_message(running: &mut Background, text: &str) -> Value {
    must(
        running.wait_for(&format!("the message {text:?}"), STEP, |event| {
            event["event"] == "message" && event["message"]["text"] == text
        }),
    )
}

#[test]
fn a_desktop_paired_anonymously_logs_in_with_what_the_offer_gave_it() {
    let Some(broker) = must(DeployedMosquitto::start_or_skip(&[])) else {
        return;
    };
    let scratch = must(Home::new());
    let ca = scratch.scratch().join("ca.pem");
    std::fs::write(&ca, broker.ca_pem()).unwrap();

    let alice = phone(&broker, &ca, "Alice");
    let bob = phone(&broker, &ca, "Bob");
    ok(must(alice.phone(["contact-add", &contact_link(&bob)])));
    ok(must(bob.phone(["contact-add", &contact_link(&alice)])));

    // The desktop has no login: it shows its code on the pairing listener.
    let desktop = must(Home::new());
    let code_file = desktop.scratch().join("code.txt");
    let mut link = must(desktop.spawn_companion([
        "--json",
        "link",
        "--broker",
        &broker.pairing_url().to_string(),
        "--broker-ca",
        path_arg(&ca),
        "--qr-text",
        path_arg(&code_file),
    ]));
    let code = must(link.wait_for_event("code", STEP));
    let link_text = code["link"].as_str().unwrap().to_owned();
    ok(must(
        must(alice.spawn_phone(["scan", "--link", &link_text, "--yes"])).finish(STEP),
    ));
    ok(must(link.finish(STEP)));
    let status = must(ok(must(desktop.companion(["status", "--json"]))).json());
    assert_eq!(status["linked"], true, "{status}");

    // Everyone runs on the device listener, each with its own login.
    let mut alice_run = must(alice.spawn_phone(["--json", "run"]));
    let mut desktop_run = must(desktop.spawn_companion(["--json", "run"]));
    let mut bob_run = must(bob.spawn_phone(["--json", "run"]));
    for running in [&mut alice_run, &mut desktop_run, &mut bob_run] {
        must(running.wait_for_event("online", STEP));
    }
    ok(must(bob.phone([
        "send",
        "Alice",
        "Hello under ACLs",
        "--wait",
    ])));
    wait_for_message(&mut desktop_run, "Hello under ACLs");
    wait_for_message(&mut alice_run, "Hello under ACLs");
    ok(must(desktop.companion([
        "send",
        "Bob",
        "Answered from the desktop",
        "--wait",
    ])));
    wait_for_message(&mut bob_run, "Answered from the desktop");

    // The broker saw the desktop log in as itself (username = its broker name, the device id
    // `{account}.{index}` as `{account}-{index}`).
    let device = status["device"].as_str().unwrap();
    let (account, index) = device.rsplit_once('.').unwrap();
    let name = format!("{account}-{index}");
    assert!(
        broker.log().contains(&format!("as {name} "))
            || broker.log().contains(&format!("u'{name}'")),
        "the broker log shows {name} logging in:\n{}",
        broker.log()
    );
}
