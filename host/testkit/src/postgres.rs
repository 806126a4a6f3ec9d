//! A throwaway PostgreSQL cluster: `initdb` into a fresh folder, the
//! server on a free loopback port with its socket in that folder, trust
//! authentication for the `weft` superuser.
//!
//! PostgreSQL refuses to run as root; when the tests run as root (as they
//! do in CI containers) the cluster's programs run as Debian's `postgres`
//! user, which owns the data folder.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::process::{check, free_port, fresh_dir, output, runs, wait_for_port};
use crate::{Error, Result};

/// A PostgreSQL cluster of its own, stopped and deleted when dropped.
#[derive(Debug)]
pub struct TempPostgres {
    dir: PathBuf,
    port: u16,
    bin: PathBuf,
    /// The (uid, gid) the server runs as, when the tests run as root.
    user: Option<(u32, u32)>,
    running: bool,
}

impl TempPostgres {
    /// Creates and starts a cluster.
    pub fn start() -> Result<Self> {
        let bin = bin_dir()?;
        let dir = fresh_dir("postgres")?;
        let user = run_as()?;
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                .map_err(|e| Error::new(format!("giving {} to postgres: {e}", dir.display())))?;
        }
        let mut pg = Self {
            dir,
            port: free_port()?,
            bin,
            user,
            running: false,
        };
        let mut initdb = pg.command("initdb");
        initdb.arg("--pgdata").arg(pg.data()).args([
            "--username=weft",
            "--auth=trust",
            "--encoding=UTF8",
            "--locale=C.UTF-8",
            "--no-sync",
        ]);
        check(initdb, "initdb")?;
        pg.start_again()?;
        Ok(pg)
    }

    /// The URL of database `postgres` (every cluster has it).
    pub fn url(&self) -> String {
        self.database_url("postgres")
    }

    /// The URL of database `name` on this cluster.
    pub fn database_url(&self, name: &str) -> String {
        format!("postgres://weft@127.0.0.1:{}/{name}", self.port)
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Creates database `name` (owned by `weft`) and returns its URL.
    pub fn create_database(&self, name: &str) -> Result<String> {
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""))?;
        Ok(self.database_url(name))
    }

    /// Runs `sql` with `psql` in database `db`, returning what it printed
    /// (unaligned, tuples only).
    pub fn psql(&self, db: &str, sql: &str) -> Result<String> {
        let mut psql = Command::new(self.bin.join("psql"));
        psql.args([
            "-X",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-U",
            "weft",
        ])
        .arg("-p")
        .arg(self.port.to_string())
        .arg("-d")
        .arg(db)
        .arg("-c")
        .arg(sql);
        let out = psql
            .output()
            .map_err(|e| Error::new(format!("running psql: {e}")))?;
        if !out.status.success() {
            return Err(Error::new(format!(
                "psql `{sql}` failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Stops the server the way a crash would (`immediate`: no checkpoint;
    /// it recovers from its WAL at the next start).
    pub fn kill(&mut self) -> Result<()> {
        self.stop_mode("immediate")
    }

    /// Stops the server cleanly (`fast`: open connections are closed).
    pub fn stop(&mut self) -> Result<()> {
        self.stop_mode("fast")
    }

    /// Starts the server again on the same port and data.
    pub fn start_again(&mut self) -> Result<()> {
        let options = format!(
            "-c listen_addresses=127.0.0.1 -c port={} -c unix_socket_directories={} -c max_connections=300",
            self.port,
            self.dir.display()
        );
        let mut pg_ctl = self.command("pg_ctl");
        pg_ctl
            .arg("start")
            .arg("--pgdata")
            .arg(self.data())
            .arg("--log")
            .arg(self.dir.join("server.log"))
            .args(["--wait", "--timeout=60"])
            .arg("-o")
            .arg(options);
        check(pg_ctl, "starting PostgreSQL").map_err(|e| {
            let log = std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default();
            Error::new(format!("{e}\nserver log:\n{log}"))
        })?;
        self.running = true;
        wait_for_port(self.port, "PostgreSQL", Duration::from_secs(30))
    }

    fn stop_mode(&mut self, mode: &str) -> Result<()> {
        if !self.running {
            return Ok(());
        }
        let mut pg_ctl = self.command("pg_ctl");
        pg_ctl
            .arg("stop")
            .arg("--pgdata")
            .arg(self.data())
            .args(["--wait", "--mode", mode]);
        check(pg_ctl, "stopping PostgreSQL")?;
        self.running = false;
        Ok(())
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// One of the cluster's programs, run as the cluster's user.
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(self.bin.join(program));
        command.current_dir(&self.dir);
        if let Some((uid, gid)) = self.user {
            command.uid(uid).gid(gid);
        }
        command
    }
}

impl Drop for TempPostgres {
    fn drop(&mut self) {
        let _ = self.stop_mode("immediate");
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The folder of PostgreSQL's server programs: where `initdb` is on the
/// `PATH`, or Debian's newest `/usr/lib/postgresql/N/bin`.
fn bin_dir() -> Result<PathBuf> {
    let on_path = output({
        let mut c = Command::new("sh");
        c.args(["-c", "command -v initdb"]);
        c
    });
    if let Some(path) = on_path.filter(|p| !p.is_empty())
        && let Ok(real) = std::fs::canonicalize(&path)
        && let Some(dir) = real.parent()
    {
        return Ok(dir.to_path_buf());
    }
    let mut dirs: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map_err(|_| missing())?
        .flatten()
        .map(|e| e.path().join("bin"))
        .filter(|d| runs(&d.join("initdb")))
        .collect();
    dirs.sort_by_key(|d| {
        d.parent()
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    dirs.pop().ok_or_else(missing)
}

fn missing() -> Error {
    Error::new(
        "PostgreSQL's server programs (initdb, pg_ctl) are not installed: run `cargo xtask test`, which installs Debian's postgresql package, or `apt-get install postgresql`",
    )
}

/// The user the cluster runs as: `None` (the current one) unless that is
/// root, then Debian's `postgres` user.
fn run_as() -> Result<Option<(u32, u32)>> {
    let uid = |args: &[&str]| {
        output({
            let mut c = Command::new("id");
            c.args(args);
            c
        })
        .and_then(|s| s.parse::<u32>().ok())
    };
    if uid(&["-u"]) != Some(0) {
        return Ok(None);
    }
    match (uid(&["-u", "postgres"]), uid(&["-g", "postgres"])) {
        (Some(u), Some(g)) => Ok(Some((u, g))),
        _ => Err(Error::new(
            "the tests run as root and PostgreSQL refuses to; Debian's postgresql package creates the `postgres` user it runs as, but there is none",
        )),
    }
}
