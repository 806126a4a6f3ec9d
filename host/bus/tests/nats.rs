//! The NATS bus against a real nats-server with JetStream (started by
//! `weft-testkit`): two buses on one server stand for two hosts.

#![allow(clippy::unwrap_used)] // a test that cannot unwrap has failed

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use weft_bus::{NatsBus, NatsConfig};
use weft_engine::bus::{Change, Delivery, Scope, Subscription, SystemBus, Wake};
use weft_engine::{Event, EventBody};
use weft_testkit::TempNats;

/// Only to keep a broken build from hanging: nothing here is timed.
const DEADLINE: Duration = Duration::from_secs(60);

fn config(url: &str, cluster: &str) -> NatsConfig {
    NatsConfig {
        url: url.to_owned(),
        cluster: cluster.to_owned(),
        ..NatsConfig::default()
    }
}

async fn host(nats: &TempNats, cluster: &str) -> Arc<NatsBus> {
    NatsBus::connect(config(&nats.url(), cluster))
        .await
        .unwrap()
}

fn event(thread: &str, text: &str) -> Event {
    Event {
        seq: 0,
        thread: thread.into(),
        run: "r".into(),
        frame: None,
        node: None,
        body: EventBody::Progress { text: text.into() },
    }
}

fn text(e: &Event) -> &str {
    match &e.body {
        EventBody::Progress { text } => text,
        _ => "",
    }
}

/// The next `n` events of `sub` (missed counts fail the test).
async fn take(sub: &mut Subscription, n: usize) -> Vec<Arc<Event>> {
    let mut got = Vec::new();
    while got.len() < n {
        match tokio::time::timeout(DEADLINE, sub.items.next()).await {
            Ok(Some(Delivery::Event(e))) => got.push(e),
            Ok(Some(Delivery::Missed(n))) => panic!("missed {n} events"),
            Ok(None) => panic!("the subscription ended"),
            Err(_) => panic!("no event within {DEADLINE:?}; got {got:?}"),
        }
    }
    got
}

#[tokio::test]
async fn two_hosts_see_each_others_events_in_one_global_order() {
    let nats = TempNats::start().unwrap();
    let a = host(&nats, "order").await;
    let b = host(&nats, "order").await;
    assert_ne!(a.host_id(), b.host_id());
    let mut on_a = a.subscribe(Scope::All, None).await;
    let mut on_b = b.subscribe(Scope::All, None).await;
    for i in 0..5 {
        a.publish(&event("ta", &format!("a{i}")), Some("p"));
        b.publish(&event("tb", &format!("b{i}")), Some("p"));
    }
    let seen_a = take(&mut on_a, 10).await;
    let seen_b = take(&mut on_b, 10).await;
    let order = |v: &[Arc<Event>]| {
        v.iter()
            .map(|e| (e.seq, text(e).to_owned()))
            .collect::<Vec<_>>()
    };
    assert_eq!(order(&seen_a), order(&seen_b), "one order for every host");
    assert!(seen_a.windows(2).all(|w| w[0].seq < w[1].seq), "{seen_a:?}");
    for i in 0..5 {
        for who in ["a", "b"] {
            let t = format!("{who}{i}");
            assert_eq!(seen_a.iter().filter(|e| text(e) == t).count(), 1, "{t}");
        }
    }
    // Each host's own events keep their order.
    let own: Vec<&str> = seen_b
        .iter()
        .map(|e| text(e))
        .filter(|t| t.starts_with('a'))
        .collect();
    assert_eq!(own, ["a0", "a1", "a2", "a3", "a4"]);
}

#[tokio::test]
async fn a_project_scope_sees_its_project_and_host_events_only() {
    let nats = TempNats::start().unwrap();
    let a = host(&nats, "scope").await;
    let b = host(&nats, "scope").await;
    let mut p1 = b.subscribe(Scope::Project("p1".into()), None).await;
    let mut all = b.subscribe(Scope::All, None).await;
    a.publish(&event("t2", "secret of p2"), Some("p2"));
    a.publish(&event("t1", "of p1"), Some("p1"));
    a.publish(&event("", "host event"), None);
    b.publish(&event("t2", "more of p2"), Some("p2"));
    b.publish(&event("t1", "last of p1"), Some("p1"));
    let got = take(&mut p1, 3).await;
    let mut texts: Vec<&str> = got.iter().map(|e| text(e)).collect();
    assert!(got.windows(2).all(|w| w[0].seq < w[1].seq), "{got:?}");
    // One host's events keep their order; the two hosts' interleave as
    // the stream numbered them.
    let of_a: Vec<&str> = texts
        .iter()
        .copied()
        .filter(|t| *t != "last of p1")
        .collect();
    assert_eq!(of_a, ["of p1", "host event"]);
    texts.sort_unstable();
    assert_eq!(texts, ["host event", "last of p1", "of p1"]);
    assert_eq!(take(&mut all, 5).await.len(), 5);
}

