//! Webhooks: subscriptions, the outbox of deliveries (written by the
//! `runs_webhooks` trigger for status changes, and here for other events),
//! claims for an attempt, attempts, and the listing of deliveries.

use rusqlite::{Connection, OptionalExtension, Row, params};
use weft_engine::StoreError;
use weft_engine::store::{
    AttemptOutcome, ClaimedDelivery, DeliveryAttempt, DeliveryStatus, Page, StoreResult,
    StoredDelivery, Webhook, WebhookEvent, delivery_id,
};

use super::connection::error;
use crate::codec::{int, json, parse};

pub(super) fn put(c: &Connection, w: &Webhook) -> StoreResult<()> {
    let events = json(&w.events)?;
    c.prepare_cached(
        "INSERT INTO webhooks (id, project, url, events, secret, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut s| {
        s.execute(params![
            w.id,
            w.project,
            w.url,
            events,
            w.secret,
            int(w.created_ms)
        ])
    })
    .map_err(error)?;
    Ok(())
}

fn webhook(r: &Row<'_>) -> rusqlite::Result<(Webhook, String)> {
    Ok((
        Webhook {
            id: r.get(0)?,
            project: r.get(1)?,
            url: r.get(2)?,
            events: Vec::new(),
            secret: r.get(4)?,
            created_ms: r.get::<_, i64>(5)? as u64,
        },
        r.get(3)?,
    ))
}

pub(super) fn list(c: &Connection, project: Option<&str>) -> StoreResult<Vec<Webhook>> {
    let mut s = c
        .prepare_cached(
            "SELECT id, project, url, events, secret, created_ms FROM webhooks
             WHERE ?1 IS NULL OR project = ?1 ORDER BY created_ms, id",
        )
        .map_err(error)?;
    let rows: Vec<(Webhook, String)> = s
        .query_map([project], webhook)
        .and_then(Iterator::collect)
        .map_err(error)?;
    rows.into_iter()
        .map(|(mut w, events)| {
            w.events = parse(&events, "a webhook's events")?;
            Ok(w)
        })
        .collect()
}

pub(super) fn delete(c: &Connection, id: &str) -> StoreResult<bool> {
    c.prepare_cached(
        "DELETE FROM webhook_attempts WHERE delivery IN (SELECT id FROM webhook_deliveries WHERE webhook = ?1)",
    )
    .and_then(|mut s| s.execute([id]))
    .map_err(error)?;
    c.prepare_cached("DELETE FROM webhook_deliveries WHERE webhook = ?1")
        .and_then(|mut s| s.execute([id]))
        .map_err(error)?;
    let gone = c
        .prepare_cached("DELETE FROM webhooks WHERE id = ?1")
        .and_then(|mut s| s.execute([id]))
        .map_err(error)?;
    Ok(gone > 0)
}

pub(super) fn enqueue(c: &Connection, e: &WebhookEvent) -> StoreResult<u64> {
    let hooks = list(c, Some(&e.project))?;
    let mut new = 0;
    for hook in hooks.iter().filter(|h| h.events.contains(&e.event)) {
        let id = delivery_id(&hook.id, &e.key);
        new += c
            .prepare_cached(
                "INSERT OR IGNORE INTO webhook_deliveries (id, webhook, event, body, status, created_ms, next_ms)
                 VALUES (?1, ?2, ?3, ?4, 'pending', ?5, ?5)",
            )
            .and_then(|mut s| {
                s.execute(params![id, hook.id, e.event, e.body(&id), int(e.at_ms)])
            })
            .map_err(error)? as u64;
    }
    Ok(new)
}

const DELIVERY: &str =
    "d.id, d.webhook, d.event, d.body, d.status, d.created_ms, d.next_ms, d.attempts";

fn delivery(r: &Row<'_>) -> rusqlite::Result<(StoredDelivery, String, u32)> {
    Ok((
        StoredDelivery {
            id: r.get(0)?,
            webhook: r.get(1)?,
            event: r.get(2)?,
            body: r.get(3)?,
            status: DeliveryStatus::Pending,
            created_ms: r.get::<_, i64>(5)? as u64,
            next_ms: r.get::<_, i64>(6)? as u64,
            attempts: Vec::new(),
        },
        r.get(4)?,
        r.get::<_, i64>(7)? as u32,
    ))
}

fn status(id: &str, s: &str) -> StoreResult<DeliveryStatus> {
    DeliveryStatus::parse(s)
        .ok_or_else(|| StoreError::Backend(format!("delivery `{id}` has an unknown status `{s}`")))
}

