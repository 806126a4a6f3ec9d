//! Scheduled runs: when a schedule's ticks fall (cron expressions in a
//! time zone, or one moment), and the scheduler that fires them.
//!
//! Every tick fires exactly once, whatever the number of hosts: a host
//! claims a due tick in the store (a compare-and-set on the schedule's
//! next tick) before it starts the run, and records the run it started on
//! the fire. A tick claimed by a host that died before its run started is
//! started by any scheduler after [`ORPHAN_AFTER`]. Ticks missed while no
//! host ran are skipped, fired once, or all fired, by the schedule's
//! [`CatchUp`] policy. Time is the engine's clock, so tests move it.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use croner::Cron;
use croner::parser::{CronParser, Seconds};

use crate::catalog::Catalog;
use crate::error::EngineError;
use crate::run::Inbound;
use crate::store::{CatchUp, FireClaim, ScheduleFire, ScheduleSpec, StoredSchedule};

/// A tick this late (or later) counts as missed for catch-up `skip`.
pub const GRACE: Duration = Duration::from_secs(60);

/// A claimed fire that started no run after this long was left by a host
/// that died; another scheduler starts it.
pub const ORPHAN_AFTER: Duration = Duration::from_secs(60);

/// The most ticks one `latest` catch-up looks through.
const MAX_SCAN: usize = 100_000;

/// The time zone named `name` (an IANA name such as `Europe/Berlin`).
pub fn time_zone(name: &str) -> Result<chrono_tz::Tz, String> {
    chrono_tz::Tz::from_str(name).map_err(|_| {
        format!("unknown time zone `{name}`; give an IANA name such as `Europe/Berlin` or `UTC`")
    })
}

/// The cron expression `expr` (5 fields, or 6 with seconds first).
pub fn cron(expr: &str) -> Result<Cron, String> {
    CronParser::builder()
        .seconds(Seconds::Optional)
        .build()
        .parse(expr)
        .map_err(|e| format!("`{expr}` is not a cron expression: {e}"))
}

/// The first tick of `spec` after `after_ms`; none when there is no
/// other (a moment that passed).
pub fn next_tick(spec: &ScheduleSpec, after_ms: u64) -> Result<Option<u64>, String> {
    match (&spec.cron, spec.at_ms) {
        (Some(expr), None) => {
            let cron = cron(expr)?;
            let tz = time_zone(&spec.timezone)?;
            let after = Utc
                .timestamp_millis_opt(i64::try_from(after_ms).unwrap_or(i64::MAX))
                .single()
                .ok_or_else(|| format!("{after_ms} is not a time"))?
                .with_timezone(&tz);
            match cron.find_next_occurrence(&after, false) {
                Ok(next) => Ok(Some(millis(&next))),
                // Nothing matches any more (a date that never comes).
                Err(_) => Ok(None),
            }
        }
        (None, Some(at)) => Ok((at > after_ms).then_some(at)),
        _ => Err("a schedule has exactly one of `cron` and `at`".into()),
    }
}

fn millis<Tz: TimeZone>(t: &DateTime<Tz>) -> u64 {
    u64::try_from(t.timestamp_millis()).unwrap_or(0)
}

/// What to claim for a due schedule at `now_ms`.
fn plan(s: &StoredSchedule, now_ms: u64) -> Result<Option<FireClaim>, String> {
    let Some(due) = s.next_ms else {
        return Ok(None);
    };
    let late = now_ms.saturating_sub(due) >= GRACE.as_millis() as u64;
    let claim = |tick_ms, fire, next_ms| FireClaim {
        schedule: s.id.clone(),
        expected_ms: due,
        tick_ms,
        next_ms,
        fire,
        at_ms: now_ms,
    };
    Ok(Some(match s.spec.catch_up {
        CatchUp::Skip if late => claim(due, false, next_tick(&s.spec, now_ms)?),
        CatchUp::Latest if late => {
            // The latest tick at or before now fires; the ones before it
            // do not.
            let mut latest = due;
            for _ in 0..MAX_SCAN {
                match next_tick(&s.spec, latest)? {
                    Some(t) if t <= now_ms => latest = t,
                    _ => break,
                }
            }
            claim(latest, true, next_tick(&s.spec, now_ms)?)
        }
        _ => claim(due, true, next_tick(&s.spec, due)?),
    }))
}

