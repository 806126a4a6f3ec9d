//! The writer thread: every write is a job; the thread takes every job
//! that is waiting, runs them all in one transaction and commits once, so
//! that many frames share one fsync. A job that fails rolls back alone:
//! the batch is then run again with each job in a savepoint of its own.

use rusqlite::Connection;
use tokio::sync::{mpsc, oneshot};
use weft_engine::StoreError;
use weft_engine::store::StoreResult;

use super::connection::error;
use crate::faults::Faults;

/// A unit of work for the writer, with its reply.
pub(super) trait Job: Send {
    /// Runs the work inside the batch's transaction; an error rolls this
    /// job back and keeps the others. May run twice (the second time in a
    /// savepoint, on the same state) when a later job of its batch fails.
    fn apply(&mut self, conn: &Connection, faults: &Faults) -> StoreResult<()>;
    /// Sends the result, or `failed` if the whole batch did not commit.
    fn finish(self: Box<Self>, failed: Option<&StoreError>);
}

/// A job made of a closure, with the channel its result goes back on.
pub(super) struct Typed<T, F> {
    work: F,
    result: Option<StoreResult<T>>,
    reply: Option<oneshot::Sender<StoreResult<T>>>,
}

impl<T, F> Typed<T, F> {
    /// A job that runs `work` and sends its result to `reply`.
    pub(super) fn new(work: F, reply: oneshot::Sender<StoreResult<T>>) -> Self {
        Self {
            work,
            result: None,
            reply: Some(reply),
        }
    }
}

impl<T, F> Job for Typed<T, F>
where
    T: Send,
    F: FnMut(&Connection, &Faults) -> StoreResult<T> + Send,
{
    fn apply(&mut self, conn: &Connection, faults: &Faults) -> StoreResult<()> {
        let result = (self.work)(conn, faults);
        let outcome = result.as_ref().map(|_| ()).map_err(Clone::clone);
        self.result = Some(result);
        outcome
    }

    fn finish(mut self: Box<Self>, failed: Option<&StoreError>) {
        let result = match (failed, self.result.take()) {
            (Some(e), _) => Err(e.clone()),
            (None, Some(r)) => r,
            (None, None) => Err(StoreError::Backend("the job did not run".into())),
        };
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(result);
        }
    }
}

/// The writer thread: takes every waiting job (up to `max_batch`), runs
/// each in a savepoint of one transaction, commits once, answers all.
pub(super) fn write_loop(
    conn: Connection,
    mut rx: mpsc::Receiver<Box<dyn Job>>,
    max_batch: usize,
    faults: &Faults,
) {
    while let Some(first) = rx.blocking_recv() {
        let mut batch = vec![first];
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let failed = commit_batch(&conn, &mut batch, faults).err();
        if let Some(e) = &failed {
            tracing::error!(error = %e, jobs = batch.len(), "store commit failed");
        }
        for job in batch {
            job.finish(failed.as_ref());
        }
    }
    tracing::debug!("store writer stopped");
}

fn commit_batch(conn: &Connection, batch: &mut [Box<dyn Job>], faults: &Faults) -> StoreResult<()> {
    // Cached statements: these run for every batch.
    let run = |sql: &str| -> StoreResult<()> {
        conn.prepare_cached(sql)
            .and_then(|mut s| s.execute([]))
            .map(drop)
            .map_err(error)
    };
    // First every job without savepoints: a savepoint copies each page a
    // job touches into a statement journal (profiled at 100 runs in
    // flight: 6% of the writer's time), and jobs rarely fail.
    run("BEGIN IMMEDIATE")?;
    let mut failed = None;
    for (i, job) in batch.iter_mut().enumerate() {
        if let Err(e) = job.apply(conn, faults) {
            failed = Some((i, e));
            break;
        }
    }
    let Some((at, e)) = failed else {
        return commit(conn);
    };
    // Some errors (a full disk, I/O) make SQLite roll the whole
    // transaction back: then every job of the batch fails, with this
    // job's error.
    if conn.is_autocommit() {
        return Err(e);
    }
    conn.execute_batch("ROLLBACK").map_err(error)?;
    // Again, each job in a savepoint: the jobs before the one that failed
    // (they succeeded, and run on the same state again; no fault is
    // injected into them twice), not the one that failed (its error is
    // its result), and every job after it.
    let none = Faults::default();
    run("BEGIN IMMEDIATE")?;
    for (i, job) in batch.iter_mut().enumerate() {
        if i == at {
            continue;
        }
        let faults = if i < at { &none } else { faults };
        let step = run("SAVEPOINT job").and_then(|()| match job.apply(conn, faults) {
            Ok(()) => run("RELEASE job"),
            Err(e) if conn.is_autocommit() => Err(e),
            Err(_) => conn
                .execute_batch("ROLLBACK TO job; RELEASE job")
                .map_err(error),
        });
        if let Err(e) = step {
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            return Err(e);
        }
    }
    commit(conn)
}