pub(super) fn claim(
    c: &Connection,
    now_ms: u64,
    lease_ms: u64,
    limit: u32,
) -> StoreResult<Vec<ClaimedDelivery>> {
    let now = int(now_ms);
    let mut s = c
        .prepare_cached(&format!(
            "SELECT {DELIVERY}, w.url, w.secret FROM webhook_deliveries d
             JOIN webhooks w ON w.id = d.webhook
             WHERE d.status = 'pending' AND d.next_ms <= ?1 AND d.lease_until <= ?1
             ORDER BY d.next_ms, d.pos LIMIT ?2"
        ))
        .map_err(error)?;
    let rows: Vec<((StoredDelivery, String, u32), String, String)> = s
        .query_map(params![now, i64::from(limit)], |r| {
            Ok((delivery(r)?, r.get(8)?, r.get(9)?))
        })
        .and_then(Iterator::collect)
        .map_err(error)?;
    let mut claimed = Vec::with_capacity(rows.len());
    for ((mut d, s, attempts), url, secret) in rows {
        d.status = status(&d.id, &s)?;
        c.prepare_cached("UPDATE webhook_deliveries SET lease_until = ?2 WHERE id = ?1")
            .and_then(|mut st| st.execute(params![d.id, now.saturating_add(int(lease_ms))]))
            .map_err(error)?;
        claimed.push(ClaimedDelivery {
            delivery: d,
            attempts,
            url,
            secret,
        });
    }
    Ok(claimed)
}

pub(super) fn record(c: &Connection, o: &AttemptOutcome) -> StoreResult<()> {
    let a = &o.attempt;
    c.prepare_cached(
        "INSERT OR REPLACE INTO webhook_attempts (delivery, attempt, at_ms, status_code, error, duration_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )
    .and_then(|mut s| {
        s.execute(params![
            o.delivery,
            a.attempt,
            int(a.at_ms),
            a.status_code,
            a.error,
            int(a.duration_ms)
        ])
    })
    .map_err(error)?;
    c.prepare_cached(
        "UPDATE webhook_deliveries SET status = ?2, attempts = ?3, next_ms = ?4, lease_until = 0 WHERE id = ?1",
    )
    .and_then(|mut s| {
        s.execute(params![
            o.delivery,
            o.status.as_str(),
            a.attempt,
            int(o.next_ms)
        ])
    })
    .map_err(error)?;
    Ok(())
}

fn attempts(c: &Connection, delivery: &str) -> StoreResult<Vec<DeliveryAttempt>> {
    let mut s = c
        .prepare_cached(
            "SELECT attempt, at_ms, status_code, error, duration_ms FROM webhook_attempts
             WHERE delivery = ?1 ORDER BY attempt",
        )
        .map_err(error)?;
    s.query_map([delivery], |r| {
        Ok(DeliveryAttempt {
            attempt: r.get::<_, i64>(0)? as u32,
            at_ms: r.get::<_, i64>(1)? as u64,
            status_code: r.get::<_, Option<i64>>(2)?.map(|n| n as u16),
            error: r.get(3)?,
            duration_ms: r.get::<_, i64>(4)? as u64,
        })
    })
    .and_then(Iterator::collect)
    .map_err(error)
}

pub(super) fn deliveries(
    c: &Connection,
    webhook: &str,
    limit: u64,
    offset: u64,
) -> StoreResult<Page<StoredDelivery>> {
    let total: i64 = c
        .prepare_cached("SELECT count(*) FROM webhook_deliveries WHERE webhook = ?1")
        .and_then(|mut s| s.query_row([webhook], |r| r.get(0)))
        .optional()
        .map_err(error)?
        .unwrap_or(0);
    let mut s = c
        .prepare_cached(&format!(
            "SELECT {DELIVERY} FROM webhook_deliveries d WHERE d.webhook = ?1
             ORDER BY d.pos DESC LIMIT ?2 OFFSET ?3"
        ))
        .map_err(error)?;
    let rows: Vec<(StoredDelivery, String, u32)> = s
        .query_map(params![webhook, int(limit), int(offset)], delivery)
        .and_then(Iterator::collect)
        .map_err(error)?;
    let mut items = Vec::with_capacity(rows.len());
    for (mut d, s, _) in rows {
        d.status = status(&d.id, &s)?;
        d.attempts = attempts(c, &d.id)?;
        items.push(d);
    }
    Ok(Page {
        items,
        total: total as u64,
    })
}
