//! Tests of the load benchmark: a quick load on the embedded broker and on the three-node
//! NATS cluster (skipped when `nats-server` is not installed) loses nothing and shows nothing
//! twice; the printed lines; the shape of the population.

use super::*;

const QUICK: Plan = Plan {
    devices: DEVICES_QUICK,
    messages: MESSAGES_QUICK,
    delivery_wait: DELIVERY_WAIT,
};

fn assert_complete(figures: &Figures) {
    assert_eq!(figures.expected, DEVICES_QUICK * MESSAGES_QUICK * 2);
    assert_eq!(
        figures.delivered,
        figures.expected,
        "lost {}: {figures:?}",
        figures.lost()
    );
    assert_eq!(figures.lost(), 0);
    assert_eq!(figures.failed, 0, "{figures:?}");
    assert!(figures.p50 > Duration::ZERO && figures.p50 <= figures.p99);
    assert!(figures.wall > Duration::ZERO && figures.throughput() > 0);
}

#[test]
fn a_quick_load_on_the_embedded_broker_loses_nothing_and_shows_nothing_twice() {
    let broker = Embedded::start().unwrap();
    let figures = run_setup(std::slice::from_ref(broker.url()), QUICK).unwrap();
    assert_complete(&figures);
    assert_eq!(figures.nodes, 1);
}

#[test]
fn a_quick_load_on_the_nats_cluster_loses_nothing_and_shows_nothing_twice() {
    let cluster = match NatsCluster::start() {
        Err(e @ tandem_tests::Error::NatsMissing { .. }) => {
            eprintln!("skipped: {e}");
            return;
        }
        other => other.unwrap(),
    };
    let figures = run_setup(cluster.urls(), QUICK).unwrap();
    assert_complete(&figures);
    assert_eq!(figures.nodes, 3);
}

#[test]
fn a_load_against_given_brokers_prints_one_line_per_setup_and_the_cluster_beside_the_single() {
    let broker = Embedded::start().unwrap();
    // The same broker under two names stands for a two-node setup: only the printing is tested.
    let options = Options {
        devices: Some(8),
        messages: Some(3),
        brokers: vec![
            broker.url().to_string(),
            format!("{},mqtt://localhost:{}", broker.url(), broker.url().port()),
        ],
        quick: true,
    };
    let mut out = Vec::new();
    run(&mut out, &options).unwrap();
    let printed = String::from_utf8(out).unwrap();
    let find = |name: &str| {
        printed
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
            .unwrap_or_else(|| panic!("no {name} in:\n{printed}"))
    };
    assert!(find("load.plan").starts_with("8 x 3 devices x messages (4 accounts"));
    for name in ["load.brokers1", "load.brokers2"] {
        assert!(
            find(name).contains("(48 of 48 delivered, 0 lost"),
            "{name} in:\n{printed}"
        );
    }
    assert!(find("load.brokers2").contains("over 2 nodes"));
    assert!(find("load.brokers2_vs_brokers1").contains("x the throughput"));
}

#[test]
fn envelopes_that_never_arrive_are_counted_lost_and_fail_the_run() {
    // Two brokers that do not know each other, listed as one setup: every device has one
    // recipient device on the other broker, so half the envelopes cannot arrive.
    let first = Embedded::start().unwrap();
    let second = Embedded::start().unwrap();
    let plan = Plan {
        devices: 8,
        messages: 2,
        delivery_wait: Duration::from_secs(1),
    };
    let figures = run_setup(&[first.url().clone(), second.url().clone()], plan).unwrap();
    assert_eq!(figures.expected, 32);
    assert_eq!(figures.delivered, 16, "{figures:?}");
    assert_eq!(figures.lost(), 16);

    let e = verdict(&[("brokers".to_owned(), figures)])
        .unwrap_err()
        .to_string();
    assert!(e.contains("brokers: 16 of 32 envelopes lost"), "{e}");
}

#[test]
fn every_device_writes_to_both_devices_of_the_next_account_and_hears_from_two() {
    let plan = Plan {
        devices: 6,
        messages: 1,
        delivery_wait: DELIVERY_WAIT,
    };
    let population = Population::new(plan).unwrap();
    let mut heard_from = vec![0; plan.devices];
    for (i, member) in population.members.iter().enumerate() {
        assert_eq!(member.writes_to.len(), DEVICES_PER_ACCOUNT);
        for &to in &member.writes_to {
            let peer = &population.members[to];
            assert_ne!(peer.id.account, member.id.account, "device {i}");
            assert!(population.lists[&peer.id.account].contains(&peer.id, &peer.public));
            heard_from[to] += 1;
        }
        assert!(!member.id.broker_name().contains('.'));
    }
    assert!(heard_from.iter().all(|&n| n == DEVICES_PER_ACCOUNT));
    assert_eq!(population.lists.len(), 3);
    assert!(Plan { devices: 3, ..plan }.check().is_err());
    assert!(
        Plan {
            messages: 0,
            ..plan
        }
        .check()
        .is_err()
    );
}