/// Commits the batch's transaction, or rolls it back if that fails.
fn commit(conn: &Connection) -> StoreResult<()> {
    if let Err(e) = conn.execute_batch("COMMIT") {
        let _ = conn.execute_batch("ROLLBACK");
        return Err(error(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::faults::FramePart;

    /// A job and the channel its result comes back on.
    type Pending = (Box<dyn Job>, oneshot::Receiver<StoreResult<i64>>);

    /// A job inserting `value`, failing after it when `fail` says so (or
    /// when a fault is injected), counting its runs.
    fn insert(
        value: i64,
        fail: bool,
        runs: std::sync::Arc<std::sync::atomic::AtomicU32>,
    ) -> Pending {
        let (tx, rx) = oneshot::channel();
        let work = move |c: &Connection, faults: &Faults| {
            runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            c.execute("INSERT INTO t (v) VALUES (?1)", [value])
                .map_err(error)?;
            faults.arm().check(FramePart::Frame)?;
            if fail {
                return Err(StoreError::Conflict(format!("job {value} fails")));
            }
            Ok(value)
        };
        (Box::new(Typed::new(work, tx)), rx)
    }

    fn values(c: &Connection) -> Vec<i64> {
        let mut s = c.prepare("SELECT v FROM t ORDER BY v").unwrap();
        s.query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn run_batch(c: &Connection, jobs: Vec<Pending>, faults: &Faults) -> Vec<StoreResult<i64>> {
        let (mut batch, replies): (Vec<_>, Vec<_>) = jobs.into_iter().unzip();
        let failed = commit_batch(c, &mut batch, faults).err();
        for job in batch {
            job.finish(failed.as_ref());
        }
        replies
            .into_iter()
            .map(|mut rx| rx.try_recv().unwrap())
            .collect()
    }

    /// Which of `results` are errors, in order.
    fn failed(results: &[StoreResult<i64>]) -> Vec<bool> {
        results.iter().map(Result::is_err).collect()
    }

    fn table() -> Connection {
        let c = Connection::open_in_memory().unwrap();
        c.execute_batch("CREATE TABLE t (v INTEGER NOT NULL)")
            .unwrap();
        c
    }

    #[test]
    fn a_batch_without_failures_runs_each_job_once() {
        let c = table();
        let runs = std::sync::Arc::default();
        let jobs = (1..=3).map(|v| insert(v, false, std::sync::Arc::clone(&runs)));
        let results = run_batch(&c, jobs.collect(), &Faults::default());
        assert_eq!(
            results.into_iter().map(Result::unwrap).collect::<Vec<_>>(),
            [1, 2, 3]
        );
        assert_eq!(values(&c), [1, 2, 3]);
        assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    #[test]
    fn a_failing_job_rolls_back_alone_and_the_others_commit() {
        let c = table();
        let runs = std::sync::Arc::default();
        let jobs = vec![
            insert(1, false, std::sync::Arc::clone(&runs)),
            insert(2, true, std::sync::Arc::clone(&runs)),
            insert(3, false, std::sync::Arc::clone(&runs)),
            insert(4, true, std::sync::Arc::clone(&runs)),
            insert(5, false, std::sync::Arc::clone(&runs)),
        ];
        let results = run_batch(&c, jobs, &Faults::default());
        assert_eq!(failed(&results), [false, true, false, true, false]);
        assert!(
            matches!(&results[1], Err(StoreError::Conflict(m)) if m == "job 2 fails"),
            "{:?}",
            results[1]
        );
        assert_eq!(values(&c), [1, 3, 5]);
        // Job 1 twice (before and after job 2 failed), job 2 once, the
        // rest once each in the second pass.
        assert_eq!(runs.load(std::sync::atomic::Ordering::SeqCst), 6);
    }

    #[test]
    fn an_injected_fault_is_not_injected_again_into_the_jobs_rerun() {
        let c = table();
        let runs = std::sync::Arc::default();
        let faults = Faults::default();
        // Lets one commit through, then fails the next two: jobs 2 and 3.
        faults.set(FramePart::Frame, 1, 2);
        let jobs = (1..=4).map(|v| insert(v, false, std::sync::Arc::clone(&runs)));
        let results = run_batch(&c, jobs.collect(), &faults);
        assert_eq!(failed(&results), [false, true, true, false]);
        assert_eq!(values(&c), [1, 4]);
    }
}
