//! Bringing a database's schema to this weft's version at start-up: a
//! database of another application, or one written by a newer weft, is
//! refused before anything is written. Hosts starting at the same moment
//! migrate one at a time (a transaction-scoped advisory lock).

use tokio_postgres::Client;
use weft_engine::StoreError;
use weft_engine::store::StoreResult;

use super::error::error;
use super::schema;

/// The advisory lock key migrations hold (`weft` in ASCII).
const MIGRATION_LOCK: i64 = 0x7765_6674;

/// Checks the owner and schema version and applies pending migrations.
pub(super) async fn migrate(store: &str, client: &mut Client) -> StoreResult<()> {
    let failed = |what: &str, e: tokio_postgres::Error| {
        StoreError::Backend(format!("{store}: {what}: {}", error(&e)))
    };
    let tx = client
        .transaction()
        .await
        .map_err(|e| failed("cannot start the migration", e))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(|e| failed("cannot take the migration lock", e))?;
    let has_meta: bool = tx
        .query_one("SELECT to_regclass('weft_meta') IS NOT NULL", &[])
        .await
        .map_err(|e| failed("cannot read the schema", e))?
        .get(0);
    let version = if has_meta {
        let rows = tx
            .query("SELECT key, value FROM weft_meta", &[])
            .await
            .map_err(|e| failed("cannot read weft_meta", e))?;
        let get = |k: &str| {
            rows.iter()
                .find(|r| r.get::<_, String>(0) == k)
                .map(|r| r.get::<_, String>(1))
        };
        let app = get("application").unwrap_or_default();
        if app != schema::APPLICATION {
            return Err(StoreError::Incompatible(format!(
                "{store} belongs to another application (weft_meta names `{app}`), not weft; \
                 point --store at a database of its own"
            )));
        }
        get("schema_version")
            .and_then(|v| v.parse::<i64>().ok())
            .ok_or_else(|| {
                StoreError::Incompatible(format!(
                    "{store}: weft_meta holds no readable schema_version; restore the database from a backup"
                ))
            })?
    } else {
        let tables: i64 = tx
            .query_one(
                "SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = current_schema()",
                &[],
            )
            .await
            .map_err(|e| failed("cannot read the schema", e))?
            .get(0);
        if tables > 0 {
            return Err(StoreError::Incompatible(format!(
                "{store} holds {tables} tables of another application and no weft_meta table: \
                 it is not a weft store; point --store at an empty database"
            )));
        }
        tx.batch_execute("CREATE TABLE weft_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
            .await
            .map_err(|e| failed("cannot create weft_meta", e))?;
        tx.execute(
            "INSERT INTO weft_meta (key, value) VALUES ('application', $1), ('schema_version', '0')",
            &[&schema::APPLICATION],
        )
        .await
        .map_err(|e| failed("cannot write weft_meta", e))?;
        0
    };
    if version > schema::latest() {
        return Err(StoreError::Incompatible(format!(
            "{store} has schema version {version}, but this weft knows versions up to {}: \
             it was written by a newer weft. Upgrade weft, or point --store at another database",
            schema::latest()
        )));
    }
    for (n, migration) in schema::MIGRATIONS
        .iter()
        .enumerate()
        .skip(usize::try_from(version).unwrap_or(0))
    {
        tx.batch_execute(migration).await.map_err(|e| {
            StoreError::Backend(format!(
                "{store}: migration to schema version {} failed: {}",
                n + 1,
                error(&e)
            ))
        })?;
        tx.execute(
            "UPDATE weft_meta SET value = $1 WHERE key = 'schema_version'",
            &[&(n + 1).to_string()],
        )
        .await
        .map_err(|e| failed("cannot write weft_meta", e))?;
        tracing::info!(store, version = n + 1, "store schema migrated");
    }
    tx.commit()
        .await
        .map_err(|e| failed("cannot commit the migration", e))
}
