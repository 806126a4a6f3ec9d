//! The conversions and calls every contract version's bindings share,
//! written once: [`contract!`] expands them inside a version's module,
//! next to that version's `bindgen!` output.

/// Expands, in a module holding a version's generated bindings (and its
/// `context` function), the conversions between its WIT types and the
/// domain types (the version's capabilities are listed in the call), and the three calls the runtime makes: instantiate,
/// `describe`, `tick`. The module itself defines what differs between
/// versions: `context` (the WIT context of a tick) and `tick_output`
/// (a tick's output in domain terms).
macro_rules! contract {
    ($($cap:ident),+ $(,)?) => {
        use crate::types as t;
        use wasmtime::Store;

        pub(crate) use weft::node::types as wit;

        impl From<wit::Capability> for t::Capability {
            fn from(c: wit::Capability) -> Self {
                match c {
                    $(wit::Capability::$cap => Self::$cap,)+
                }
            }
        }

        impl From<t::Capability> for wit::Capability {
            fn from(c: t::Capability) -> Self {
                match c {
                    $(t::Capability::$cap => Self::$cap,)+
                    // A capability newer than this contract version: its
                    // plugins have no import to call it with, so it is never
                    // denied to them; `log` stands in for the name.
                    #[allow(unreachable_patterns)]
                    _ => Self::Log,
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

        /// The outbound messages of a tick's output.
        fn outbound(messages: Vec<wit::Outbound>) -> Vec<t::Outbound> {
            messages
                .into_iter()
                .map(|m| t::Outbound {
                    to: m.to,
                    kind: m.kind,
                    body: m.body,
                })
                .collect()
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

        /// A fresh instance of the component.
        pub(crate) async fn instantiate(
            pre: &NodePre<crate::sandbox::HostState>,
            store: &mut Store<crate::sandbox::HostState>,
        ) -> wasmtime::Result<Node> {
            pre.instantiate_async(store).await
        }

        /// `describe`, in domain terms (schemas still as text).
        pub(crate) async fn describe(
            node: &Node,
            store: &mut Store<crate::sandbox::HostState>,
        ) -> wasmtime::Result<crate::bindings::RawInfo> {
            let raw = node.weft_node_plugin().call_describe(store).await?;
            Ok(crate::bindings::RawInfo {
                name: raw.name,
                version: raw.version,
                description: raw.description,
                input_schema: raw.input_schema,
                output_schema: raw.output_schema,
                capabilities: raw.capabilities.into_iter().map(Into::into).collect(),
            })
        }

        /// One `tick`, in domain terms.
        pub(crate) async fn tick(
            node: &Node,
            store: &mut Store<crate::sandbox::HostState>,
            call: &t::CallContext,
            config: &str,
            inbox: &[t::Message],
        ) -> wasmtime::Result<Result<t::TickOutput, t::NodeError>> {
            let ctx = context(call, config);
            let inbox: Vec<wit::Message> = inbox.iter().map(Into::into).collect();
            let out = node
                .weft_node_plugin()
                .call_tick(store, &ctx, &inbox)
                .await?;
            Ok(out.map(tick_output).map_err(Into::into))
        }
    };
}
