//! Webhooks on PostgreSQL: subscriptions, the outbox (written by the
//! `runs_webhooks` trigger for status changes, and here for other events),
//! claims for an attempt (`FOR UPDATE SKIP LOCKED`, so that hosts sharing
//! the store never send one delivery twice at once), attempts, and the
//! listing of deliveries.

use tokio_postgres::{Client, Row};
use weft_engine::StoreError;
use weft_engine::store::{
    AttemptOutcome, ClaimedDelivery, DeliveryAttempt, DeliveryStatus, Page, StoreResult,
    StoredDelivery, Webhook, WebhookEvent, delivery_id,
};

use super::error::ReadResult;
use crate::codec::{int, json, parse, unsigned as u};

pub(super) async fn put(c: &Client, w: &Webhook) -> StoreResult<()> {
    let events = json(&w.events)?;
    c.execute(
        "INSERT INTO webhooks (id, project, url, events, secret, created_ms) VALUES ($1, $2, $3, $4, $5, $6)",
        &[&w.id, &w.project, &w.url, &events, &w.secret, &int(w.created_ms)],
    )
    .await
    .read()?;
    Ok(())
}

fn webhook(r: &Row) -> StoreResult<Webhook> {
    let events: String = r.get(3);
    Ok(Webhook {
        id: r.get(0),
        project: r.get(1),
        url: r.get(2),
        events: parse(&events, "a webhook's events")?,
        secret: r.get(4),
        created_ms: u(r.get(5)),
    })
}

pub(super) async fn list(c: &Client, project: Option<&str>) -> StoreResult<Vec<Webhook>> {
    let rows = c
        .query(
            "SELECT id, project, url, events, secret, created_ms FROM webhooks
             WHERE $1::TEXT IS NULL OR project = $1 ORDER BY created_ms, id",
            &[&project],
        )
        .await
        .read()?;
    rows.iter().map(webhook).collect()
}

pub(super) async fn delete(c: &mut Client, id: &str) -> StoreResult<bool> {
    let tx = c.transaction().await.read()?;
    tx.execute(
        "DELETE FROM webhook_attempts WHERE delivery IN (SELECT id FROM webhook_deliveries WHERE webhook = $1)",
        &[&id],
    )
    .await
    .read()?;
    tx.execute("DELETE FROM webhook_deliveries WHERE webhook = $1", &[&id])
        .await
        .read()?;
    let gone = tx
        .execute("DELETE FROM webhooks WHERE id = $1", &[&id])
        .await
        .read()?;
    tx.commit().await.read()?;
    Ok(gone > 0)
}

pub(super) async fn enqueue(c: &Client, e: &WebhookEvent) -> StoreResult<u64> {
    let hooks = list(c, Some(&e.project)).await?;
    let mut new = 0;
    for hook in hooks.iter().filter(|h| h.events.contains(&e.event)) {
        let id = delivery_id(&hook.id, &e.key);
        new += c
            .execute(
                "INSERT INTO webhook_deliveries (id, webhook, event, body, status, created_ms, next_ms)
                 VALUES ($1, $2, $3, $4, 'pending', $5, $5) ON CONFLICT (id) DO NOTHING",
                &[&id, &hook.id, &e.event, &e.body(&id), &int(e.at_ms)],
            )
            .await
            .read()?;
    }
    Ok(new)
}

const DELIVERY: &str =
    "d.id, d.webhook, d.event, d.body, d.status, d.created_ms, d.next_ms, d.attempts";

fn delivery(r: &Row) -> StoreResult<(StoredDelivery, u32)> {
    let id: String = r.get(0);
    let status: String = r.get(4);
    let status = DeliveryStatus::parse(&status).ok_or_else(|| {
        StoreError::Backend(format!("delivery `{id}` has an unknown status `{status}`"))
    })?;
    Ok((
        StoredDelivery {
            id,
            webhook: r.get(1),
            event: r.get(2),
            body: r.get(3),
            status,
            created_ms: u(r.get(5)),
            next_ms: u(r.get(6)),
            attempts: Vec::new(),
        },
        u32::try_from(r.get::<_, i64>(7)).unwrap_or(u32::MAX),
    ))
}

