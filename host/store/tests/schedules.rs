//! Scheduled runs on both backends (SQLite and PostgreSQL), with the
//! engine's clock moved by hand: a tick fires on time and exactly once
//! (asked again, by a restarted host, or — on PostgreSQL — by two hosts at
//! once); missed ticks follow the schedule's catch-up policy; a tick whose
//! host died before its run started is started by the next scheduler; a
//! fire for a busy thread follows the schedule's `multitask` policy.

#![allow(clippy::unwrap_used)] // a test's helpers unwrap too: a panic fails the test

use std::sync::Arc;
use std::time::Duration;

use weft_engine::schedules::{ORPHAN_AFTER, fire_due, next_tick};
use weft_engine::store::{CatchUp, FireClaim, ScheduleSpec, StoredSchedule};
use weft_engine::{Catalog, EngineConfig, LoadedGraph, ManualClock, Store};

mod support;
use support::engine::{artifacts, engine_on};
use support::{AnyStore, Backend, Place, place};

const GRAPH: &str = r#"
name: ticking
entry: echo
nodes:
  echo: { plugin: guest-echo }
  ask: { plugin: guest-ask }
edges:
  # Only so that every node is reachable; nothing is sent along it.
  - { from: echo, to: [ask] }
"#;

/// 2026-03-01T00:00:00Z.
const MARCH: u64 = 1_772_323_200_000;
const MINUTE: u64 = 60_000;

struct Host {
    catalog: Arc<Catalog>,
    store: Arc<dyn Store>,
    clock: Arc<ManualClock>,
    _handle: AnyStore,
}

async fn host(place: &Place, now_ms: u64) -> Host {
    let handle = place.open().await;
    let store = handle.store();
    let clock = Arc::new(ManualClock::at_ms(now_ms));
    let config = EngineConfig {
        clock: clock.clone(),
        ..EngineConfig::default()
    };
    let engine = engine_on(store.clone(), config).await;
    let file = artifacts().join("ticking.yaml");
    let graph = LoadedGraph::from_yaml(GRAPH, &file, engine.plugins(), engine.runtime())
        .await
        .unwrap();
    let catalog = Arc::new(Catalog::new(engine));
    catalog.insert(Arc::new(graph));
    catalog.activate("ticking").unwrap();
    Host {
        catalog,
        store,
        clock,
        _handle: handle,
    }
}

/// A schedule firing every minute from `now_ms`.
async fn every_minute(h: &Host, id: &str, catch_up: CatchUp) -> StoredSchedule {
    let spec = ScheduleSpec {
        cron: Some("* * * * *".into()),
        at_ms: None,
        timezone: "Europe/Berlin".into(),
        graph: None,
        thread: None,
        to: None,
        kind: "user".into(),
        body: r#"{"text":"tick"}"#.into(),
        catch_up,
        multitask: Default::default(),
    };
    let now = h.catalog.engine().now_ms();
    let s = StoredSchedule {
        id: id.into(),
        project: "default".into(),
        next_ms: next_tick(&spec, now).unwrap(),
        spec,
        paused: false,
        created_ms: now,
        fires: 0,
    };
    h.store.put_schedule(s.clone()).await.unwrap();
    s
}

async fn fires(h: &Host, id: &str) -> Vec<weft_engine::store::ScheduleFire> {
    h.store.schedule_fires(id, 100).await.unwrap()
}

