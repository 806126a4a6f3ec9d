//! Conversions between the contract's types (`weft-contract`, shared with
//! the host) and the SDK's generated bindings.
//!
//! Kept in one place so that a new contract version means one new module
//! here, not changes spread over the SDK.

use crate::bindings::weft::node::{db, hud, llm, log, memory, types as wit};
use crate::{
    CallContext, Capability, ChatMessage, Column, Completion, CompletionRequest, Context, Error,
    EventKind, Level, Message, NodeError, NodeInfo, Outbound, Role, Rows, Scope, TickOutput, Value,
};

impl From<wit::Capability> for Capability {
    fn from(capability: wit::Capability) -> Self {
        match capability {
            wit::Capability::Llm => Self::Llm,
            wit::Capability::Db => Self::Db,
            wit::Capability::Memory => Self::Memory,
            wit::Capability::Hud => Self::Hud,
            wit::Capability::Log => Self::Log,
            wit::Capability::Store => Self::Store,
            wit::Capability::Tools => Self::Tools,
        }
    }
}

impl From<Capability> for wit::Capability {
    fn from(capability: Capability) -> Self {
        match capability {
            Capability::Llm => Self::Llm,
            Capability::Db => Self::Db,
            Capability::Memory => Self::Memory,
            Capability::Hud => Self::Hud,
            Capability::Log => Self::Log,
            Capability::Store => Self::Store,
            Capability::Tools => Self::Tools,
        }
    }
}

impl From<wit::Error> for Error {
    fn from(error: wit::Error) -> Self {
        match error {
            wit::Error::Denied(capability) => Self::Denied(capability.into()),
            wit::Error::BudgetExhausted(text) => Self::BudgetExhausted(text),
            wit::Error::InvalidInput(text) => Self::InvalidInput(text),
            wit::Error::LimitExceeded(text) => Self::LimitExceeded(text),
            wit::Error::Unavailable(text) => Self::Unavailable(text),
            wit::Error::Failed(text) => Self::Failed(text),
        }
    }
}

impl From<Error> for wit::Error {
    fn from(error: Error) -> Self {
        match error {
            Error::Denied(capability) => Self::Denied(capability.into()),
            Error::BudgetExhausted(text) => Self::BudgetExhausted(text),
            Error::InvalidInput(text) => Self::InvalidInput(text),
            Error::LimitExceeded(text) => Self::LimitExceeded(text),
            Error::Unavailable(text) => Self::Unavailable(text),
            Error::Failed(text) => Self::Failed(text),
        }
    }
}

impl From<NodeError> for wit::NodeError {
    fn from(error: NodeError) -> Self {
        match error {
            NodeError::InvalidInput(text) => Self::InvalidInput(text),
            NodeError::Capability(error) => Self::Capability(error.into()),
            NodeError::Failed(text) => Self::Failed(text),
        }
    }
}

impl From<wit::Context> for Context {
    fn from(context: wit::Context) -> Self {
        let wit::Context {
            thread,
            run,
            frame,
            node,
            project,
            config,
        } = context;
        Self {
            call: CallContext {
                thread,
                run,
                frame,
                node,
                project,
            },
            config,
        }
    }
}

impl From<wit::Message> for Message {
    fn from(message: wit::Message) -> Self {
        let wit::Message {
            id,
            from,
            kind,
            body,
        } = message;
        Self {
            id,
            from,
            kind,
            body,
        }
    }
}

impl From<Outbound> for wit::Outbound {
    fn from(outbound: Outbound) -> Self {
        let Outbound { to, kind, body } = outbound;
        Self { to, kind, body }
    }
}

impl From<TickOutput> for wit::TickOutput {
    fn from(output: TickOutput) -> Self {
        Self {
            messages: output.messages.into_iter().map(Into::into).collect(),
            reply: output.reply,
            done: output.done,
            interrupt: output.interrupt.map(|i| wit::Interrupt {
                question: i.question,
                answer_schema: i.answer_schema.to_string(),
            }),
        }
    }
}