/// Fires the ticks due now; returns how many runs it started.
pub async fn fire_due(catalog: &Catalog) -> Result<usize, EngineError> {
    let engine = catalog.engine();
    let Some(store) = engine.store().cloned() else {
        return Ok(0);
    };
    let now = engine.now_ms();
    let mut started = 0;
    let orphans = store
        .unstarted_fires(now.saturating_sub(ORPHAN_AFTER.as_millis() as u64))
        .await?;
    let schedules = if orphans.is_empty() {
        Vec::new()
    } else {
        store.schedules(None).await?
    };
    for orphan in orphans {
        if let Some(s) = schedules.iter().find(|s| s.id == orphan.schedule) {
            tracing::warn!(
                schedule = s.id,
                tick_ms = orphan.tick_ms,
                "starting a fire its host left"
            );
            started += usize::from(start(catalog, s, orphan.tick_ms).await?);
        }
    }
    for s in store.due_schedules(now).await? {
        let claim = match plan(&s, now) {
            Ok(Some(claim)) => claim,
            Ok(None) => continue,
            Err(error) => {
                // A schedule whose spec no longer reads (a time zone gone
                // from the database): it stops, with the reason.
                tracing::error!(schedule = s.id, %error, "the schedule cannot compute its next tick");
                store.set_schedule(&s.id, true, s.next_ms).await?;
                continue;
            }
        };
        let (tick, fire) = (claim.tick_ms, claim.fire);
        if !store.claim_fire(claim).await? {
            continue; // another host fired it
        }
        if !fire {
            tracing::info!(schedule = s.id, tick_ms = tick, "missed tick skipped");
            continue;
        }
        started += usize::from(start(catalog, &s, tick).await?);
    }
    Ok(started)
}

/// Starts the run of a claimed tick and records it (or why it did not
/// start) on the fire; true when a run started.
async fn start(catalog: &Catalog, s: &StoredSchedule, tick_ms: u64) -> Result<bool, EngineError> {
    let engine = catalog.engine();
    let Some(store) = engine.store().cloned() else {
        return Ok(false);
    };
    let graph = match &s.spec.graph {
        Some(name) => catalog.get(name),
        None => catalog.active(),
    };
    let mut fire = ScheduleFire {
        schedule: s.id.clone(),
        tick_ms,
        fired_ms: engine.now_ms(),
        thread: None,
        run: None,
        error: None,
    };
    let Some(graph) = graph else {
        fire.error = Some(match &s.spec.graph {
            Some(name) => format!("no graph `{name}` is served"),
            None => "no graph is active".into(),
        });
        store.fire_started(fire).await?;
        return Ok(false);
    };
    let thread = engine.open_thread_in(&s.project, s.spec.thread.as_deref(), &graph);
    engine.set_thread_graph(&thread, &graph);
    fire.thread = Some(thread.clone());
    let inbound = Inbound {
        to: s.spec.to.clone(),
        kind: s.spec.kind.clone(),
        body: s.spec.body.clone(),
    };
    let ok = match engine.send(&thread, inbound, s.spec.multitask).await {
        Ok(sent) => {
            let queued = matches!(sent, crate::run::Sent::Queued { .. });
            tracing::info!(
                schedule = s.id,
                tick_ms,
                thread,
                run = sent.run(),
                queued,
                "scheduled run started"
            );
            fire.run = Some(sent.run().to_owned());
            true
        }
        Err(e) => {
            tracing::warn!(schedule = s.id, tick_ms, error = %e, "the scheduled run did not start");
            fire.error = Some(format!("{}: {e}", e.code()));
            false
        }
    };
    store.fire_started(fire).await?;
    Ok(ok)
}

