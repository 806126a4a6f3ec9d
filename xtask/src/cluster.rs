//! `cargo xtask cluster`: a system of several hosts on this machine, to
//! try the multi-host mode: a throwaway PostgreSQL store and NATS bus on
//! loopback (their data in temporary folders, deleted at the end) and
//! `--hosts` `weft serve` processes on consecutive ports, all with one
//! admin key, until Ctrl-C.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use weft_testkit::{TempNats, TempPostgres};

use crate::{cargo, setup, tasks};

/// Sets everything up, starts the store, the bus and `hosts` hosts from
/// `port` on, and stops them all on Ctrl-C. `args` go to each
/// `weft serve`.
pub fn run(root: &Path, hosts: usize, port: u16, args: &[String]) -> Result<()> {
    ensure!((1..=16).contains(&hosts), "--hosts is 1 to 16, not {hosts}");
    ensure!(
        usize::from(port) + hosts <= usize::from(u16::MAX),
        "--port {port} leaves no room for {hosts} hosts"
    );
    tasks::setup(root)?;
    setup::cluster_packages()?;
    let mut build = cargo(root);
    build.args(["build", "--release", "--package", "weft"]);
    ensure!(build.status()?.success(), "building weft failed");
    let weft = target_dir(root).join("release/weft");

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst))
            .context("listening for Ctrl-C")?;
    }
    println!("starting PostgreSQL and NATS on loopback …");
    let pg = TempPostgres::start().map_err(|e| anyhow::anyhow!("PostgreSQL: {e}"))?;
    let store = pg
        .create_database("weft")
        .map_err(|e| anyhow::anyhow!("PostgreSQL: {e}"))?;
    let nats = TempNats::start().map_err(|e| anyhow::anyhow!("NATS: {e}"))?;
    let key = admin_key()?;
    let data = root.join("data/cluster");
    let mut children = Vec::new();
    for i in 0..hosts {
        let id = format!("host-{i}");
        let dir = data.join(&id);
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let log = dir.join("serve.log");
        let out =
            std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?;
        let port = port + i as u16;
        let child = Command::new(&weft)
            .current_dir(root)
            .env("WEFT_ADMIN_KEY", &key)
            .env("WEFT_LOG", "info")
            .arg("--store")
            .arg(&store)
            .arg("--host-id")
            .arg(&id)
            .arg("--data-dir")
            .arg(&dir)
            .arg("--cache-dir")
            .arg(root.join("data/cache"))
            .args(["serve", "--port", &port.to_string(), "--bus", &nats.url()])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {}", weft.display()))?;
        children.push((id, port, log, child));
    }
    let started = wait_serving(&mut children, &stop);
    if let Err(e) = &started {
        eprintln!("{e:#}");
    } else {
        println!();
        println!("a system of {hosts} hosts is up:");
        for (id, port, log, _) in &children {
            println!("  {id}  http://127.0.0.1:{port}  (log: {})", log.display());
        }
        println!("  store  {store}");
        println!("  bus    {}", nats.url());
        println!("  admin key (every host): {key}");
        println!();
        println!(
            "try: curl -s -H 'Authorization: Bearer {key}' http://127.0.0.1:{port}/api/v1/hosts"
        );
        println!("Ctrl-C stops the hosts, then the store and the bus (their data is deleted).");
        while !stop.load(Ordering::SeqCst) {
            if let Some((id, status)) = exited(&mut children) {
                eprintln!("{id} exited ({status}); stopping the others");
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    for (id, _, _, child) in &mut children {
        stop_child(id, child);
    }
    drop(nats);
    drop(pg);
    println!("stopped");
    started
}

/// Waits until every host prints its serving line (each compiles the
/// plugins it has not cached yet: the first start takes a while).
fn wait_serving(children: &mut [(String, u16, PathBuf, Child)], stop: &AtomicBool) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let serving = children
            .iter()
            .filter(|(_, _, log, _)| {
                std::fs::read_to_string(log).is_ok_and(|l| l.contains("weft serving on"))
            })
            .count();
        if serving == children.len() {
            return Ok(());
        }
        if let Some((id, status)) = exited(children) {
            let log = &children.iter().find(|c| c.0 == id).map(|c| c.2.clone());
            bail!(
                "{id} exited ({status}) while starting; its log: {}",
                log.as_ref()
                    .map_or(String::new(), |l| l.display().to_string())
            );
        }
        if stop.load(Ordering::SeqCst) {
            bail!("stopped while starting");
        }
        if Instant::now() > deadline {
            bail!("the hosts did not start within 10 minutes");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A host that exited, with its status.
fn exited(children: &mut [(String, u16, PathBuf, Child)]) -> Option<(String, String)> {
    children.iter_mut().find_map(|(id, _, _, child)| {
        child
            .try_wait()
            .ok()
            .flatten()
            .map(|status| (id.clone(), status.to_string()))
    })
}

/// SIGTERM, then up to 30 s for the host's runs to reach a frame boundary.
fn stop_child(id: &str, child: &mut Child) {
    if child.try_wait().ok().flatten().is_some() {
        return;
    }
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    eprintln!("{id} did not stop in 30 s; killing it");
    let _ = child.kill();
    let _ = child.wait();
}

/// A random admin key for this session.
fn admin_key() -> Result<String> {
    let mut bytes = [0u8; 16];
    let mut random = std::fs::File::open("/dev/urandom").context("opening /dev/urandom")?;
    std::io::Read::read_exact(&mut random, &mut bytes).context("reading /dev/urandom")?;
    Ok(format!(
        "weft_cluster_{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ))
}

/// Where cargo puts what it builds.
fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
}
