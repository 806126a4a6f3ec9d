//! A node that tries to leave the sandbox through WASI: read `/etc/passwd`,
//! create `/tmp/weft-escape`, connect to `127.0.0.1:80`.
//!
//! It replies with a JSON object, one key per attempt (`read`, `create`,
//! `connect`), each holding `error: ` and the error's text, or on success
//! the file's content, `created /tmp/weft-escape` or
//! `connected to 127.0.0.1:80`. A host test asserts all three start with
//! `error`.

use std::io;

use weft_sdk::{Ctx, Message, Node, NodeError, NodeInfo};

/// The file the node tries to read.
pub const READ_PATH: &str = "/etc/passwd";
/// The file the node tries to create.
pub const CREATE_PATH: &str = "/tmp/weft-escape";
/// The address the node tries to connect to.
pub const CONNECT_ADDR: &str = "127.0.0.1:80";

struct Fs;

/// `error: ` and the error's text, or `success(value)`.
fn outcome<T>(result: io::Result<T>, success: impl FnOnce(T) -> String) -> String {
    match result {
        Ok(value) => success(value),
        Err(error) => format!("error: {error}"),
    }
}

impl Node for Fs {
    fn describe() -> NodeInfo {
        NodeInfo::new(
            "guest-fs",
            env!("CARGO_PKG_VERSION"),
            "Tries files and sockets",
        )
    }

    fn tick(ctx: &mut Ctx<'_>, _inbox: &[Message]) -> Result<(), NodeError> {
        let read = outcome(std::fs::read_to_string(READ_PATH), |content| content);
        let create = outcome(std::fs::File::create(CREATE_PATH), |_| {
            format!("created {CREATE_PATH}")
        });
        let connect = outcome(std::net::TcpStream::connect(CONNECT_ADDR), |_| {
            format!("connected to {CONNECT_ADDR}")
        });
        let report = serde_json::json!({"read": read, "create": create, "connect": connect});
        ctx.reply(report.to_string());
        Ok(())
    }
}

weft_sdk::export_node!(Fs);
