//! Ids clients give: one parser per kind, shared by every route that
//! takes one (REST bodies and paths, WebSocket queries) and by the engine.

pub use weft_engine::{InvalidThreadId, ThreadId};
