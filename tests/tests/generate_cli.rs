#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! `tandem-phone generate` makes the same history from the same seed: two homes given the same
//! command hold the same chats and messages, a different seed gives a different history, and
//! generating again in the same home adds nothing.

use serde_json::Value;
use tandem_tests::cli::{Home, Run};

const CHATS: &str = "4";
const MESSAGES: u64 = 3000;

fn ok(run: Run) -> Run {
    assert!(run.success(), "expected success: {run}");
    run
}

/// `generate --chats 4 --messages 3000 --seed SEED --json`: its report.
fn generate(home: &Home, seed: u64) -> Value {
    let messages = MESSAGES.to_string();
    let seed = seed.to_string();
    let args = [
        "generate",
        "--chats",
        CHATS,
        "--messages",
        &messages,
        "--seed",
        &seed,
        "--json",
    ];
    ok(home.phone(args).unwrap()).json().unwrap()
}

/// A home with the history of `seed`.
fn generated(seed: u64) -> Home {
    let home = Home::new().unwrap();
    let report = generate(&home, seed);
    assert_eq!(report["chats"], 4, "{report}");
    assert_eq!(report["messages"], MESSAGES, "{report}");
    assert_eq!(report["added"], MESSAGES, "{report}");
    home
}

fn chats(home: &Home) -> Value {
    ok(home.phone(["chats", "--json"]).unwrap()).json().unwrap()
}

/// The newest 200 messages of the busiest chat (named by its id, the same in both homes when
/// generation is deterministic).
fn busiest_history(home: &Home) -> Value {
    let chats = chats(home);
    let busiest = chats
        .as_array()
        .unwrap()
        .iter()
        .max_by_key(|c| c["messages"].as_u64().unwrap())
        .unwrap();
    let id = busiest["id"].as_str().unwrap();
    ok(home
        .phone(["history", id, "--limit", "200", "--json"])
        .unwrap())
    .json()
    .unwrap()
}

/// `value` without its times and message ids (which carry the time), to compare what does
/// not depend on when it was generated.
fn timeless(mut value: Value) -> Value {
    for item in value.as_array_mut().unwrap() {
        let item = item.as_object_mut().unwrap();
        item.remove("last_ts");
        item.remove("ts");
        if item.contains_key("text") {
            item.remove("id");
        }
    }
    value
}

#[test]
fn the_same_seed_gives_the_same_history_in_two_homes() {
    let (first, second) = (generated(9), generated(9));
    let chats_first = chats(&first);
    assert_eq!(chats_first.as_array().unwrap().len(), 4);
    let total: u64 = chats_first
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["messages"].as_u64().unwrap())
        .sum();
    assert_eq!(total, MESSAGES);
    assert_eq!(chats(&second), chats_first, "chats --json differ");
    assert_eq!(
        busiest_history(&second),
        busiest_history(&first),
        "history --json differs"
    );
}

#[test]
fn the_same_seed_gives_the_same_chats_texts_and_senders_whenever_it_runs() {
    let (first, second) = (generated(9), generated(9));
    assert_eq!(timeless(chats(&second)), timeless(chats(&first)));
    let history = busiest_history(&first);
    assert_eq!(history.as_array().unwrap().len(), 200);
    assert_eq!(timeless(busiest_history(&second)), timeless(history));
}

#[test]
fn a_different_seed_gives_a_different_history() {
    let (nine, ten) = (generated(9), generated(10));
    assert_ne!(timeless(chats(&ten)), timeless(chats(&nine)));
    assert_ne!(
        timeless(busiest_history(&ten)),
        timeless(busiest_history(&nine))
    );
}

#[test]
fn generating_again_in_the_same_home_adds_nothing() {
    let home = generated(9);
    let before = ok(home.phone(["status", "--json"]).unwrap())
        .json()
        .unwrap();
    let again = generate(&home, 9);
    assert_eq!(again["messages"], MESSAGES, "{again}");
    assert_eq!(
        again["added"], 0,
        "the second run stored duplicates: {again}"
    );
    let after = ok(home.phone(["status", "--json"]).unwrap())
        .json()
        .unwrap();
    assert_eq!(after["messages"], before["messages"]);
    assert_eq!(after["chats"], before["chats"]);
}