/// Fires due ticks every `every`, for as long as the catalog lives and
/// the engine runs (only inside a Tokio runtime).
pub fn spawn_scheduler(catalog: &Arc<Catalog>, every: Duration) {
    if tokio::runtime::Handle::try_current().is_err() || catalog.engine().store().is_none() {
        return;
    }
    let catalog = Arc::downgrade(catalog);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(catalog) = catalog.upgrade() else {
                return;
            };
            if catalog.engine().is_stopping() {
                return;
            }
            if let Err(error) = fire_due(&catalog).await {
                tracing::warn!(%error, "firing scheduled runs failed");
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(cron: &str, tz: &str) -> ScheduleSpec {
        ScheduleSpec {
            cron: Some(cron.into()),
            at_ms: None,
            timezone: tz.into(),
            graph: None,
            thread: None,
            to: None,
            kind: "user".into(),
            body: "{}".into(),
            catch_up: CatchUp::Skip,
            multitask: crate::threads::Multitask::Reject,
        }
    }

    /// 2026-03-01T00:00:00Z.
    const MARCH: u64 = 1_772_323_200_000;

    #[test]
    fn cron_ticks_fall_in_their_time_zone() {
        // 09:00 every day in Berlin is 08:00 UTC in winter.
        let next = next_tick(&spec("0 9 * * *", "Europe/Berlin"), MARCH).unwrap();
        assert_eq!(next, Some(MARCH + 8 * 3_600_000));
        let utc = next_tick(&spec("0 9 * * *", "UTC"), MARCH).unwrap();
        assert_eq!(utc, Some(MARCH + 9 * 3_600_000));
        // With seconds.
        let every = next_tick(&spec("*/10 * * * * *", "UTC"), MARCH).unwrap();
        assert_eq!(every, Some(MARCH + 10_000));
    }

    #[test]
    fn bad_expressions_and_zones_are_named() {
        let e = next_tick(&spec("61 * * * *", "UTC"), MARCH).unwrap_err();
        assert!(e.contains("`61 * * * *`"), "{e}");
        let e = next_tick(&spec("0 9 * * *", "Mars/Olympus"), MARCH).unwrap_err();
        assert!(e.contains("`Mars/Olympus`"), "{e}");
    }

    #[test]
    fn missed_ticks_follow_the_policy() {
        let mut s = StoredSchedule {
            id: "s".into(),
            project: "p".into(),
            spec: spec("0 * * * *", "UTC"), // hourly
            next_ms: Some(MARCH + 3_600_000),
            paused: false,
            created_ms: 0,
            fires: 0,
        };
        let now = MARCH + 5 * 3_600_000 + 1_000; // four ticks missed
        let skip = plan(&s, now).unwrap().unwrap();
        assert!(!skip.fire);
        assert_eq!(skip.next_ms, Some(MARCH + 6 * 3_600_000));
        s.spec.catch_up = CatchUp::Latest;
        let latest = plan(&s, now).unwrap().unwrap();
        assert!(latest.fire);
        assert_eq!(latest.tick_ms, MARCH + 5 * 3_600_000);
        assert_eq!(latest.next_ms, Some(MARCH + 6 * 3_600_000));
        s.spec.catch_up = CatchUp::All;
        let all = plan(&s, now).unwrap().unwrap();
        assert_eq!((all.fire, all.tick_ms), (true, MARCH + 3_600_000));
        assert_eq!(all.next_ms, Some(MARCH + 2 * 3_600_000));
        // On time, every policy fires the tick.
        s.spec.catch_up = CatchUp::Skip;
        let on_time = plan(&s, MARCH + 3_600_000 + 500).unwrap().unwrap();
        assert_eq!(
            (on_time.fire, on_time.expected_ms),
            (true, MARCH + 3_600_000)
        );
    }
}
