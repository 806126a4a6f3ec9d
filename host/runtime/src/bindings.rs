//! Generated bindings for `weft:node@0.1.0` and conversions to the domain
//! types in [`crate::types`].
//!
//! Following Zed's `since_v0_x` files, each released contract version gets
//! its own bindings module with its own conversions; the rest of the runtime
//! speaks domain types only. When a new version is released, copy this file
//! to the new version's module and keep this one loading old plugins.

use crate::types as t;

wasmtime::component::bindgen!({
    path: "../../wit",
    world: "node",
    imports: {
        "weft:node/llm": async,
        "weft:node/db": async,
        "weft:node/memory": async,
    },
    exports: { default: async },
});

pub(crate) use weft::node::types as wit;

/// The contract version these bindings implement.
pub(crate) const VERSION: &str = "0.1.0";

impl From<wit::Capability> for t::Capability {
    fn from(c: wit::Capability) -> Self {
        match c {
            wit::Capability::Llm => Self::Llm,
            wit::Capability::Db => Self::Db,
            wit::Capability::Memory => Self::Memory,
            wit::Capability::Hud => Self::Hud,
            wit::Capability::Log => Self::Log,
        }
    }
}

impl From<t::Capability> for wit::Capability {
    fn from(c: t::Capability) -> Self {
        match c {
            t::Capability::Llm => Self::Llm,
            t::Capability::Db => Self::Db,
            t::Capability::Memory => Self::Memory,
            t::Capability::Hud => Self::Hud,
            t::Capability::Log => Self::Log,
        }
    }
}

impl From<t::CapabilityError> for wit::Error {
    fn from(e: t::CapabilityError) -> Self {
        match e {
            t::CapabilityError::Denied(c) => Self::Denied(c.into()),
            t::CapabilityError::BudgetExhausted(s) => Self::BudgetExhausted(s),
            t::CapabilityError::InvalidInput(s) => Self::InvalidInput(s),
            t::CapabilityError::LimitExceeded(s) => Self::LimitExceeded(s),
            t::CapabilityError::Unavailable(s) => Self::Unavailable(s),
            t::CapabilityError::Failed(s) => Self::Failed(s),
        }
    }
}

impl From<wit::Error> for t::CapabilityError {
    fn from(e: wit::Error) -> Self {
        match e {
            wit::Error::Denied(c) => Self::Denied(c.into()),
            wit::Error::BudgetExhausted(s) => Self::BudgetExhausted(s),
            wit::Error::InvalidInput(s) => Self::InvalidInput(s),
            wit::Error::LimitExceeded(s) => Self::LimitExceeded(s),
            wit::Error::Unavailable(s) => Self::Unavailable(s),
            wit::Error::Failed(s) => Self::Failed(s),
        }
    }
}

/// The WIT context of a tick: where it sits and the node's configuration.
pub(crate) fn context(c: &t::CallContext, config: &str) -> wit::Context {
    wit::Context {
        thread: c.thread.clone(),
        run: c.run.clone(),
        frame: c.frame,
        node: c.node.clone(),
        config: config.to_owned(),
    }
}

impl From<&t::Message> for wit::Message {
    fn from(m: &t::Message) -> Self {
        Self {
            id: m.id.clone(),
            from: m.from.clone(),
            kind: m.kind.clone(),
            body: m.body.clone(),
        }
    }
}

impl From<wit::TickOutput> for t::TickOutput {
    fn from(o: wit::TickOutput) -> Self {
        Self {
            messages: o
                .messages
                .into_iter()
                .map(|m| t::Outbound {
                    to: m.to,
                    kind: m.kind,
                    body: m.body,
                })
                .collect(),
            reply: o.reply,
            done: o.done,
        }
    }
}

impl From<wit::NodeError> for t::NodeError {
    fn from(e: wit::NodeError) -> Self {
        match e {
            wit::NodeError::InvalidInput(s) => Self::InvalidInput(s),
            wit::NodeError::Capability(e) => Self::Capability(e.into()),
            wit::NodeError::Failed(s) => Self::Failed(s),
        }
    }
}

mod llm_conv {
    use super::weft::node::llm as w;
    use crate::types as t;

    impl From<w::CompletionRequest> for t::CompletionRequest {
        fn from(r: w::CompletionRequest) -> Self {
            Self {
                messages: r
                    .messages
                    .into_iter()
                    .map(|m| t::ChatMessage {
                        role: match m.role {
                            w::Role::System => t::Role::System,
                            w::Role::User => t::Role::User,
                            w::Role::Assistant => t::Role::Assistant,
                        },
                        content: m.content,
                    })
                    .collect(),
                max_tokens: r.max_tokens,
                json_schema: r.json_schema,
                stream: r.stream,
            }
        }
    }

    impl From<t::Completion> for w::Completion {
        fn from(c: t::Completion) -> Self {
            Self {
                text: c.text,
                prompt_tokens: c.prompt_tokens,
                completion_tokens: c.completion_tokens,
                model: c.model,
            }
        }
    }
}

mod db_conv {
    use super::weft::node::db as w;
    use crate::types as t;

    impl From<w::Value> for t::Value {
        fn from(v: w::Value) -> Self {
            match v {
                w::Value::Null => Self::Null,
                w::Value::Integer(i) => Self::Integer(i),
                w::Value::Real(f) => Self::Real(f),
                w::Value::Text(s) => Self::Text(s),
                w::Value::Blob(b) => Self::Blob(b),
            }
        }
    }

    impl From<t::Value> for w::Value {
        fn from(v: t::Value) -> Self {
            match v {
                t::Value::Null => Self::Null,
                t::Value::Integer(i) => Self::Integer(i),
                t::Value::Real(f) => Self::Real(f),
                t::Value::Text(s) => Self::Text(s),
                t::Value::Blob(b) => Self::Blob(b),
            }
        }
    }

    impl From<t::Column> for w::Column {
        fn from(c: t::Column) -> Self {
            Self {
                name: c.name,
                data_type: c.data_type,
                nullable: c.nullable,
                primary_key: c.primary_key,
            }
        }
    }

    impl From<t::Rows> for w::Rows {
        fn from(r: t::Rows) -> Self {
            Self {
                columns: r.columns,
                rows: r
                    .rows
                    .into_iter()
                    .map(|row| row.into_iter().map(Into::into).collect())
                    .collect(),
                truncated: r.truncated,
            }
        }
    }
}

mod misc_conv {
    use super::weft::node::{hud as h, log as l, memory as m};
    use crate::types as t;

    impl From<m::Scope> for t::Scope {
        fn from(s: m::Scope) -> Self {
            match s {
                m::Scope::Thread => Self::Thread,
                m::Scope::Node => Self::Node,
            }
        }
    }

    impl From<h::EventKind> for t::EventKind {
        fn from(k: h::EventKind) -> Self {
            match k {
                h::EventKind::Thinking => Self::Thinking,
                h::EventKind::Perceived => Self::Perceived,
                h::EventKind::Decided => Self::Decided,
                h::EventKind::ToolCall => Self::ToolCall,
                h::EventKind::Interpreted => Self::Interpreted,
                h::EventKind::Updated => Self::Updated,
            }
        }
    }

    impl From<l::Level> for t::Level {
        fn from(l: l::Level) -> Self {
            match l {
                l::Level::Trace => Self::Trace,
                l::Level::Debug => Self::Debug,
                l::Level::Info => Self::Info,
                l::Level::Warn => Self::Warn,
                l::Level::Error => Self::Error,
            }
        }
    }
}
