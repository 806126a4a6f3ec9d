//! Statements sent together: the writer's hot path (a frame's commit, a
//! run's start) prepares its statements once per connection and sends all
//! of a unit's statements without waiting for each answer, so a frame
//! costs about one round trip to the server instead of two per statement.
//!
//! PostgreSQL runs pipelined statements in the order they were sent, each
//! with its own result; after the first failure the rest fail too (the
//! transaction is aborted until the job's savepoint is rolled back), and
//! [`Pipeline::run`] reports that first failure.

use std::collections::HashMap;

use futures_util::future::join_all;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement, Transaction};
use weft_engine::StoreError;

use super::error::{Fail, PgResult};

/// A statement's parameter, owned so that a pipeline can outlive the
/// values it was built from.
pub(super) type Param = Box<dyn ToSql + Sync + Send>;

/// Builds a statement's parameter list.
macro_rules! params {
    ($($p:expr),* $(,)?) => {
        vec![$(Box::new($p) as $crate::postgres::pipeline::Param),*]
    };
}
pub(super) use params;

/// The writer's prepared statements, valid for the connection they were
/// prepared on (the writer starts afresh when it reconnects).
#[derive(Default)]
pub(super) struct Statements(HashMap<&'static str, Statement>);

impl Statements {
    /// Prepares each of `sqls` not prepared yet, all in one round trip.
    async fn prepare(
        &mut self,
        tx: &Transaction<'_>,
        sqls: impl Iterator<Item = &'static str>,
    ) -> PgResult<()> {
        let mut missing: Vec<&'static str> = sqls.filter(|s| !self.0.contains_key(s)).collect();
        if missing.is_empty() {
            return Ok(());
        }
        missing.sort_unstable();
        missing.dedup();
        let prepared = join_all(missing.iter().map(|sql| tx.prepare(sql))).await;
        for (sql, statement) in missing.into_iter().zip(prepared) {
            self.0.insert(sql, statement?);
        }
        Ok(())
    }

    fn get(&self, sql: &'static str) -> &Statement {
        // `prepare` ran for every statement of the pipeline first.
        &self.0[sql]
    }
}

/// A query whose rows are wanted, sent ahead of a pipeline's writes.
pub(super) struct Query {
    sql: &'static str,
    params: Vec<Param>,
}

impl Query {
    pub(super) fn new(sql: &'static str, params: Vec<Param>) -> Self {
        Self { sql, params }
    }
}

struct Step {
    sql: &'static str,
    params: Vec<Param>,
    /// What a unique-key violation of this statement means.
    conflict: Option<String>,
}

/// Writes to send together, in order.
#[derive(Default)]
pub(super) struct Pipeline {
    steps: Vec<Step>,
}

impl Pipeline {
    /// Adds a statement; its row count is at the returned index of
    /// [`Pipeline::run`]'s answer.
    pub(super) fn push(&mut self, sql: &'static str, params: Vec<Param>) -> usize {
        self.steps.push(Step {
            sql,
            params,
            conflict: None,
        });
        self.steps.len() - 1
    }

    /// Adds a statement whose unique-key violation is reported as a
    /// conflict saying `conflict`.
    pub(super) fn push_unique(
        &mut self,
        sql: &'static str,
        params: Vec<Param>,
        conflict: String,
    ) -> usize {
        self.steps.push(Step {
            sql,
            params,
            conflict: Some(conflict),
        });
        self.steps.len() - 1
    }

    /// Sends `queries` and then every write without waiting in between.
    /// The queries' rows come back, or their first failure, and beside
    /// them each write's row count in order, or the first write's failure.
    /// The caller checks the rows before the writes' outcome: a check that
    /// fails explains a write's failure better, and the job's savepoint
    /// rollback undoes writes it forbids.
    pub(super) async fn run(
        self,
        tx: &Transaction<'_>,
        statements: &mut Statements,
        queries: &[Query],
    ) -> PgResult<(Vec<Vec<Row>>, PgResult<Vec<u64>>)> {
        statements
            .prepare(
                tx,
                queries
                    .iter()
                    .map(|q| q.sql)
                    .chain(self.steps.iter().map(|s| s.sql)),
            )
            .await?;
        let statements = &*statements;
        // `join` polls the futures in order and each sends its statement
        // when first polled, so they reach the server in this order.
        let reads = join_all(queries.iter().map(|q| {
            let params: Vec<&(dyn ToSql + Sync)> = q.params.iter().map(|p| &**p as _).collect();
            async move { tx.query(statements.get(q.sql), &params).await }
        }));
        let writes = join_all(self.steps.iter().map(|step| {
            let params: Vec<&(dyn ToSql + Sync)> =
                step.params.iter().map(|p| &**p as _).collect();
            async move { tx.execute(statements.get(step.sql), &params).await }
        }));
        let (reads, writes) = futures_util::future::join(reads, writes).await;
        let rows = reads.into_iter().collect::<Result<Vec<_>, _>>()?;
        let counts = self
            .steps
            .iter()
            .zip(writes)
            .map(|(step, result)| {
                result.map_err(|e| match (Fail::from(e), &step.conflict) {
                    (Fail::Store(StoreError::Conflict(_)), Some(what)) => {
                        Fail::Store(StoreError::Conflict(what.clone()))
                    }
                    (other, _) => other,
                })
            })
            .collect();
        Ok((rows, counts))
    }
}
