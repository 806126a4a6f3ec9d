//! A throwaway NATS server with JetStream: `nats-server -js` on a
//! loopback port the server picks itself, its JetStream data in a fresh
//! folder (or, to test refusals, one without JetStream).
//!
//! The server chooses its own port (`-p -1`) and the kit reads it from the
//! server's log: a port found free by the kit and handed over could be
//! taken by a parallel test's server in between, and a connection to "our"
//! port would then reach the other server, or nothing once that one stops.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::process::{fresh_dir, runs};
use crate::{Error, Result};

/// How long a starting server may take to say it is ready.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// What nats-server logs once it listens for clients.
const LISTENING: &str = "Listening for client connections on ";
/// What nats-server logs once it serves (JetStream, when on, is up).
const READY: &str = "Server is ready";

/// A NATS server of its own, killed and its data deleted when dropped.
#[derive(Debug)]
pub struct TempNats {
    dir: PathBuf,
    port: u16,
    jetstream: bool,
    child: Option<Child>,
}

impl TempNats {
    /// Starts a server with JetStream enabled.
    pub fn start() -> Result<Self> {
        Self::start_with(true)
    }

    /// Starts a server without JetStream (core NATS only), which a bus
    /// must refuse.
    pub fn start_without_jetstream() -> Result<Self> {
        Self::start_with(false)
    }

    fn start_with(jetstream: bool) -> Result<Self> {
        if !runs("nats-server".as_ref()) {
            return Err(Error::new(
                "nats-server is not installed: run `cargo xtask test`, which installs Debian's nats-server package, or `apt-get install nats-server`",
            ));
        }
        let mut nats = Self {
            dir: fresh_dir("nats")?,
            port: 0,
            jetstream,
            child: None,
        };
        nats.start_again()?;
        Ok(nats)
    }

    /// The server's URL (`nats://127.0.0.1:PORT`).
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server (SIGKILL); its JetStream data stays for
    /// [`start_again`](Self::start_again).
    pub fn stop(&mut self) -> Result<()> {
        if let Some(mut child) = self.child.take() {
            child
                .kill()
                .map_err(|e| Error::new(format!("stopping nats-server: {e}")))?;
            let _ = child.wait();
        }
        Ok(())
    }

    /// Starts the server again on the same port and data.
    pub fn start_again(&mut self) -> Result<()> {
        if self.child.is_some() {
            return Err(Error::new("nats-server is already running"));
        }
        let log = std::fs::File::create(self.dir.join("server.log"))
            .map_err(|e| Error::new(format!("creating nats-server's log: {e}")))?;
        let mut command = Command::new("nats-server");
        // Port 0 asks the server for a port of its own (`-p -1`).
        let port = if self.port == 0 {
            "-1".to_owned()
        } else {
            self.port.to_string()
        };
        command.args(["-a", "127.0.0.1", "-p", &port]);
        if self.jetstream {
            command
                .arg("-js")
                .arg("-sd")
                .arg(self.dir.join("jetstream"));
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .map_err(|e| Error::new(format!("starting nats-server: {e}")))?;
        self.child = Some(child);
        match self.wait_until_ready() {
            Ok(port) => {
                self.port = port;
                Ok(())
            }
            Err(e) => {
                let _ = self.stop();
                let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
                Err(Error::new(format!("{e}\nserver log:\n{log}")))
            }
        }
    }

    /// Waits until this server's log says it is ready, and returns the
    /// port it says it listens on. A server that exits first (its port
    /// taken, a bad flag) fails at once.
    fn wait_until_ready(&mut self) -> Result<u16> {
        let start = Instant::now();
        let log_path = self.dir.join("server.log");
        while start.elapsed() < START_TIMEOUT {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            if log.contains(READY) {
                return listening_port(&log)
                    .ok_or_else(|| Error::new("nats-server is ready but logged no client port"));
            }
            let child = self.child.as_mut().expect("started above");
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Err(Error::new(format!(
                    "nats-server exited before it was ready ({status})"
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(Error::new(format!(
            "nats-server did not say it was ready within {START_TIMEOUT:?}"
        )))
    }
}

/// The client port in a line like `Listening for client connections on
/// 127.0.0.1:4222`.
fn listening_port(log: &str) -> Option<u16> {
    let line = log.lines().find(|l| l.contains(LISTENING))?;
    let address = line.split(LISTENING).nth(1)?.trim();
    address.rsplit(':').next()?.parse().ok()
}

impl Drop for TempNats {
    fn drop(&mut self) {
        let _ = self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::listening_port;

    #[test]
    fn the_client_port_is_read_from_the_log() {
        let log = "[1] 2026/12/06 00:00:00.000000 [INF] Starting nats-server\n\
                   [1] 2026/12/06 00:00:00.000000 [INF] Listening for client connections on 127.0.0.1:40123\n\
                   [1] 2026/12/06 00:00:00.000000 [INF] Server is ready\n";
        assert_eq!(listening_port(log), Some(40123));
        assert_eq!(listening_port("[INF] Server is ready"), None);
    }
}
