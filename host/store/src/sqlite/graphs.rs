//! Graph versions and plugin blobs: written once, read by id or hash.

use rusqlite::{Connection, OptionalExtension, Row, params};
use weft_engine::store::{GraphVersion, Page, PluginBlob, StoreResult, StoredGraphVersion};

use super::connection::error;
use crate::codec::{int, json, now_ms, parse};

const VERSION_COLUMNS: &str = "id, name, graph_hash, file, source, plugins, created_ms";

type VersionRow = (String, String, String, String, String, String, i64);

fn version_row(r: &Row<'_>) -> rusqlite::Result<VersionRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn stored_version(row: VersionRow) -> StoreResult<StoredGraphVersion> {
    let (id, name, graph_hash, file, source, plugins, created_ms) = row;
    Ok(StoredGraphVersion {
        version: GraphVersion {
            id,
            name,
            graph_hash,
            file,
            source,
            plugins: parse(&plugins, "graph version")?,
        },
        created_ms: u64::try_from(created_ms).unwrap_or(0),
    })
}

pub(super) fn graph_versions(
    c: &Connection,
    name: &str,
    limit: u64,
    offset: u64,
) -> StoreResult<Page<StoredGraphVersion>> {
    let total: i64 = c
        .prepare_cached("SELECT count(*) FROM graph_versions WHERE name = ?1")
        .and_then(|mut s| s.query_row([name], |r| r.get(0)))
        .map_err(error)?;
    let rows: Vec<VersionRow> = c
        .prepare_cached(&format!(
            "SELECT {VERSION_COLUMNS} FROM graph_versions WHERE name = ?1
             ORDER BY created_ms DESC, id DESC LIMIT ?2 OFFSET ?3"
        ))
        .and_then(|mut s| {
            s.query_map(params![name, int(limit), int(offset)], version_row)
                .and_then(Iterator::collect)
        })
        .map_err(error)?;
    Ok(Page {
        items: rows
            .into_iter()
            .map(stored_version)
            .collect::<StoreResult<_>>()?,
        total: u64::try_from(total).unwrap_or(0),
    })
}

pub(super) fn graph_version(c: &Connection, id: &str) -> StoreResult<Option<StoredGraphVersion>> {
    c.prepare_cached(&format!(
        "SELECT {VERSION_COLUMNS} FROM graph_versions WHERE id = ?1"
    ))
    .and_then(|mut s| s.query_row([id], version_row).optional())
    .map_err(error)?
    .map(stored_version)
    .transpose()
}

pub(super) fn graph_version_before(
    c: &Connection,
    id: &str,
) -> StoreResult<Option<StoredGraphVersion>> {
    c.prepare_cached(&format!(
        "SELECT {VERSION_COLUMNS} FROM graph_versions p
         WHERE EXISTS (SELECT 1 FROM graph_versions v WHERE v.id = ?1 AND p.name = v.name
             AND (p.created_ms < v.created_ms OR (p.created_ms = v.created_ms AND p.id < v.id)))
         ORDER BY created_ms DESC, id DESC LIMIT 1"
    ))
    .and_then(|mut s| s.query_row([id], version_row).optional())
    .map_err(error)?
    .map(stored_version)
    .transpose()
}

pub(super) fn put_graph(c: &Connection, v: &GraphVersion) -> StoreResult<()> {
    let plugins = json(&v.plugins)?;
    c.prepare_cached(
        "INSERT INTO graph_versions (id, name, graph_hash, file, source, plugins, created_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT (id) DO NOTHING",
    )
    .and_then(|mut s| {
        s.execute(params![
            v.id,
            v.name,
            v.graph_hash,
            v.file,
            v.source,
            plugins,
            now_ms()
        ])
    })
    .map_err(error)?;
    Ok(())
}

pub(super) fn graph(c: &Connection, id: &str) -> StoreResult<Option<GraphVersion>> {
    let row = c
        .query_row(
            "SELECT name, graph_hash, file, source, plugins FROM graph_versions WHERE id = ?1",
            [id],
            |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                ))
            },
        )
        .optional()
        .map_err(error)?;
    row.map(|(name, graph_hash, file, source, plugins)| {
        Ok(GraphVersion {
            id: id.to_owned(),
            name,
            graph_hash,
            file,
            source,
            plugins: parse(&plugins, "graph version")?,
        })
    })
    .transpose()
}

pub(super) fn has_plugin(c: &Connection, hash: &str) -> StoreResult<bool> {
    c.query_row("SELECT 1 FROM plugins WHERE hash = ?1", [hash], |_| Ok(()))
        .optional()
        .map(|r| r.is_some())
        .map_err(error)
}

pub(super) fn put_plugin(c: &Connection, p: &PluginBlob) -> StoreResult<()> {
    c.execute(
        "INSERT INTO plugins (hash, name, version, contract, path, size, bytes, created_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (hash) DO NOTHING",
        params![
            p.hash,
            p.name,
            p.version,
            p.contract,
            p.path,
            p.bytes.len() as i64,
            p.bytes,
            now_ms()
        ],
    )
    .map_err(error)?;
    Ok(())
}

pub(super) fn plugin(c: &Connection, hash: &str) -> StoreResult<Option<PluginBlob>> {
    c.query_row(
        "SELECT name, version, contract, path, bytes FROM plugins WHERE hash = ?1",
        [hash],
        |r| {
            Ok(PluginBlob {
                hash: hash.to_owned(),
                name: r.get(0)?,
                version: r.get(1)?,
                contract: r.get(2)?,
                path: r.get(3)?,
                bytes: r.get(4)?,
            })
        },
    )
    .optional()
    .map_err(error)
}
