//! Tests of the harness itself, through a node that exercises every capability.

use serde_json::json;

use super::TestHost;
use crate::{
    CallContext, Capability, Column, CompletionRequest, Context, Ctx, Error, EventKind, Host,
    Level, Message, Node, NodeError, NodeInfo, Rows, Scope, Value,
};

/// Calls each capability once, in order, and reports in its reply.
struct Probe;

impl Node for Probe {
    fn describe() -> NodeInfo {
        NodeInfo::new("probe", "0.1.0", "Calls every capability").capabilities(Capability::ALL)
    }

    fn tick(ctx: &mut Ctx<'_>, inbox: &[Message]) -> Result<(), NodeError> {
        let question: String = match inbox.first() {
            Some(message) => message.json()?,
            None => return Ok(()),
        };
        ctx.log()
            .info(format!("frame {} on {}", ctx.frame(), ctx.node()));
        ctx.hud().progress("probing")?;
        let answer = ctx
            .llm()
            .complete(CompletionRequest::prompt("be brief", question))?;
        let tables = ctx.db().tables()?;
        let rows = ctx.db().query("SELECT * FROM people", &[])?;
        ctx.memory().set(Scope::Node, "answer", &answer.text)?;
        ctx.hud()
            .emit(EventKind::Decided, &json!({"tables": tables}))?;
        ctx.send("peer", "job", &rows.to_json())?;
        ctx.reply(answer.text);
        ctx.done();
        Ok(())
    }
}

fn people() -> TestHost {
    TestHost::new().table(
        "people",
        [
            Column::new("id", "INTEGER").primary_key(),
            Column::new("name", "TEXT"),
        ],
        [
            vec![Value::Integer(1), "Ada".into()],
            vec![Value::Integer(2), Value::Null],
        ],
    )
}

fn ask(question: &str) -> [Message; 1] {
    [Message::new("user", "user", &question)]
}

#[test]
fn a_tick_records_everything_the_node_did() {
    let host = people().answer("forty-two");
    let output = host.tick::<Probe>(&ask("meaning?")).unwrap();

    assert_eq!(output.reply.as_deref(), Some("forty-two"));
    assert!(output.done);
    let sent: serde_json::Value = output.sent_to("peer").next().unwrap().json().unwrap();
    assert_eq!(
        sent,
        json!([{"id": 1, "name": "Ada"}, {"id": 2, "name": null}])
    );
    assert_eq!(host.llm_requests()[0].messages[1].content, "meaning?");
    assert_eq!(
        host.queries(),
        [("SELECT * FROM people".to_owned(), vec![])]
    );
    assert_eq!(
        host.memory(Scope::Node, "answer").as_deref(),
        Some("forty-two")
    );
    assert_eq!(host.memory(Scope::Thread, "answer"), None);
    assert_eq!(host.progress(), ["probing"]);
    assert_eq!(
        host.events_of(EventKind::Decided),
        [json!({"tables": ["people"]})]
    );
    assert_eq!(host.logs(), [(Level::Info, "frame 0 on node".to_owned())]);
    assert!(host.denied().is_empty());
}

#[test]
fn an_empty_inbox_is_a_no_op() {
    let host = TestHost::new();
    assert_eq!(host.tick::<Probe>(&[]).unwrap(), Default::default());
}

#[test]
fn ungranted_capabilities_are_denied_and_recorded() {
    let host = people().answer("unused").grant_only([Capability::Hud]);
    let error = host.tick::<Probe>(&ask("q")).unwrap_err();

    assert_eq!(error, NodeError::Capability(Error::Denied(Capability::Llm)));
    // The log call comes first; its helper swallows the denial.
    assert_eq!(host.denied(), [Capability::Log, Capability::Llm]);
    assert!(host.llm_requests().is_empty());
    assert_eq!(host.progress(), ["probing"]);
}

#[test]
fn for_node_grants_what_describe_declares() {
    struct LogOnly;
    impl Node for LogOnly {
        fn describe() -> NodeInfo {
            NodeInfo::new("log-only", "0.1.0", "").capabilities([Capability::Log])
        }
        fn tick(ctx: &mut Ctx<'_>, _: &[Message]) -> Result<(), NodeError> {
            ctx.log().write(Level::Warn, "hi")?;
            Ok(ctx.memory().set(Scope::Thread, "k", "v")?)
        }
    }
    let host = TestHost::for_node::<LogOnly>();
    let error = host.tick::<LogOnly>(&[]).unwrap_err();
    assert_eq!(
        error,
        NodeError::Capability(Error::Denied(Capability::Memory))
    );
    assert_eq!(host.logs(), [(Level::Warn, "hi".to_owned())]);
}

