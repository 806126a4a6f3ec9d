//! `weft tools-server`: a small MCP server on standard input and output
//! with date and arithmetic tools, the built-in server `local` of the
//! `tools` capability (the host starts it as a child process unless the
//! config names a server `local` of its own or turns it off).
//!
//! Tools: `today {timezone?}`, `days_between {from, to}`,
//! `add_days {date, days}` and `calculate {expression}`. Bad arguments
//! answer with a tool error (`isError`) that says what is wrong.

use std::process::ExitCode;
use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use rmcp::ErrorData as McpError;
use rmcp::handler::server::ServerHandler;
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    JsonObject, ListToolsResult, PaginatedRequestParams, ServerCapabilities, ServerConfig, Tool,
};
use rmcp::service::{RequestContext, RoleServer, ServiceExt};
use serde_json::{Value, json};

/// The longest expression `calculate` takes, in bytes.
const MAX_EXPRESSION: usize = 1000;
/// The deepest nesting of parentheses `calculate` takes.
const MAX_DEPTH: usize = 64;
/// The most days `add_days` adds or subtracts.
const MAX_DAYS: i64 = 1_000_000;

/// Serves the tools on stdin/stdout until the client closes them.
pub async fn run() -> anyhow::Result<ExitCode> {
    let service = Tools
        .serve((tokio::io::stdin(), tokio::io::stdout()))
        .await?;
    service.waiting().await?;
    Ok(ExitCode::SUCCESS)
}

struct Tools;

fn schema(value: Value) -> Arc<JsonObject> {
    match value {
        Value::Object(map) => Arc::new(map),
        _ => Arc::new(JsonObject::new()),
    }
}

fn tools() -> Vec<Tool> {
    vec![
        Tool::new(
            "today",
            "Today's date, weekday and time, in UTC or in an IANA time zone such as Europe/Berlin.",
            schema(json!({
                "type": "object",
                "properties": {"timezone": {"type": "string", "description": "IANA time zone (default UTC)"}},
            })),
        ),
        Tool::new(
            "days_between",
            "The number of days from one date to another (YYYY-MM-DD); negative when `to` is earlier.",
            schema(json!({
                "type": "object",
                "properties": {"from": {"type": "string"}, "to": {"type": "string"}},
                "required": ["from", "to"],
            })),
        ),
        Tool::new(
            "add_days",
            "The date (YYYY-MM-DD) a number of days after (or, negative, before) a date, with its weekday.",
            schema(json!({
                "type": "object",
                "properties": {"date": {"type": "string"}, "days": {"type": "integer"}},
                "required": ["date", "days"],
            })),
        ),
        Tool::new(
            "calculate",
            "Evaluates an arithmetic expression: numbers, + - * / % ^ and parentheses, e.g. (1250 * 19) / 100.",
            schema(json!({
                "type": "object",
                "properties": {"expression": {"type": "string"}},
                "required": ["expression"],
            })),
        ),
    ]
}

impl ServerHandler for Tools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("weft-tools", env!("CARGO_PKG_VERSION")))
            .with_instructions("Date and arithmetic tools of weft.")
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, McpError> {
        Ok(ListToolsResult::with_all_items(tools()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        _context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, McpError> {
        let args = request.arguments.unwrap_or_default();
        let answer = match request.name.as_ref() {
            "today" => today(&args),
            "days_between" => days_between(&args),
            "add_days" => add_days(&args),
            "calculate" => calculate(&args),
            other => {
                return Err(McpError::invalid_params(
                    format!("no tool `{other}`: today, days_between, add_days, calculate"),
                    None,
                ));
            }
        };
        Ok(match answer {
            Ok(value) => {
                let text = value.to_string();
                let mut result = CallToolResult::success(vec![ContentBlock::text(text)]);
                result.structured_content = Some(value);
                result
            }
            Err(problem) => CallToolResult::error(vec![ContentBlock::text(problem)]),
        }
        .into())
    }
}

fn text_arg<'a>(args: &'a JsonObject, name: &str) -> Result<&'a str, String> {
    args.get(name)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("`{name}` (a string) is missing"))
}

