//! Tests of the messaging benchmark: a tiny run end to end (every figure printed, positive,
//! and consistent), and the percentile it reports.

use super::*;

fn figure<'a>(printed: &'a str, name: &str) -> Option<&'a str> {
    printed
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
}

/// The number a figure line starts with.
fn number(printed: &str, name: &str) -> f64 {
    let value = figure(printed, name).unwrap_or_else(|| panic!("no {name} in:\n{printed}"));
    value
        .split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{name} is not a number: {value}"))
}

#[test]
fn a_tiny_run_prints_every_figure_positive_beside_its_baseline() {
    let counts = Counts {
        latency: 30,
        warmup: 5,
        answered: 3,
        budget: Duration::from_secs(30),
        fanout: 40,
    };
    let mut out = Vec::new();
    run_with(&mut out, counts).unwrap();
    let printed = String::from_utf8(out).unwrap();

    for name in [
        "messaging.env.disk_sync_us.p50",
        "messaging.envelope_bytes",
        "messaging.bare_rtt_us.p50",
        "messaging.bare_rtt_us.p99",
        "messaging.bare_rtt_answered_us.p50",
        "messaging.bare_rtt_answered_nodelay_us.p99",
        "messaging.send_to_stored.split.answered_us",
        "messaging.send_to_stored.split.acknowledged_us",
        "messaging.send_to_stored_us.p50",
        "messaging.send_to_stored_us.p99",
        "messaging.send_to_stored_vs_bare.p50",
        "messaging.fanout_envelopes_per_s",
        "messaging.fanout.seal",
        "messaging.fanout.bare_publish_per_s",
        "messaging.fanout_vs_bare",
    ] {
        assert!(
            number(&printed, name) > 0.0,
            "{name} is not positive in:\n{printed}"
        );
    }
    assert!(
        number(&printed, "messaging.bare_rtt_us.p50")
            <= number(&printed, "messaging.bare_rtt_us.p99")
    );
    assert!(
        number(&printed, "messaging.send_to_stored_us.p50")
            <= number(&printed, "messaging.send_to_stored_us.p99")
    );
    // A real envelope: a text of about 70 characters, sealed, with its header.
    let envelope = number(&printed, "messaging.envelope_bytes");
    assert!((100.0..1_000.0).contains(&envelope), "{envelope} bytes");
    assert!(
        figure(&printed, "messaging.send_to_stored_us.p50")
            .unwrap()
            .contains("30 messages)"),
        "the whole series ran within its budget:\n{printed}"
    );
    assert_eq!(number(&printed, "messaging.fanout.devices"), 5.0);
    assert_eq!(number(&printed, "messaging.fanout.envelopes"), 200.0);
    assert!(
        figure(&printed, "messaging.env.homes")
            .unwrap()
            .contains('(')
    );
    for goal in ["send_to_stored_p50", "send_to_stored_p99", "fanout"] {
        let verdict = figure(&printed, &format!("messaging.goal.{goal}")).unwrap();
        assert!(
            verdict.starts_with("MET") || verdict.starts_with("MISSED"),
            "{goal}: {verdict}"
        );
    }
}

#[test]
fn percentiles_take_the_nearest_rank() {
    let sorted: Vec<Duration> = (1..=200).map(Duration::from_micros).collect();
    assert_eq!(percentile(&sorted, 50), Some(Duration::from_micros(100)));
    assert_eq!(percentile(&sorted, 99), Some(Duration::from_micros(198)));
    assert_eq!(percentile(&sorted, 100), Some(Duration::from_micros(200)));
    assert_eq!(percentile(&sorted[..1], 99), Some(Duration::from_micros(1)));
    assert_eq!(percentile(&[], 50), None);

    let shuffled = [7, 3, 9, 1, 5].map(Duration::from_millis);
    assert_eq!(
        p50_p99(&shuffled).unwrap(),
        (Duration::from_millis(5), Duration::from_millis(9))
    );
    assert!(p50_p99(&[]).is_err());
}

#[test]
fn every_message_text_has_the_same_length() {
    let lengths: Vec<usize> = [0, 7, 42, 9_999, 99_999]
        .iter()
        .map(|&i| message_text(i).len())
        .collect();
    assert!(lengths.windows(2).all(|w| w[0] == w[1]), "{lengths:?}");
}
