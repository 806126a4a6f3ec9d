//! A throwaway NATS server with JetStream: `nats-server -js` on a free
//! loopback port, its JetStream data in a fresh folder (or, to test
//! refusals, one without JetStream).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::process::{free_port, fresh_dir, runs, wait_for_port};
use crate::{Error, Result};

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
            port: free_port()?,
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
        let log = std::fs::File::create(self.dir.join("server.log"))
            .map_err(|e| Error::new(format!("creating nats-server's log: {e}")))?;
        let mut command = Command::new("nats-server");
        command
            .args(["-a", "127.0.0.1", "-p"])
            .arg(self.port.to_string());
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
        wait_for_port(self.port, "nats-server", Duration::from_secs(30)).map_err(|e| {
            let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
            Error::new(format!("{e}\nserver log:\n{log}"))
        })
    }
}

impl Drop for TempNats {
    fn drop(&mut self) {
        let _ = self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