#[test]
fn scripted_answers_come_in_order_then_the_responder() {
    let host = TestHost::new()
        .answer("one")
        .answer_error(Error::Unavailable("provider down".into()))
        .answer_json(&json!({"n": 3}))
        .answer_with(|request| Ok(format!("echo {}", request.messages.len())));
    let complete = || host.llm_complete(&CompletionRequest::prompt("s", "u"));

    assert_eq!(complete().unwrap().text, "one");
    assert_eq!(
        complete().unwrap_err(),
        Error::Unavailable("provider down".into())
    );
    assert_eq!(
        complete().unwrap().json::<serde_json::Value>().unwrap(),
        json!({"n": 3})
    );
    assert_eq!(complete().unwrap().text, "echo 2");
    assert_eq!(complete().unwrap().text, "echo 2");
    assert_eq!(host.llm_requests().len(), 5);
}

#[test]
fn an_invalid_schema_is_invalid_input() {
    let host = TestHost::new().answer("{}");
    let mut request = CompletionRequest::prompt("s", "u");
    request.json_schema = Some("{not json".into());
    assert!(matches!(
        host.llm_complete(&request),
        Err(Error::InvalidInput(_))
    ));
}

#[test]
#[should_panic(expected = "no scripted answer")]
fn an_unscripted_llm_call_panics() {
    let _ = TestHost::new().llm_complete(&CompletionRequest::prompt("s", "u"));
}

#[test]
fn the_database_describes_tables_and_delegates_queries() {
    let host = people();
    assert_eq!(host.db_list_tables().unwrap(), ["people"]);
    assert_eq!(
        host.db_describe("people").unwrap()[0],
        Column::new("id", "INTEGER").primary_key()
    );
    assert!(matches!(
        host.db_describe("nope"),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        host.db_query("SELECT name FROM people", &[]),
        Err(Error::InvalidInput(_))
    ));
    assert_eq!(
        host.db_query("select * from people;", &[])
            .unwrap()
            .rows
            .len(),
        2
    );

    let host = people().on_query(|sql, params| {
        assert_eq!(sql, "SELECT name FROM people WHERE id = ?");
        Ok(Rows::new(
            ["name"],
            [vec![Value::Text(format!("#{:?}", params[0].as_integer()))]],
        ))
    });
    let rows = host
        .db_query("SELECT name FROM people WHERE id = ?", &[1.into()])
        .unwrap();
    assert_eq!(rows.rows[0][0].as_text(), Some("#Some(1)"));
    assert_eq!(host.queries()[0].1, [Value::Integer(1)]);
}

#[test]
fn memory_is_scoped_preset_and_deletable() {
    let host = TestHost::new().with_memory(Scope::Thread, "k", "\"thread\"");
    assert_eq!(host.memory_get(Scope::Node, "k").unwrap(), None);
    assert_eq!(
        host.memory_json::<String>(Scope::Thread, "k").as_deref(),
        Some("thread")
    );
    host.memory_delete(Scope::Thread, "k").unwrap();
    host.memory_delete(Scope::Thread, "k").unwrap();
    assert_eq!(host.memory(Scope::Thread, "k"), None);
}

#[test]
fn event_data_must_be_json() {
    let host = TestHost::new();
    assert!(matches!(
        host.hud_emit(EventKind::Thinking, "nope"),
        Err(Error::InvalidInput(_))
    ));
    assert!(host.events().is_empty());
}

#[test]
fn the_context_reaches_the_node() {
    struct Where;
    impl Node for Where {
        fn describe() -> NodeInfo {
            NodeInfo::new("where", "0.1.0", "")
        }
        fn tick(ctx: &mut Ctx<'_>, _: &[Message]) -> Result<(), NodeError> {
            let text = format!(
                "{}/{}/{}/{}/{}",
                ctx.project(),
                ctx.thread(),
                ctx.run(),
                ctx.frame(),
                ctx.node()
            );
            ctx.reply(text);
            Ok(())
        }
    }
    let context = Context {
        call: CallContext {
            thread: "t".into(),
            run: "r".into(),
            frame: 3,
            node: "pa".into(),
            project: "acme".into(),
        },
        config: "{}".into(),
    };
    let mut host = TestHost::new().context(context.clone());
    assert_eq!(
        host.tick::<Where>(&[]).unwrap().reply.as_deref(),
        Some("acme/t/r/3/pa")
    );
    host.set_context(Context {
        call: CallContext {
            frame: 4,
            ..context.call.clone()
        },
        ..context
    });
    assert_eq!(
        host.tick::<Where>(&[]).unwrap().reply.as_deref(),
        Some("acme/t/r/4/pa")
    );
}

