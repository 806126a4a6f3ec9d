//! The REST handlers and the JSON they exchange (camelCase), one module
//! per resource. What resources share is in [`paging`] (pages of lists),
//! [`access`] (which threads a key may see, the store, the active graph)
//! and [`feed`] (a client's event stream); no resource module imports
//! another.

use std::sync::Arc;

use axum::Router;

use crate::Api;

pub(crate) mod access;
pub(crate) mod agents;
pub(crate) mod events;
pub(crate) mod feed;
pub(crate) mod graphs;
pub(crate) mod instances;
pub(crate) mod interrupts;
pub(crate) mod keys;
pub(crate) mod messages;
pub(crate) mod organism;
pub(crate) mod paging;
pub(crate) mod plugins;
pub(crate) mod schedules;
pub(crate) mod sockets;
pub(crate) mod suites;
pub(crate) mod threads;
pub(crate) mod usage;
pub(crate) mod webhooks;

/// Routes that need no key.
pub(crate) fn open() -> Router<Arc<Api>> {
    organism::open().merge(keys::open())
}

/// Routes under `/api/v1` that need a key.
pub(crate) fn protected() -> Router<Arc<Api>> {
    Router::new()
        .merge(organism::routes())
        .merge(graphs::routes())
        .merge(plugins::routes())
        .merge(agents::routes())
        .merge(instances::routes())
        .merge(threads::routes())
        .merge(interrupts::routes())
        .merge(webhooks::routes())
        .merge(schedules::routes())
        .merge(suites::routes())
        .merge(messages::routes())
        .merge(usage::routes())
        .merge(keys::routes())
        .merge(events::routes())
        .merge(sockets::routes())
}
