//! Guards on the database file before SQLite opens it: a foreign file is
//! refused unread, and a lock file keeps a second weft process out.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use weft_engine::StoreError;
use weft_engine::store::StoreResult;

/// The first bytes of every SQLite database file.
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";

/// Refuses files that are not SQLite databases before SQLite sees them.
pub(super) fn check_header(path: &Path) -> StoreResult<()> {
    let mut file = match File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(StoreError::Backend(format!(
                "cannot read {}: {e}",
                path.display()
            )));
        }
    };
    let mut head = Vec::with_capacity(16);
    Read::by_ref(&mut file)
        .take(16)
        .read_to_end(&mut head)
        .map_err(|e| StoreError::Backend(format!("cannot read {}: {e}", path.display())))?;
    if head.is_empty() || head.as_slice() == SQLITE_HEADER {
        return Ok(());
    }
    let shown: String = head
        .iter()
        .map(|&b| {
            if b.is_ascii_graphic() || b == b' ' {
                b as char
            } else {
                '.'
            }
        })
        .collect();
    Err(StoreError::Incompatible(format!(
        "{} is not a SQLite database (it starts with \"{shown}\"); weft will not touch it: \
         point --store at another file or move this one away",
        path.display()
    )))
}

/// Takes `<store>.lock` so that two weft processes never write (and
/// resume runs from) the same store.
pub(super) fn take_lock(path: &Path) -> StoreResult<File> {
    let mut name = path.as_os_str().to_owned();
    name.push(".lock");
    let lock_path = PathBuf::from(name);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&lock_path)
        .map_err(|e| StoreError::Backend(format!("cannot open {}: {e}", lock_path.display())))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            let _ = file.read_to_string(&mut holder);
            let holder = holder.trim();
            let who = if holder.is_empty() {
                "another process".to_owned()
            } else {
                format!("process {holder}")
            };
            return Err(StoreError::Locked(format!(
                "{} is in use by {who} (lock file {}); stop it, or give this weft another --store",
                path.display(),
                lock_path.display()
            )));
        }
        Err(std::fs::TryLockError::Error(e)) => {
            return Err(StoreError::Backend(format!(
                "cannot lock {}: {e}",
                lock_path.display()
            )));
        }
    }
    let _ = file.set_len(0);
    let _ = write!(file, "{}", std::process::id());
    let _ = file.flush();
    Ok(file)
}
