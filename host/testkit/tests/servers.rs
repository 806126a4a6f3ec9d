#![allow(clippy::unwrap_used)]
//! The throwaway servers start, answer, stop, start again, and leave
//! nothing behind.

use std::io::{Read, Write};
use std::net::TcpStream;

use weft_testkit::{TempNats, TempPostgres};

#[test]
fn postgres_starts_answers_restarts_and_cleans_up() {
    let mut pg = TempPostgres::start().unwrap();
    let url = pg.create_database("kit").unwrap();
    assert!(url.ends_with("/kit"), "{url}");
    pg.psql(
        "kit",
        "CREATE TABLE t (x int); INSERT INTO t VALUES (41), (1)",
    )
    .unwrap();
    assert_eq!(pg.psql("kit", "SELECT sum(x) FROM t").unwrap(), "42");
    pg.kill().unwrap();
    assert!(
        pg.psql("kit", "SELECT 1").is_err(),
        "a stopped server answered"
    );
    pg.start_again().unwrap();
    assert_eq!(pg.psql("kit", "SELECT sum(x) FROM t").unwrap(), "42");
    let port = pg.port();
    drop(pg);
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "still listening after drop"
    );
}

#[test]
fn nats_starts_with_jetstream_and_restarts() {
    let mut nats = TempNats::start().unwrap();
    let info = |port: u16| {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mut buf = [0u8; 4096];
        let n = stream.read(&mut buf).unwrap();
        let _ = stream.write_all(b"QUIT\r\n");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    };
    let first = info(nats.port());
    assert!(first.starts_with("INFO "), "{first}");
    assert!(first.contains("\"jetstream\":true"), "{first}");
    nats.stop().unwrap();
    assert!(TcpStream::connect(("127.0.0.1", nats.port())).is_err());
    nats.start_again().unwrap();
    assert!(info(nats.port()).contains("\"jetstream\":true"));
}

#[test]
fn nats_starts_without_jetstream_when_asked() {
    let nats = TempNats::start_without_jetstream().unwrap();
    let mut stream = TcpStream::connect(("127.0.0.1", nats.port())).unwrap();
    let mut buf = [0u8; 4096];
    let n = stream.read(&mut buf).unwrap();
    let info = String::from_utf8_lossy(&buf[..n]);
    assert!(info.starts_with("INFO "), "{info}");
    assert!(!info.contains("\"jetstream\":true"), "{info}");
}
