//! Leases with fencing tokens: which host executes a run. A host claims a
//! run it starts, renews the lease while the run executes, and releases it
//! when the run ends; other hosts claim the unfinished runs whose lease
//! expired (`FOR UPDATE SKIP LOCKED`, so that each is claimed once). Every
//! claim draws a new token from one sequence, and a frame commit carrying
//! an older token is refused ([`commit`](super::commit)).
//!
//! A claim as a run starts and a release as it ends go with the writer's
//! batches, sharing their WAL flush (a run's start and end would otherwise
//! cost two flushes of their own); renewals and takeovers run on pooled
//! connections, outside the batches, so that a renewal never waits behind
//! a large batch.

use tokio_postgres::Client;
use weft_engine::StoreError;
use weft_engine::store::{Lease, StoreResult, UnfinishedRun};

use super::error::{PgResult, ReadResult};
use super::pipeline::{Part, Pipeline, params};
use super::reads;
use crate::codec::{int, now_ms};

fn fenced(lease_run: &str, what: &str) -> StoreError {
    StoreError::Fenced(format!("run `{lease_run}`: {what}"))
}

fn lease(run: &str, host: &str, token: i64, expires_ms: i64) -> Lease {
    Lease {
        run: run.to_owned(),
        host: host.to_owned(),
        token: u64::try_from(token).unwrap_or(0),
        expires_ms: u64::try_from(expires_ms).unwrap_or(0),
    }
}

const CLAIM: &str = "INSERT INTO leases AS l (run, host, token, expires_ms)
     VALUES ($1, $2, nextval('lease_tokens'), $3)
     ON CONFLICT (run) DO UPDATE SET host = excluded.host, token = excluded.token,
         expires_ms = excluded.expires_ms, renewals = 0
     WHERE l.host = excluded.host OR l.expires_ms < $4
     RETURNING token";

/// A claim of a run's lease, to go with the writer's batch (and its one
/// WAL flush) rather than cost a flush of its own.
pub(super) struct Claim {
    run: String,
    host: String,
    expires: i64,
}

/// The claim's statement (a query returning the new token).
pub(super) fn plan_claim(run: &str, host: &str, ttl_ms: u64) -> (Pipeline, Claim) {
    let now = now_ms();
    let expires = now.saturating_add(int(ttl_ms));
    let mut p = Pipeline::default();
    p.query(
        CLAIM,
        params![run.to_owned(), host.to_owned(), expires, now],
    );
    let claim = Claim {
        run: run.to_owned(),
        host: host.to_owned(),
        expires,
    };
    (p, claim)
}

/// The lease a claim's answer grants, or why not.
pub(super) fn check_claim(claim: &Claim, answers: Part<'_>) -> PgResult<Lease> {
    match answers.rows(0)?.first() {
        Some(r) => Ok(lease(&claim.run, &claim.host, r.get(0), claim.expires)),
        None => Err(fenced(&claim.run, "another host holds an unexpired lease on it").into()),
    }
}

/// The release of a lease (expired rather than deleted: the run, if
/// still unfinished, can be taken over at once; a run with no lease row
/// waits for `ttl`). A lease taken over since is left alone.
pub(super) fn plan_release(l: &Lease) -> Pipeline {
    let mut p = Pipeline::default();
    p.push(
        "UPDATE leases SET expires_ms = 0 WHERE run = $1 AND token = $2",
        params![l.run.clone(), int(l.token)],
    );
    p
}

pub(super) async fn claim_expired(
    c: &mut Client,
    host: &str,
    ttl_ms: u64,
    limit: u64,
) -> StoreResult<Vec<(Lease, UnfinishedRun)>> {
    let now = now_ms();
    let expires = now.saturating_add(int(ttl_ms));
    let tx = c.transaction().await.read()?;
    let rows = tx
        .query(
            "SELECT r.id FROM runs r LEFT JOIN leases l ON l.run = r.id
             WHERE r.status = 'running'
               AND ((l.run IS NULL AND r.started_ms < $1) OR l.expires_ms < $2)
             ORDER BY r.started_ms, r.pos
             LIMIT $3
             FOR UPDATE OF r SKIP LOCKED",
            &[&now.saturating_sub(int(ttl_ms)), &now, &int(limit)],
        )
        .await
        .read()?;
    let mut claimed = Vec::with_capacity(rows.len());
    for r in rows {
        let run: String = r.get(0);
        // The runs row is locked, but the lease was read from the
        // statement's snapshot: another host may have taken the run over
        // and committed since. The upsert sees the latest lease, and takes
        // it only if it is still expired.
        let row = tx
            .query_opt(
                "INSERT INTO leases AS l (run, host, token, expires_ms)
                 VALUES ($1, $2, nextval('lease_tokens'), $3)
                 ON CONFLICT (run) DO UPDATE SET host = excluded.host, token = excluded.token,
                     expires_ms = excluded.expires_ms, renewals = 0
                 WHERE l.expires_ms < $4
                 RETURNING token",
                &[&run, &host, &expires, &now],
            )
            .await
            .read()?;
        let Some(row) = row else {
            continue;
        };
        let token: i64 = row.get(0);
        claimed.push(lease(&run, host, token, expires));
    }
    tx.commit().await.read()?;
    let mut out = Vec::with_capacity(claimed.len());
    for lease in claimed {
        // Still unfinished (it cannot finish meanwhile: commits are fenced).
        if let Some(u) = reads::unfinished(c, Some(&lease.run))
            .await?
            .into_iter()
            .next()
        {
            out.push((lease, u));
        }
    }
    Ok(out)
}

pub(super) async fn renew(c: &Client, l: &Lease, ttl_ms: u64) -> StoreResult<Lease> {
    let expires = now_ms().saturating_add(int(ttl_ms));
    let row = c
        .query_opt(
            "UPDATE leases SET expires_ms = $3, renewals = renewals + 1
             WHERE run = $1 AND token = $2 RETURNING token",
            &[&l.run, &int(l.token), &expires],
        )
        .await
        .read()?;
    match row {
        Some(_) => Ok(lease(&l.run, &l.host, int(l.token), expires)),
        None => Err(fenced(
            &l.run,
            &format!("lease token {} was taken over by another host", l.token),
        )),
    }
}
