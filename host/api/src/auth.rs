//! API keys: stored hashed (SHA-256 of 32 random bytes: a key is not a
//! password, so a slow hash adds nothing), each with a role and an optional
//! project scope, in a JSON file replaced atomically on every change.

use std::path::{Path, PathBuf};
use std::sync::RwLock;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use utoipa::ToSchema;

use crate::error::ApiError;

/// What a key may do. Each role can do what the ones before it can.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    ToSchema,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads.
    Viewer,
    /// Reads and acts: inject, kill, pause, budgets.
    Operator,
    /// Everything, including keys; without a project scope also what
    /// changes the host (stop, reloads, plugins, the active graph).
    Admin,
}

/// A stored key (without the key itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct KeyInfo {
    /// Key id (public).
    pub id: String,
    /// A name for people.
    pub name: String,
    /// Its role.
    pub role: Role,
    /// The project it is limited to; all projects when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Creation time, Unix milliseconds.
    pub created_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct KeyRecord {
    #[serde(flatten)]
    info: KeyInfo,
    /// SHA-256 of the key, hex.
    hash: String,
}

/// How far a caller reaches: the whole host, or one project.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every project, and the host itself (stop, reloads, plugins, the
    /// active graph, keys of every project).
    Host,
    /// One project: its threads, agents, budgets, events and keys, and
    /// nothing host-wide, whatever the role.
    Project(String),
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Key id (`oidc:SUB` for a token).
    pub key: String,
    /// Role.
    pub role: Role,
    /// Host or one project.
    pub scope: Scope,
    /// When the credential stops being valid (Unix seconds; an OIDC
    /// token's `exp`); none for API keys, which last until revoked.
    pub expires: Option<u64>,
}

impl Principal {
    /// Refuses callers below `role`.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.role >= role {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!(
                "this needs the {role:?} role; the key has {:?}",
                self.role
            )))
        }
    }

    /// Refuses callers below `role` and callers limited to a project: the
    /// one check for acts that change the host for every project (stop,
    /// config and graph reloads, plugin swaps, switching the active graph,
    /// resetting usage totals).
    pub fn require_host(&self, role: Role) -> Result<(), ApiError> {
        if let Scope::Project(p) = &self.scope {
            return Err(ApiError::forbidden(format!(
                "this changes the host for every project; a key limited to project `{p}` may not do it, whatever its role (it needs a {role:?} key without a project)"
            )));
        }
        self.require(role)
    }

    /// The project the caller is limited to; none for host scope.
    pub fn project(&self) -> Option<&str> {
        match &self.scope {
            Scope::Host => None,
            Scope::Project(p) => Some(p),
        }
    }

    /// Whether the key sees `project`.
    pub fn sees(&self, project: &str) -> bool {
        self.project().is_none_or(|p| p == project)
    }

    /// Refuses another project's `project` with a 404 (a key learns nothing
    /// of projects outside its scope).
    pub fn check_project(&self, project: &str) -> Result<(), ApiError> {
        if self.sees(project) {
            Ok(())
        } else {
            Err(ApiError::not_found(format!("no project `{project}`")))
        }
    }

    /// The project a request acts in: the one asked for (which the key must
    /// see), else the key's own; `None` (every project) only for a key
    /// without a project scope that names none.
    pub fn scope(&self, requested: Option<&str>) -> Result<Option<String>, ApiError> {
        match requested {
            Some(project) => {
                self.check_project(project)?;
                Ok(Some(project.to_owned()))
            }
            None => Ok(self.project().map(str::to_owned)),
        }
    }
}

impl Scope {
    /// A key's scope from its stored project (none: the host).
    pub fn of(project: Option<String>) -> Self {
        project.map_or(Self::Host, Self::Project)
    }
}

/// The key file.
#[derive(Debug)]
pub struct Keys {
    path: PathBuf,
    records: RwLock<Vec<KeyRecord>>,
}