#[tokio::test]
async fn last_event_id_resumes_across_hosts_and_host_restarts() {
    let nats = TempNats::start().unwrap();
    let a = host(&nats, "resume").await;
    let mut sub = a.subscribe(Scope::All, None).await;
    for i in 0..4 {
        a.publish(&event("t", &format!("e{i}")), Some("p"));
    }
    let first = take(&mut sub, 4).await;
    drop(sub);
    drop(a);
    // Another host (and a restarted one) resumes after the second event.
    let b = host(&nats, "resume").await;
    let mut resumed = b.subscribe(Scope::All, Some(first[1].seq)).await;
    assert_eq!(
        (resumed.reset, resumed.missed, resumed.after),
        (None, 0, first[1].seq)
    );
    let rest = take(&mut resumed, 2).await;
    assert_eq!(
        rest.iter().map(|e| e.seq).collect::<Vec<_>>(),
        [first[2].seq, first[3].seq]
    );
    assert_eq!(text(&rest[1]), "e3");
    // An id beyond the last event: told so, then everything kept.
    let mut ahead = b.subscribe(Scope::All, Some(first[3].seq + 100)).await;
    assert_eq!(ahead.reset, Some(first[3].seq + 100));
    assert_eq!(take(&mut ahead, 4).await[0].seq, first[0].seq);
}

#[tokio::test]
async fn ids_survive_a_nats_server_restart_and_a_host_keeps_going_while_it_is_down() {
    let mut nats = TempNats::start().unwrap();
    let a = host(&nats, "restart").await;
    let mut sub = a.subscribe(Scope::All, None).await;
    a.publish(&event("t", "before"), Some("p"));
    let before = take(&mut sub, 1).await.remove(0);
    assert!(before.seq > 0);

    nats.stop().unwrap();
    // Down: this host's own clients still get its events, unnumbered.
    a.publish(&event("t", "while down"), Some("p"));
    let down = take(&mut sub, 1).await.remove(0);
    assert_eq!((down.seq, text(&down)), (0, "while down"));

    nats.start_again().unwrap();
    // Back: events are numbered again, after the ones kept.
    let started = Instant::now();
    let after = loop {
        assert!(started.elapsed() < DEADLINE, "the bus did not come back");
        a.publish(&event("t", "after"), Some("p"));
        let e = take(&mut sub, 1).await.remove(0);
        if e.seq > 0 {
            break e;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(after.seq > before.seq, "{} after {}", after.seq, before.seq);
    assert_eq!(text(&after), "after");

    // A new host resumes after `before` from the restarted server's data.
    let b = host(&nats, "restart").await;
    let mut resumed = b.subscribe(Scope::All, Some(before.seq)).await;
    assert_eq!(resumed.reset, None);
    let next = take(&mut resumed, 1).await.remove(0);
    assert_eq!(next.seq, before.seq + 1);
    assert_eq!(text(&next), "after");
}

#[tokio::test]
async fn an_event_larger_than_the_server_takes_stays_on_its_host_and_the_next_is_numbered() {
    let nats = TempNats::start().unwrap();
    let a = host(&nats, "large").await;
    let b = host(&nats, "large").await;
    let mut on_a = a.subscribe(Scope::All, None).await;
    let mut on_b = b.subscribe(Scope::All, None).await;
    // Above nats-server's default max_payload (1 MiB).
    let large = "x".repeat(2 << 20);
    a.publish(&event("t", &large), Some("p"));
    a.publish(&event("t", "small"), Some("p"));
    let here = take(&mut on_a, 2).await;
    assert_eq!((here[0].seq, text(&here[0]).len()), (0, large.len()));
    assert!(here[1].seq > 0, "{:?}", here[1]);
    assert_eq!(text(&here[1]), "small");
    // The other host never gets the large one.
    let there = take(&mut on_b, 1).await;
    assert_eq!((there[0].seq, text(&there[0])), (here[1].seq, "small"));
}

#[tokio::test]
async fn systems_with_other_cluster_names_do_not_see_each_other() {
    let nats = TempNats::start().unwrap();
    let one = host(&nats, "one").await;
    let two = host(&nats, "two").await;
    let mut on_two = two.subscribe(Scope::All, Some(0)).await;
    one.publish(&event("t", "of one"), None);
    two.publish(&event("t", "of two"), None);
    let got = take(&mut on_two, 1).await;
    assert_eq!(text(&got[0]), "of two");
    assert_eq!(got[0].seq, 1, "two's stream has its own numbers");
}

#[tokio::test]
async fn a_change_broadcast_on_one_host_reaches_the_other_and_so_do_wake_ups() {
    let nats = TempNats::start().unwrap();
    let a = host(&nats, "changes").await;
    let b = host(&nats, "changes").await;
    let mut changes = b.broadcasts();
    let mut wakes = b.wake_ups();
    let change = Change::GraphChanged {
        graph: "g".into(),
        version: "v2".into(),
        change: "activated".into(),
    };
    a.broadcast(change.clone());
    let got = tokio::time::timeout(DEADLINE, async {
        loop {
            let b = changes.recv().await.unwrap();
            if b.change != Change::Resync {
                return b;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!((got.origin.as_str(), &got.change), (a.host_id(), &change));
    a.work_arrived("thread-1");
    assert_eq!(wakes.next(DEADLINE).await, Wake::Thread("thread-1".into()));
}

#[tokio::test]
async fn an_unreachable_server_and_one_without_jetstream_are_refused() {
    // Nothing listens on a port just freed.
    let port = free_port();
    let e = NatsBus::connect(config(&format!("nats://127.0.0.1:{port}"), "x"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "bus_unreachable", "{e}");
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");

    let plain = TempNats::start_without_jetstream().unwrap();
    let e = NatsBus::connect(config(&plain.url(), "x"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "bus_no_jetstream", "{e}");
    assert!(e.to_string().contains("JetStream"), "{e}");

    let e = NatsBus::connect(config("http://127.0.0.1:1", "x"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "bus_url_invalid", "{e}");
    let e = NatsBus::connect(config("nats://127.0.0.1:1", "a.b"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), "bus_cluster_invalid", "{e}");
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}