#[test]
fn bad_inbox_bodies_are_invalid_input() {
    let error = TestHost::new()
        .tick::<Probe>(&[Message::raw("user", "user", "{")])
        .unwrap_err();
    assert!(matches!(error, NodeError::InvalidInput(text) if text.contains("from user")));
}

#[test]
fn errors_display_with_contract_names() {
    assert_eq!(Error::Denied(Capability::Llm).to_string(), "denied(llm)");
    assert_eq!(
        Error::BudgetExhausted("x".into()).to_string(),
        "budget-exhausted: x"
    );
    let error = NodeError::from(Error::Denied(Capability::Db));
    assert_eq!(error.to_string(), "capability error: denied(db)");
    assert!(std::error::Error::source(&error).is_some());
}

#[test]
fn message_ids_are_derived_from_content() {
    let a = Message::new("user", "user", &json!({"text": "hi"}));
    assert_eq!(
        a.id,
        Message::new("user", "user", &json!({"text": "hi"})).id
    );
    assert_ne!(a.id, Message::raw("use", "ruser", a.body.clone()).id);
    assert_eq!(a.clone().with_id("m1").id, "m1");
}

#[test]
fn config_is_parsed_into_the_nodes_type() {
    #[derive(serde::Deserialize)]
    struct Settings {
        peer: String,
        #[serde(default)]
        retries: u32,
    }
    struct Configured;
    impl Node for Configured {
        fn describe() -> NodeInfo {
            NodeInfo::new("configured", "0.1.0", "reads its config")
        }
        fn tick(ctx: &mut Ctx<'_>, _: &[Message]) -> Result<(), NodeError> {
            let settings: Settings = ctx.config()?;
            ctx.reply(format!("{}:{}", settings.peer, settings.retries));
            Ok(())
        }
    }
    let host = TestHost::new().config(serde_json::json!({"peer": "output"}));
    assert_eq!(
        host.tick::<Configured>(&[]).unwrap().reply.as_deref(),
        Some("output:0")
    );
    let error = TestHost::new()
        .config(serde_json::json!({"retries": 2}))
        .tick::<Configured>(&[])
        .unwrap_err();
    assert!(
        matches!(&error, NodeError::InvalidInput(m) if m.contains("config") && m.contains("peer")),
        "{error:?}"
    );
}

#[test]
fn undeliverable_notices_are_split_from_the_inbox() {
    struct Counts;
    impl Node for Counts {
        fn describe() -> NodeInfo {
            NodeInfo::new("counts", "0.1.0", "counts what it got")
        }
        fn tick(ctx: &mut Ctx<'_>, inbox: &[Message]) -> Result<(), NodeError> {
            let notes: Vec<String> = ctx
                .undelivered()
                .iter()
                .map(|u| format!("{}:{}", u.to, u.code))
                .collect();
            ctx.reply(format!("{} {}", inbox.len(), notes.join(",")));
            Ok(())
        }
    }
    let notice = Message::new(
        crate::SYSTEM_SENDER,
        crate::UNDELIVERABLE_KIND,
        &serde_json::json!({"to": "x", "kind": "k", "code": "not_a_peer", "message": "no route"}),
    );
    let user = Message::new("user", "user", &serde_json::json!({"text": "hi"}));
    let warning = Message::new(
        crate::SYSTEM_SENDER,
        crate::BUDGET_WARNING_KIND,
        &serde_json::json!({"percent": 90, "used": 90, "limit": 100}),
    );
    let out = TestHost::new()
        .tick::<Counts>(&[notice, user, warning])
        .unwrap();
    assert_eq!(out.reply.as_deref(), Some("1 x:not_a_peer"));

    struct Warned;
    impl Node for Warned {
        fn describe() -> NodeInfo {
            NodeInfo::new("warned", "0.1.0", "reads budget warnings")
        }
        fn tick(ctx: &mut Ctx<'_>, inbox: &[Message]) -> Result<(), NodeError> {
            let w = &ctx.budget_warnings()[0];
            ctx.reply(format!("{} {}%", inbox.len(), w.percent));
            Ok(())
        }
    }
    let warning = Message::new(
        crate::SYSTEM_SENDER,
        crate::BUDGET_WARNING_KIND,
        &serde_json::json!({"percent": 95, "used": 95, "limit": 100}),
    );
    let out = TestHost::new().tick::<Warned>(&[warning]).unwrap();
    assert_eq!(out.reply.as_deref(), Some("0 95%"));
}
