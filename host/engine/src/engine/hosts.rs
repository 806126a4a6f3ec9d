//! This host among the hosts that share its store: its heartbeat, and the
//! list of live hosts (`GET /api/v1/hosts`).

use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};

use super::Engine;
use crate::bus::SystemBus;
use crate::error::EngineError;
use crate::run::lease_millis;
use crate::store::HostBeat;

/// When this host started, and where it serves its API.
#[derive(Debug)]
pub(super) struct HostInfo {
    started_ms: u64,
    address: RwLock<String>,
}

impl HostInfo {
    pub(super) fn new(started_ms: u64) -> Self {
        Self {
            started_ms,
            address: RwLock::new(String::new()),
        }
    }
}

impl Engine {
    /// This host's id (in leases, heartbeats and `/health`).
    pub fn host_id(&self) -> &str {
        &self.config.host_id
    }

    /// Where this host serves its API (`http://IP:PORT`), for the other
    /// hosts' `GET /api/v1/hosts`.
    pub fn set_address(&self, address: String) {
        *self
            .host
            .address
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = address;
    }

    /// Puts this host on `bus`: the runs it gives up unfinished (when it
    /// stops, or its store fails) are announced there, and the other
    /// hosts' announcements wake its takeover at once. Once per engine.
    pub fn attach_bus(&self, bus: Arc<dyn SystemBus>) {
        if self.ctx.system.set(bus).is_ok() {
            self.ctx.attached.notify_one();
        }
    }

    /// This host as its next heartbeat describes it.
    pub fn host_beat(&self) -> HostBeat {
        let stats = &self.ctx.lease_stats;
        HostBeat {
            id: self.config.host_id.clone(),
            address: self
                .host
                .address
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            started_ms: self.host.started_ms,
            last_seen_ms: self.ctx.budgets.now_ms(),
            runs_held: stats.runs_held.load(Ordering::Relaxed),
            lease_renewals: stats.lease_renewals.load(Ordering::Relaxed),
        }
    }

    /// The live hosts, by id: on a shared store every host that beat
    /// within a lease's length (this one with its figures of now); else
    /// this host alone.
    pub async fn hosts(&self) -> Result<Vec<HostBeat>, EngineError> {
        let me = self.host_beat();
        let Some(store) = self.ctx.store.as_ref().filter(|s| s.shared()) else {
            return Ok(vec![me]);
        };
        let live_after = me
            .last_seen_ms
            .saturating_sub(lease_millis(self.config.leases.ttl));
        let mut hosts: Vec<HostBeat> = store
            .hosts(live_after)
            .await?
            .into_iter()
            .filter(|h| h.id != me.id)
            .collect();
        hosts.push(me);
        hosts.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(hosts)
    }

    /// Records this host's heartbeat in a shared store (and lets the money
    /// holds of hosts that stopped beating go).
    pub(super) async fn beat(&self) {
        let Some(store) = self.ctx.store.as_ref().filter(|s| s.shared()) else {
            return;
        };
        let beat = self.host_beat();
        let live_after = beat
            .last_seen_ms
            .saturating_sub(lease_millis(self.config.leases.ttl));
        if let Err(error) = store.heartbeat(&beat, live_after).await {
            tracing::warn!(%error, "this host's heartbeat was not recorded");
        }
    }
}