impl From<NodeInfo> for wit::NodeInfo {
    fn from(info: NodeInfo) -> Self {
        Self {
            name: info.name,
            version: info.version,
            description: info.description,
            input_schema: info.input_schema.to_string(),
            output_schema: info.output_schema.to_string(),
            capabilities: info.capabilities.into_iter().map(Into::into).collect(),
        }
    }
}

impl From<Role> for llm::Role {
    fn from(role: Role) -> Self {
        match role {
            Role::System => Self::System,
            Role::User => Self::User,
            Role::Assistant => Self::Assistant,
        }
    }
}

impl From<&CompletionRequest> for llm::CompletionRequest {
    fn from(request: &CompletionRequest) -> Self {
        let messages = request
            .messages
            .iter()
            .map(|message: &ChatMessage| llm::ChatMessage {
                role: message.role.into(),
                content: message.content.clone(),
            });
        Self {
            messages: messages.collect(),
            max_tokens: request.max_tokens,
            json_schema: request.json_schema.clone(),
            stream: request.stream,
        }
    }
}

impl From<llm::Completion> for Completion {
    fn from(completion: llm::Completion) -> Self {
        let llm::Completion {
            text,
            prompt_tokens,
            completion_tokens,
            model,
        } = completion;
        Self {
            text,
            prompt_tokens,
            completion_tokens,
            model,
            // Host-side metering; it does not cross into WIT.
            provider: String::new(),
            usage_estimated: false,
        }
    }
}

impl From<&Value> for db::Value {
    fn from(value: &Value) -> Self {
        match value {
            Value::Null => Self::Null,
            Value::Integer(value) => Self::Integer(*value),
            Value::Real(value) => Self::Real(*value),
            Value::Text(value) => Self::Text(value.clone()),
            Value::Blob(value) => Self::Blob(value.clone()),
        }
    }
}

impl From<db::Value> for Value {
    fn from(value: db::Value) -> Self {
        match value {
            db::Value::Null => Self::Null,
            db::Value::Integer(value) => Self::Integer(value),
            db::Value::Real(value) => Self::Real(value),
            db::Value::Text(value) => Self::Text(value),
            db::Value::Blob(value) => Self::Blob(value),
        }
    }
}

impl From<db::Column> for Column {
    fn from(column: db::Column) -> Self {
        let db::Column {
            name,
            data_type,
            nullable,
            primary_key,
        } = column;
        Self {
            name,
            data_type,
            nullable,
            primary_key,
        }
    }
}

impl From<db::Rows> for Rows {
    fn from(rows: db::Rows) -> Self {
        Self {
            columns: rows.columns,
            rows: rows
                .rows
                .into_iter()
                .map(|row| row.into_iter().map(Into::into).collect())
                .collect(),
            truncated: rows.truncated,
        }
    }
}

impl From<Scope> for memory::Scope {
    fn from(scope: Scope) -> Self {
        match scope {
            Scope::Thread => Self::Thread,
            Scope::Node => Self::Node,
        }
    }
}

impl From<EventKind> for hud::EventKind {
    fn from(kind: EventKind) -> Self {
        match kind {
            EventKind::Thinking => Self::Thinking,
            EventKind::Perceived => Self::Perceived,
            EventKind::Decided => Self::Decided,
            EventKind::ToolCall => Self::ToolCall,
            EventKind::Interpreted => Self::Interpreted,
            EventKind::Updated => Self::Updated,
        }
    }
}

impl From<Level> for log::Level {
    fn from(level: Level) -> Self {
        match level {
            Level::Trace => Self::Trace,
            Level::Debug => Self::Debug,
            Level::Info => Self::Info,
            Level::Warn => Self::Warn,
            Level::Error => Self::Error,
        }
    }
}
