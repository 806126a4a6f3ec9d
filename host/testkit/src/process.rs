//! What both servers need: a free loopback port, a fresh folder, waiting
//! for a port to accept connections, finding a program.

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use crate::{Error, Result};

/// A port nothing listens on now (the OS picks it; a race with another
/// process taking it before the server binds is possible but rare, and
/// the server then fails to start with a clear error).
pub(crate) fn free_port() -> Result<u16> {
    let listener = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| Error::new(format!("finding a free port: {e}")))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| Error::new(format!("finding a free port: {e}")))
}

/// A new empty folder under the system's temporary folder.
pub(crate) fn fresh_dir(kind: &str) -> Result<PathBuf> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("weft-{kind}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::new(format!("creating {}: {e}", dir.display())))?;
    Ok(dir)
}

/// Waits until `port` on loopback accepts a TCP connection.
pub(crate) fn wait_for_port(port: u16, what: &str, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port).into();
    while start.elapsed() < timeout {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    Err(Error::new(format!(
        "{what} did not accept connections on 127.0.0.1:{port} within {timeout:?}"
    )))
}

/// Whether `program --version` runs.
pub(crate) fn runs(program: &Path) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Runs `command`, failing with its output when it does not succeed.
pub(crate) fn check(mut command: Command, what: &str) -> Result<()> {
    let output = command
        .output()
        .map_err(|e| Error::new(format!("{what}: cannot run {command:?}: {e}")))?;
    if output.status.success() {
        return Ok(());
    }
    Err(Error::new(format!(
        "{what} failed ({}): {}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )))
}

/// The text of a command's output, trimmed.
pub(crate) fn output(mut command: Command) -> Option<String> {
    let output = command.output().ok()?;
    output
        .status
        .success()
        .then(|| String::from_utf8_lossy(&output.stdout).trim().to_owned())
}
