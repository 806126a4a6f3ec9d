//! Throwaway servers for weft's tests: a PostgreSQL cluster and a NATS
//! server with JetStream, each started on loopback on a free port with its
//! data in a fresh temporary folder, stopped and deleted when dropped.
//!
//! The programs come from Debian's packages (`postgresql`, `nats-server`),
//! which `cargo xtask test` installs when missing. Nothing here touches a
//! server that is already running: each instance has its own port, data
//! folder and socket folder.

mod nats;
mod postgres;
mod process;

pub use nats::TempNats;
pub use postgres::TempPostgres;

/// Why a throwaway server could not be started or stopped.
#[derive(Debug)]
pub struct Error(String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

impl Error {
    fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}

/// The result of starting or stopping a server.
pub type Result<T> = std::result::Result<T, Error>;