fn date_arg(args: &JsonObject, name: &str) -> Result<NaiveDate, String> {
    let text = text_arg(args, name)?;
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| format!("`{name}` is not a date of the form YYYY-MM-DD: {text:?}"))
}

fn today(args: &JsonObject) -> Result<Value, String> {
    let now = Utc::now();
    let (zone, local) = match args.get("timezone").and_then(Value::as_str) {
        None | Some("") | Some("UTC") => ("UTC".to_owned(), now.naive_utc()),
        Some(name) => {
            let tz: chrono_tz::Tz = name
                .parse()
                .map_err(|_| format!("`timezone` is not an IANA time zone: {name:?}"))?;
            (name.to_owned(), now.with_timezone(&tz).naive_local())
        }
    };
    Ok(json!({
        "date": local.date().format("%Y-%m-%d").to_string(),
        "weekday": local.format("%A").to_string(),
        "time": local.format("%H:%M:%S").to_string(),
        "timezone": zone,
    }))
}

fn days_between(args: &JsonObject) -> Result<Value, String> {
    let from = date_arg(args, "from")?;
    let to = date_arg(args, "to")?;
    Ok(json!({"days": (to - from).num_days()}))
}

fn add_days(args: &JsonObject) -> Result<Value, String> {
    let date = date_arg(args, "date")?;
    let days = args
        .get("days")
        .and_then(Value::as_i64)
        .ok_or("`days` (an integer) is missing")?;
    if days.abs() > MAX_DAYS {
        return Err(format!("`days` is at most {MAX_DAYS} either way"));
    }
    let moved = date
        .checked_add_signed(chrono::Duration::days(days))
        .ok_or("the date is out of range")?;
    Ok(json!({
        "date": moved.format("%Y-%m-%d").to_string(),
        "weekday": moved.format("%A").to_string(),
    }))
}

fn calculate(args: &JsonObject) -> Result<Value, String> {
    let expression = text_arg(args, "expression")?;
    if expression.len() > MAX_EXPRESSION {
        return Err(format!("an expression has at most {MAX_EXPRESSION} bytes"));
    }
    let value = Parser::new(expression).parse()?;
    if !value.is_finite() {
        return Err("the result is not a finite number (a division by zero?)".to_owned());
    }
    Ok(json!({"value": value}))
}

/// Arithmetic: `expr := term (('+'|'-') term)*`, `term := unary (('*'|'/'|'%') unary)*`,
/// `unary := '-' unary | power`, `power := atom ('^' unary)?` (so `-2^2` is
/// -4 and `2^3^2` is 512), `atom := number | '(' expr ')'`.
struct Parser<'a> {
    text: &'a [u8],
    at: usize,
    depth: usize,
}

impl<'a> Parser<'a> {
    fn new(text: &'a str) -> Self {
        Self {
            text: text.as_bytes(),
            at: 0,
            depth: 0,
        }
    }

    fn parse(mut self) -> Result<f64, String> {
        let value = self.expr()?;
        self.skip();
        if self.at < self.text.len() {
            return Err(format!(
                "unexpected `{}` at position {}",
                self.text[self.at] as char,
                self.at + 1
            ));
        }
        Ok(value)
    }