fn hash(key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether two hashes are equal, in time that does not depend on where
/// they differ.
fn same_hash(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// `bytes` random bytes as hex (ids and secrets).
pub(crate) fn random_hex(bytes: usize) -> Result<String, String> {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).map_err(|e| format!("no randomness: {e}"))?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Keys {
    /// Reads the key file (none yet: no keys).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, String> {
        let path = path.as_ref().to_owned();
        let records = match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|e| format!("the key file {} is unreadable: {e}", path.display()))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
        };
        Ok(Self {
            path,
            records: RwLock::new(records),
        })
    }

    /// With no key yet, creates an admin key: `from_env` if given, else a
    /// random one, returned so that it can be shown once.
    pub fn bootstrap(&self, from_env: Option<&str>) -> Result<Option<String>, String> {
        if !self.list().is_empty() {
            return Ok(None);
        }
        let (plain, generated) = match from_env {
            Some(key) if key.len() >= 16 => (key.to_owned(), false),
            Some(_) => return Err("the bootstrap admin key must have 16 characters or more".into()),
            None => (format!("weft_{}", random_hex(32)?), true),
        };
        self.insert(&plain, "bootstrap admin", Role::Admin, None)?;
        Ok(generated.then_some(plain))
    }

    /// Creates a key; returns its info and the key itself (shown once).
    pub fn create(
        &self,
        name: &str,
        role: Role,
        project: Option<String>,
    ) -> Result<(KeyInfo, String), String> {
        let plain = format!("weft_{}", random_hex(32)?);
        let info = self.insert(&plain, name, role, project)?;
        Ok((info, plain))
    }

    fn insert(
        &self,
        plain: &str,
        name: &str,
        role: Role,
        project: Option<String>,
    ) -> Result<KeyInfo, String> {
        let info = KeyInfo {
            id: format!("key_{}", random_hex(8)?),
            name: name.to_owned(),
            role,
            project,
            created_ms: now_ms(),
        };
        let mut records = self.write();
        let mut next = records.clone();
        next.push(KeyRecord {
            info: info.clone(),
            hash: hash(plain),
        });
        self.save(&next)?;
        *records = next;
        Ok(info)
    }

    /// Revokes a key; false if there is none with this id.
    pub fn revoke(&self, id: &str) -> Result<bool, String> {
        let mut records = self.write();
        let next: Vec<KeyRecord> = records
            .iter()
            .filter(|r| r.info.id != id)
            .cloned()
            .collect();
        if next.len() == records.len() {
            return Ok(false);
        }
        self.save(&next)?;
        *records = next;
        Ok(true)
    }

    /// Every key.
    pub fn list(&self) -> Vec<KeyInfo> {
        self.read().iter().map(|r| r.info.clone()).collect()
    }

    /// The key's principal, if it is one of ours. Every record's hash is
    /// compared, each in constant time, so the answer's timing tells
    /// nothing of the stored hashes.
    pub fn verify(&self, plain: &str) -> Option<Principal> {
        let h = hash(plain);
        let records = self.read();
        let mut found = None;
        for r in records.iter() {
            if same_hash(&r.hash, &h) && found.is_none() {
                found = Some(r);
            }
        }
        found.map(|r| Principal {
            key: r.info.id.clone(),
            role: r.info.role,
            scope: Scope::of(r.info.project.clone()),
            expires: None,
        })
    }

    /// Whether the key with this id is still there (not revoked).
    pub fn exists(&self, id: &str) -> bool {
        self.read().iter().any(|r| r.info.id == id)
    }

    /// Writes the whole file: a temporary file, then a rename.
    fn save(&self, records: &[KeyRecord]) -> Result<(), String> {
        let text = serde_json::to_string_pretty(records).map_err(|e| e.to_string())?;
        if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        }
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, text).map_err(|e| format!("{}: {e}", tmp.display()))?;
        restrict(&tmp);
        std::fs::rename(&tmp, &self.path).map_err(|e| format!("{}: {e}", self.path.display()))
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<KeyRecord>> {
        self.records
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Vec<KeyRecord>> {
        self.records
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// Only the owner may read the key file.
#[cfg(unix)]
fn restrict(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
}

#[cfg(not(unix))]
fn restrict(_: &Path) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stored_hashed_and_survive_a_reopen() {
        let dir = std::env::temp_dir().join(format!("weft-keys-{}", std::process::id()));
        let path = dir.join("keys.json");
        let _ = std::fs::remove_file(&path);
        let keys = Keys::open(&path).unwrap();
        let admin = keys.bootstrap(None).unwrap().expect("generated");
        assert!(keys.bootstrap(None).unwrap().is_none(), "only once");
        let (info, viewer) = keys
            .create("ci", Role::Viewer, Some("acme".into()))
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains(&admin) && !text.contains(&viewer), "{text}");
        let keys = Keys::open(&path).unwrap();
        assert_eq!(keys.verify(&admin).unwrap().role, Role::Admin);
        let p = keys.verify(&viewer).unwrap();
        assert_eq!((p.role, p.project()), (Role::Viewer, Some("acme")));
        assert!(p.sees("acme") && !p.sees("other"));
        assert!(p.require(Role::Operator).is_err());
        assert!(same_hash(&hash("a"), &hash("a")) && !same_hash(&hash("a"), &hash("b")));
        assert!(keys.verify("weft_nope").is_none());
        assert!(
            p.require_host(Role::Viewer).is_err(),
            "a project key never acts host-wide"
        );
        let root = keys.verify(&admin).unwrap();
        assert!(root.require_host(Role::Admin).is_ok());
        assert!(keys.exists(&info.id));
        assert!(keys.revoke(&info.id).unwrap());
        assert!(!keys.exists(&info.id));
        assert!(keys.verify(&viewer).is_none());
    }
}
