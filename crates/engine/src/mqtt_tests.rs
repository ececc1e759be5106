//! One connection to real embedded brokers on loopback: it fails over between the brokers of
//! a list, says which broker it is on and carries on there; a full request queue holds
//! requests in order instead of failing.

use std::time::Duration;

use tandem_net::EmbeddedBroker;
use tokio::time::Instant;

use super::*;

const WAIT: Duration = Duration::from_secs(15);

/// Polls until `wanted` says yes to what came, for at most [`WAIT`]; everything else seen is
/// returned too, in order, to tell what happened.
async fn until(
    conn: &mut Connection,
    what: &str,
    wanted: impl Fn(&Incoming) -> bool,
) -> Vec<String> {
    let deadline = Instant::now() + WAIT;
    let mut seen = Vec::new();
    loop {
        let incoming = conn.next(Some(deadline)).await.unwrap();
        seen.push(format!("{incoming:?}"));
        if wanted(&incoming) {
            return seen;
        }
        assert!(
            !matches!(incoming, Incoming::Timeout),
            "no {what} within {WAIT:?}: {seen:?}"
        );
    }
}

fn local_broker() -> EmbeddedBroker {
    EmbeddedBroker::start(([127, 0, 0, 1], 0).into()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_fails_over_to_the_next_broker_and_carries_on_there() {
    let first = local_broker();
    let second = local_broker();
    let (first_url, second_url) = (first.url().to_string(), second.url().to_string());
    let mut conn =
        Connection::new(&format!("{first_url}, {second_url}"), "failover-test", true).unwrap();
    conn.set_patient();
    conn.subscribe("tandem/test/failover").unwrap();

    // It starts on the first broker of the list.
    until(&mut conn, "the first connection", |i| {
        matches!(i, Incoming::Connected)
    })
    .await;
    assert_eq!(conn.url(), first_url);
    assert_eq!(conn.connected_url(), Some(first_url.clone()));

    // The first broker dies: the outage is reported once, then the second broker takes over.
    tokio::task::spawn_blocking(move || first.stop())
        .await
        .unwrap();
    let seen = until(&mut conn, "the second connection", |i| {
        matches!(i, Incoming::Connected)
    })
    .await;
    let downs = seen.iter().filter(|s| s.starts_with("Down")).count();
    assert_eq!(downs, 1, "one outage reported: {seen:?}");
    assert!(
        seen.iter().any(|s| s.contains(&first_url)),
        "the outage names the broker that died: {seen:?}"
    );
    assert_eq!(conn.url(), second_url);
    assert_eq!(conn.connected_url(), Some(second_url.clone()));

    // Subscriptions were renewed there: a message published now comes back.
    until(&mut conn, "the renewed subscription", |i| {
        matches!(i, Incoming::SubAck)
    })
    .await;
    conn.publish(
        "tandem/test/failover",
        b"on the second broker".to_vec(),
        false,
    )
    .unwrap();
    until(
        &mut conn,
        "the message on the second broker",
        |i| matches!(i, Incoming::Publish(p) if p.payload.as_ref() == b"on the second broker"),
    )
    .await;

    // With every broker gone, it says it is connected to none.
    tokio::task::spawn_blocking(move || second.stop())
        .await
        .unwrap();
    until(&mut conn, "the second outage", |i| {
        matches!(i, Incoming::Down(_))
    })
    .await;
    assert_eq!(conn.connected_url(), None);
}

#[test]
fn a_bad_entry_in_a_broker_list_is_refused_before_connecting() {
    for bad in [
        "mqtt://a:1883,",
        "mqtt://a:1883,ws://b",
        "mqtt://a,mqtt://a",
    ] {
        assert!(
            matches!(
                Connection::new(bad, "failover-test", true),
                Err(Error::BadInput(_))
            ),
            "{bad}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_beyond_the_request_queue_are_held_in_order_and_all_go_out() {
    let broker = local_broker();
    let url = broker.url().to_string();
    let mut reader = Connection::new(&url, "held-reader", true).unwrap();
    reader.subscribe("tandem/test/held").unwrap();
    until(&mut reader, "the reader's subscription", |i| {
        matches!(i, Incoming::SubAck)
    })
    .await;

    // More publishes than the request queue holds, all made before the writer's loop takes
    // any (as when it waits on the broker's acknowledgements): none is refused.
    let count = REQUEST_CAPACITY * 2 + 10;
    let mut writer = Connection::new(&url, "held-writer", false).unwrap();
    for i in 0..count {
        let tag = i64::try_from(i).unwrap();
        writer
            .publish_tagged("tandem/test/held", tag.to_be_bytes().to_vec(), tag)
            .unwrap();
    }
    assert!(
        writer.held.len() >= count - REQUEST_CAPACITY,
        "{}",
        writer.held.len()
    );

    // Every one is acknowledged, with its own tag, and the reader gets them in order.
    let mut acked = std::collections::BTreeSet::new();
    let deadline = Instant::now() + WAIT * 4;
    while acked.len() < count {
        match writer.next(Some(deadline)).await.unwrap() {
            Incoming::PubAck(Some(tag)) => assert!(acked.insert(tag), "tag {tag} twice"),
            Incoming::Timeout => panic!("{} of {count} acknowledged", acked.len()),
            _ => {}
        }
    }
    assert!(writer.held.is_empty());
    let mut received = Vec::with_capacity(count);
    while received.len() < count {
        match reader.next(Some(deadline)).await.unwrap() {
            Incoming::Publish(p) => {
                let bytes: [u8; 8] = p.payload.as_ref().try_into().unwrap();
                received.push(i64::from_be_bytes(bytes));
                reader.ack(&p).unwrap();
            }
            Incoming::Timeout => panic!("{} of {count} received", received.len()),
            _ => {}
        }
    }
    let want: Vec<i64> = (0..i64::try_from(count).unwrap()).collect();
    assert_eq!(received, want);
    drop((writer, reader));
    tokio::task::spawn_blocking(move || broker.stop())
        .await
        .unwrap();
}
