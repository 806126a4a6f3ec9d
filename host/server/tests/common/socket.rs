//! The chat and event WebSockets from tests: JSON messages in and out.

use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

/// A client socket.
pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens `path` (with its query) on the server at `base` (`http://…`).
pub async fn connect(base: &str, path: &str) -> Socket {
    let url = format!("{}{path}", base.replace("http://", "ws://"));
    tokio_tungstenite::connect_async(url).await.unwrap().0
}

/// Sends `value` as a text message.
pub async fn send(socket: &mut Socket, value: Value) {
    socket
        .send(Message::Text(value.to_string().into()))
        .await
        .unwrap();
}

/// The next text message on the socket, as JSON (failing after a minute).
pub async fn read(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(60), socket.next())
            .await
            .expect("a message within a minute")
            .unwrap()
            .unwrap();
        if let Message::Text(t) = message {
            return serde_json::from_str(t.as_str()).unwrap();
        }
    }
}

/// The next message whose `type` is `kind`.
pub async fn until_type(socket: &mut Socket, kind: &str) -> Value {
    loop {
        let m = read(socket).await;
        if m["type"] == kind {
            return m;
        }
    }
}
