//! Graph versions and plugin blobs: written once, read by id or hash.

use rusqlite::{Connection, OptionalExtension, params};
use weft_engine::store::{GraphVersion, PluginBlob, StoreResult};

use super::connection::error;
use crate::codec::{json, now_ms, parse};

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