/// Waits until the runs of the schedule's fires have ended.
async fn settle(h: &Host, id: &str) {
    for fire in fires(h, id).await {
        let thread = fire.thread.unwrap();
        for _ in 0..600 {
            let runs = h.store.runs(&thread).await.unwrap();
            if runs.last().is_some_and(|r| r.status != "running") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn a_tick_fires_on_time_and_exactly_once(backend: Backend) {
    let dir = place(backend, "on-time");
    let h = host(&dir, MARCH + 10_000).await;
    let s = every_minute(&h, "sch_a", CatchUp::Skip).await;
    assert_eq!(s.next_ms, Some(MARCH + MINUTE));

    // Not before its tick; at it, once, however often asked.
    assert_eq!(fire_due(&h.catalog).await.unwrap(), 0);
    h.clock.set_ms(MARCH + MINUTE);
    assert_eq!(fire_due(&h.catalog).await.unwrap(), 1);
    assert_eq!(fire_due(&h.catalog).await.unwrap(), 0);
    let fired = fires(&h, "sch_a").await;
    assert_eq!(fired.len(), 1);
    assert_eq!(fired[0].tick_ms, MARCH + MINUTE);
    assert!(
        fired[0].run.is_some() && fired[0].error.is_none(),
        "{fired:?}"
    );
    settle(&h, "sch_a").await;
    let thread = fired[0].thread.clone().unwrap();
    let runs = h.store.runs(&thread).await.unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, "completed");
    let messages = h.store.messages(&thread).await.unwrap();
    assert!(
        messages.iter().any(|m| m.body.contains("tick")),
        "{messages:?}"
    );

    // A restarted host does not fire it again; the next tick fires.
    drop(h);
    let h = host(&dir, MARCH + MINUTE + 30_000).await;
    assert_eq!(fire_due(&h.catalog).await.unwrap(), 0);
    h.clock.set_ms(MARCH + 2 * MINUTE);
    assert_eq!(fire_due(&h.catalog).await.unwrap(), 1);
    settle(&h, "sch_a").await;
    let ticks: Vec<u64> = fires(&h, "sch_a").await.iter().map(|f| f.tick_ms).collect();
    assert_eq!(ticks, [MARCH + 2 * MINUTE, MARCH + MINUTE]);
    let stored = h.store.schedules(None).await.unwrap();
    assert_eq!(
        (stored[0].fires, stored[0].next_ms),
        (2, Some(MARCH + 3 * MINUTE))
    );

    // Paused, its ticks pass without firing.
    h.store
        .set_schedule("sch_a", true, Some(MARCH + 3 * MINUTE))
        .await
        .unwrap();
    h.clock.set_ms(MARCH + 3 * MINUTE);
    assert_eq!(fire_due(&h.catalog).await.unwrap(), 0);
}

async fn missed_ticks_follow_the_catch_up_policy(backend: Backend) {
    let dir = place(backend, "catch-up");
    let h = host(&dir, MARCH + 10_000).await;
    every_minute(&h, "skip", CatchUp::Skip).await;
    every_minute(&h, "latest", CatchUp::Latest).await;
    every_minute(&h, "all", CatchUp::All).await;
    // Five ticks pass while nothing runs.
    h.clock.set_ms(MARCH + 5 * MINUTE + 1_000);
    fire_due(&h.catalog).await.unwrap();
    settle(&h, "latest").await;
    assert!(fires(&h, "skip").await.is_empty());
    let latest = fires(&h, "latest").await;
    assert_eq!(
        latest.iter().map(|f| f.tick_ms).collect::<Vec<_>>(),
        [MARCH + 5 * MINUTE]
    );
    // `all` fires one missed tick per pass, oldest first, until caught up.
    for _ in 0..10 {
        fire_due(&h.catalog).await.unwrap();
        settle(&h, "all").await;
    }
    let all: Vec<u64> = fires(&h, "all")
        .await
        .iter()
        .map(|f| f.tick_ms)
        .rev()
        .collect();
    assert_eq!(all, (1..=5).map(|n| MARCH + n * MINUTE).collect::<Vec<_>>());
    let next: Vec<Option<u64>> = h
        .store
        .schedules(None)
        .await
        .unwrap()
        .iter()
        .map(|s| s.next_ms)
        .collect();
    assert_eq!(next, [Some(MARCH + 6 * MINUTE); 3]);
}

async fn a_fire_left_by_a_dead_host_is_started(backend: Backend) {
    let dir = place(backend, "orphan");
    let h = host(&dir, MARCH + 10_000).await;
    every_minute(&h, "sch_o", CatchUp::Skip).await;
    // A host claims the tick and dies before starting its run.
    let won = h
        .store
        .claim_fire(FireClaim {
            schedule: "sch_o".into(),
            expected_ms: MARCH + MINUTE,
            tick_ms: MARCH + MINUTE,
            next_ms: Some(MARCH + 2 * MINUTE),
            fire: true,
            at_ms: MARCH + MINUTE,
        })
        .await
        .unwrap();
    assert!(won);
    h.clock.set_ms(MARCH + MINUTE + 1_000);
    assert_eq!(fire_due(&h.catalog).await.unwrap(), 0, "not yet an orphan");
    h.clock
        .set_ms(MARCH + MINUTE + ORPHAN_AFTER.as_millis() as u64 + 1_000);
    // The orphan starts, and the tick that came meanwhile fires too.
    assert_eq!(fire_due(&h.catalog).await.unwrap(), 2);
    settle(&h, "sch_o").await;
    let fired = fires(&h, "sch_o").await;
    assert_eq!(fired.len(), 2);
    assert!(fired.iter().all(|f| f.run.is_some()), "{fired:?}");
    assert_eq!(fire_due(&h.catalog).await.unwrap(), 0);
}

/// A schedule on one thread whose run waits for a person: with `reject`
/// the next fire records `thread_busy`; with `enqueue` its run is queued
/// behind the waiting one.
async fn a_fire_for_a_busy_thread_follows_its_policy(backend: Backend) {
    use weft_engine::Multitask;
    let dir = place(backend, "busy-thread");
    let h = host(&dir, MARCH + 10_000).await;
    let now = h.catalog.engine().now_ms();
    for (id, multitask) in [("sch_r", Multitask::Reject), ("sch_q", Multitask::Enqueue)] {
        let spec = ScheduleSpec {
            cron: Some("* * * * *".into()),
            at_ms: None,
            timezone: "UTC".into(),
            graph: None,
            thread: Some("on-call".into()),
            to: Some("ask".into()),
            kind: "user".into(),
            body: r#"{"text":"deploy?"}"#.into(),
            catch_up: CatchUp::Skip,
            multitask,
        };
        let s = StoredSchedule {
            id: id.into(),
            project: "default".into(),
            next_ms: next_tick(&spec, now).unwrap(),
            spec,
            paused: false,
            created_ms: now,
            fires: 0,
        };
        h.store.put_schedule(s).await.unwrap();
    }
    // Both fire at the same tick: the first to start holds the thread
    // (its node asks), so of the other, `reject` records `thread_busy`
    // and `enqueue` queues its run.
    h.clock.set_ms(MARCH + MINUTE);
    // One run started; the other fire was queued (counted) or refused (not).
    let started = fire_due(&h.catalog).await.unwrap();
    assert!((1..=2).contains(&started), "{started}");
    let mut waiting = None;
    for _ in 0..600 {
        waiting = h
            .store
            .runs("on-call")
            .await
            .unwrap()
            .into_iter()
            .find(|r| r.status == "interrupted");
        if waiting.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let waiting = waiting.expect("a fire's run asks and waits");
    // Now the thread is busy for both: only the queued fire counts.
    h.clock.set_ms(MARCH + 2 * MINUTE);
    assert_eq!(fire_due(&h.catalog).await.unwrap(), 1);
    let rejected = fires(&h, "sch_r").await;
    let queued = fires(&h, "sch_q").await;
    let newest = |f: &[weft_engine::store::ScheduleFire]| f[0].clone();
    let r = newest(&rejected);
    assert!(
        r.run.is_none()
            && r.error
                .as_deref()
                .is_some_and(|e| e.starts_with("thread_busy")),
        "{rejected:?}"
    );
    let q = newest(&queued);
    assert!(q.error.is_none(), "{queued:?}");
    let run = q.run.unwrap();
    let runs = h.store.runs("on-call").await.unwrap();
    let status = |id: &str| runs.iter().find(|r| r.id == id).unwrap().status.clone();
    assert_eq!(status(&run), "queued", "{runs:?}");
    assert_eq!(status(&waiting.id), "interrupted");
    assert_eq!(h.catalog.engine().queued_runs("on-call").last(), Some(&run));
}

crate::on_both_backends!(
    a_fire_for_a_busy_thread_follows_its_policy,
    a_tick_fires_on_time_and_exactly_once,
    missed_ticks_follow_the_catch_up_policy,
    a_fire_left_by_a_dead_host_is_started,
);

/// Two hosts on one PostgreSQL database ask at the same moment: one run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_fire_a_tick_once() {
    let dir = place(Backend::Postgres, "two-hosts");
    let a = host(&dir, MARCH + 10_000).await;
    let b = host(&dir, MARCH + 10_000).await;
    every_minute(&a, "sch_2", CatchUp::Skip).await;
    a.clock.set_ms(MARCH + MINUTE);
    b.clock.set_ms(MARCH + MINUTE);
    let (x, y) = tokio::join!(fire_due(&a.catalog), fire_due(&b.catalog));
    assert_eq!(x.unwrap() + y.unwrap(), 1);
    assert_eq!(fires(&a, "sch_2").await.len(), 1);
}
