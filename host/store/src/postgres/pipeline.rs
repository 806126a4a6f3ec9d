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

struct Step {
    sql: &'static str,
    params: Vec<Param>,
    /// Whether the rows are wanted (else the row count).
    read: bool,
    /// What a unique-key violation of this statement means.
    conflict: Option<String>,
}

/// Statements to send together, in order.
#[derive(Default)]
pub(super) struct Pipeline {
    steps: Vec<Step>,
}

/// What one statement of a pipeline answered.
pub(super) enum Answer {
    Rows(Vec<Row>),
    Count(u64),
}

impl Pipeline {
    /// Adds a query whose rows are wanted; they are at the returned index
    /// of [`Pipeline::run`]'s answers.
    pub(super) fn query(&mut self, sql: &'static str, params: Vec<Param>) -> usize {
        self.add(sql, params, true, None)
    }

    /// Adds a write; its row count is at the returned index.
    pub(super) fn push(&mut self, sql: &'static str, params: Vec<Param>) -> usize {
        self.add(sql, params, false, None)
    }

    /// Adds a write whose unique-key violation is reported as a conflict
    /// saying `conflict`.
    pub(super) fn push_unique(
        &mut self,
        sql: &'static str,
        params: Vec<Param>,
        conflict: String,
    ) -> usize {
        self.add(sql, params, false, Some(conflict))
    }

    fn add(
        &mut self,
        sql: &'static str,
        params: Vec<Param>,
        read: bool,
        conflict: Option<String>,
    ) -> usize {
        self.steps.push(Step {
            sql,
            params,
            read,
            conflict,
        });
        self.steps.len() - 1
    }

    /// How many statements there are.
    pub(super) fn len(&self) -> usize {
        self.steps.len()
    }

    /// Appends `other`'s statements; the index its answers start at.
    pub(super) fn append(&mut self, other: Pipeline) -> usize {
        let base = self.steps.len();
        self.steps.extend(other.steps);
        base
    }

    /// Sends every statement without waiting in between (after preparing
    /// those not prepared yet) and collects each one's answer, in order.
    /// Fails as a whole only if a statement cannot be prepared.
    pub(super) async fn run(
        self,
        tx: &Transaction<'_>,
        statements: &mut Statements,
    ) -> PgResult<Answers> {
        statements
            .prepare(tx, self.steps.iter().map(|s| s.sql))
            .await?;
        let statements = &*statements;
        // `join_all` polls the futures in order and each sends its
        // statement when first polled, so they reach the server in order.
        let results = join_all(self.steps.iter().map(|step| {
            let params: Vec<&(dyn ToSql + Sync)> = step.params.iter().map(|p| &**p as _).collect();
            async move {
                let statement = statements.get(step.sql);
                if step.read {
                    tx.query(statement, &params).await.map(Answer::Rows)
                } else {
                    tx.execute(statement, &params).await.map(Answer::Count)
                }
            }
        }))
        .await;
        let answers = self
            .steps
            .iter()
            .zip(results)
            .map(|(step, result)| {
                result.map_err(|e| match (Fail::from(e), &step.conflict) {
                    (Fail::Store(StoreError::Conflict(_)), Some(what)) => {
                        Fail::Store(StoreError::Conflict(what.clone()))
                    }
                    (other, _) => other,
                })
            })
            .collect();
        Ok(Answers(answers))
    }
}

/// The answers of a pipeline's statements, in order.
pub(super) struct Answers(Vec<PgResult<Answer>>);

impl Answers {
    /// The answers of `len` statements from `base` (one unit's part of a
    /// pipeline several were appended to).
    pub(super) fn part(&self, base: usize, len: usize) -> Part<'_> {
        Part(&self.0[base..base + len])
    }

    /// All the answers.
    pub(super) fn all(&self) -> Part<'_> {
        Part(&self.0)
    }
}

/// A unit's answers, indexed as its own pipeline was.
#[derive(Clone, Copy)]
pub(super) struct Part<'a>(&'a [PgResult<Answer>]);

impl Part<'_> {
    /// The rows query `i` returned, or why it failed.
    pub(super) fn rows(&self, i: usize) -> PgResult<&[Row]> {
        match &self.0[i] {
            Ok(Answer::Rows(rows)) => Ok(rows),
            Ok(Answer::Count(_)) => Ok(&[]),
            Err(e) => Err(e.clone()),
        }
    }

    /// The first failure among the statements, in the order sent (the
    /// rest failed because of it).
    pub(super) fn first_failure(&self) -> PgResult<()> {
        match self.0.iter().find_map(|r| r.as_ref().err()) {
            Some(e) => Err(e.clone()),
            None => Ok(()),
        }
    }

    /// The row count of write `i` (0 if it failed: check
    /// [`Part::first_failure`] first).
    pub(super) fn count(&self, i: usize) -> u64 {
        match &self.0[i] {
            Ok(Answer::Count(n)) => *n,
            _ => 0,
        }
    }
}