pub(super) async fn claim(
    c: &mut Client,
    now_ms: u64,
    lease_ms: u64,
    limit: u32,
) -> StoreResult<Vec<ClaimedDelivery>> {
    let now = int(now_ms);
    let tx = c.transaction().await.read()?;
    let rows = tx
        .query(
            &format!(
                "SELECT {DELIVERY}, w.url, w.secret FROM webhook_deliveries d
                 JOIN webhooks w ON w.id = d.webhook
                 WHERE d.status = 'pending' AND d.next_ms <= $1 AND d.lease_until <= $1
                 ORDER BY d.next_ms, d.pos LIMIT $2
                 FOR UPDATE OF d SKIP LOCKED"
            ),
            &[&now, &i64::from(limit)],
        )
        .await
        .read()?;
    let mut claimed = Vec::with_capacity(rows.len());
    for r in &rows {
        let (delivery, attempts) = delivery(r)?;
        tx.execute(
            "UPDATE webhook_deliveries SET lease_until = $2 WHERE id = $1",
            &[&delivery.id, &now.saturating_add(int(lease_ms))],
        )
        .await
        .read()?;
        claimed.push(ClaimedDelivery {
            delivery,
            attempts,
            url: r.get(8),
            secret: r.get(9),
        });
    }
    tx.commit().await.read()?;
    Ok(claimed)
}

pub(super) async fn record(c: &mut Client, o: &AttemptOutcome) -> StoreResult<()> {
    let a = &o.attempt;
    let tx = c.transaction().await.read()?;
    tx.execute(
        "INSERT INTO webhook_attempts (delivery, attempt, at_ms, status_code, error, duration_ms)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (delivery, attempt) DO UPDATE SET at_ms = excluded.at_ms,
             status_code = excluded.status_code, error = excluded.error,
             duration_ms = excluded.duration_ms",
        &[
            &o.delivery,
            &i64::from(a.attempt),
            &int(a.at_ms),
            &a.status_code.map(i64::from),
            &a.error,
            &int(a.duration_ms),
        ],
    )
    .await
    .read()?;
    tx.execute(
        "UPDATE webhook_deliveries SET status = $2, attempts = $3, next_ms = $4, lease_until = 0 WHERE id = $1",
        &[
            &o.delivery,
            &o.status.as_str(),
            &i64::from(a.attempt),
            &int(o.next_ms),
        ],
    )
    .await
    .read()?;
    tx.commit().await.read()?;
    Ok(())
}

pub(super) async fn deliveries(
    c: &Client,
    webhook: &str,
    limit: u64,
    offset: u64,
) -> StoreResult<Page<StoredDelivery>> {
    let total: i64 = c
        .query_one(
            "SELECT count(*) FROM webhook_deliveries WHERE webhook = $1",
            &[&webhook],
        )
        .await
        .read()?
        .get(0);
    let rows = c
        .query(
            &format!(
                "SELECT {DELIVERY} FROM webhook_deliveries d WHERE d.webhook = $1
                 ORDER BY d.pos DESC LIMIT $2 OFFSET $3"
            ),
            &[&webhook, &int(limit), &int(offset)],
        )
        .await
        .read()?;
    let mut items = Vec::with_capacity(rows.len());
    for r in &rows {
        let (mut d, _) = delivery(r)?;
        let attempts = c
            .query(
                "SELECT attempt, at_ms, status_code, error, duration_ms FROM webhook_attempts
                 WHERE delivery = $1 ORDER BY attempt",
                &[&d.id],
            )
            .await
            .read()?;
        d.attempts = attempts
            .iter()
            .map(|a| DeliveryAttempt {
                attempt: u32::try_from(a.get::<_, i64>(0)).unwrap_or(u32::MAX),
                at_ms: u(a.get(1)),
                status_code: a
                    .get::<_, Option<i64>>(2)
                    .and_then(|n| u16::try_from(n).ok()),
                error: a.get(3),
                duration_ms: u(a.get(4)),
            })
            .collect();
        items.push(d);
    }
    Ok(Page {
        items,
        total: u(total),
    })
}