    fn skip(&mut self) {
        while self.text.get(self.at).is_some_and(u8::is_ascii_whitespace) {
            self.at += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip();
        self.text.get(self.at).copied()
    }

    fn expr(&mut self) -> Result<f64, String> {
        let mut value = self.term()?;
        while let Some(op @ (b'+' | b'-')) = self.peek() {
            self.at += 1;
            let rhs = self.term()?;
            value = if op == b'+' { value + rhs } else { value - rhs };
        }
        Ok(value)
    }

    fn term(&mut self) -> Result<f64, String> {
        let mut value = self.unary()?;
        while let Some(op @ (b'*' | b'/' | b'%')) = self.peek() {
            self.at += 1;
            let rhs = self.unary()?;
            value = match op {
                b'*' => value * rhs,
                b'/' => value / rhs,
                _ => value % rhs,
            };
        }
        Ok(value)
    }

    fn unary(&mut self) -> Result<f64, String> {
        if self.peek() == Some(b'-') {
            self.at += 1;
            return Ok(-self.nested(Self::unary)?);
        }
        self.power()
    }

    fn power(&mut self) -> Result<f64, String> {
        let base = self.atom()?;
        if self.peek() == Some(b'^') {
            self.at += 1;
            let exponent = self.nested(Self::unary)?;
            return Ok(base.powf(exponent));
        }
        Ok(base)
    }

    fn nested(&mut self, f: fn(&mut Self) -> Result<f64, String>) -> Result<f64, String> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(format!("the expression nests deeper than {MAX_DEPTH}"));
        }
        let value = f(self);
        self.depth -= 1;
        value
    }

    fn atom(&mut self) -> Result<f64, String> {
        match self.peek() {
            Some(b'(') => {
                self.at += 1;
                let value = self.nested(Self::expr)?;
                if self.peek() != Some(b')') {
                    return Err(format!("a `)` is missing at position {}", self.at + 1));
                }
                self.at += 1;
                Ok(value)
            }
            Some(c) if c.is_ascii_digit() || c == b'.' => {
                let start = self.at;
                while self
                    .text
                    .get(self.at)
                    .is_some_and(|c| c.is_ascii_digit() || *c == b'.')
                {
                    self.at += 1;
                }
                let number = std::str::from_utf8(&self.text[start..self.at]).unwrap_or("");
                number
                    .parse()
                    .map_err(|_| format!("`{number}` is not a number"))
            }
            Some(c) => Err(format!(
                "unexpected `{}` at position {}",
                c as char,
                self.at + 1
            )),
            None => Err("the expression ends too early".to_owned()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calc(expression: &str) -> Result<f64, String> {
        Parser::new(expression).parse()
    }

    #[test]
    fn arithmetic_follows_precedence() {
        assert_eq!(calc("1 + 2 * 3").unwrap(), 7.0);
        assert_eq!(calc("(1250 * 19) / 100").unwrap(), 237.5);
        assert_eq!(calc("2 ^ 3 ^ 2").unwrap(), 512.0);
        assert_eq!(calc("-2 ^ 2").unwrap(), -4.0);
        assert_eq!(calc("10 % 4 - -1").unwrap(), 3.0);
        assert_eq!(calc("2 ^ -1").unwrap(), 0.5);
        assert!(calc("1 +").unwrap_err().contains("ends too early"));
        assert!(calc("2 x 3").unwrap_err().contains("unexpected `x`"));
        assert!(calc("(1").unwrap_err().contains("`)` is missing"));
        assert!(calc(&"(".repeat(100)).unwrap_err().contains("nests deeper"));
        assert!(calc("1..2").unwrap_err().contains("not a number"));
    }

    #[test]
    fn dates_are_checked() {
        let args = |v: Value| v.as_object().unwrap().clone();
        assert_eq!(
            days_between(&args(json!({"from": "2026-01-01", "to": "2026-03-01"}))).unwrap(),
            json!({"days": 59})
        );
        assert_eq!(
            add_days(&args(json!({"date": "2026-12-06", "days": 30}))).unwrap(),
            json!({"date": "2027-01-05", "weekday": "Tuesday"})
        );
        assert!(
            days_between(&args(json!({"from": "06.12.2026", "to": "2026-01-01"})))
                .unwrap_err()
                .contains("YYYY-MM-DD")
        );
        assert!(
            today(&args(json!({"timezone": "Mars/Base"})))
                .unwrap_err()
                .contains("IANA")
        );
        assert_eq!(
            today(&args(json!({"timezone": "Europe/Berlin"}))).unwrap()["timezone"],
            "Europe/Berlin"
        );
        assert!(
            calculate(&args(json!({"expression": "1/0"})))
                .unwrap_err()
                .contains("finite")
        );
    }
}
