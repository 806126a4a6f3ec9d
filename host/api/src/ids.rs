//! Ids clients give: one parser per kind, shared by every route that
//! takes one (REST bodies and paths, WebSocket queries).

use std::fmt;
use std::str::FromStr;

/// A thread id as a client may name one: 1 to 128 bytes, no `/` and no
/// control characters. (The engine may adopt this type later; for now the
/// API checks ids with it before handing them on as strings.)
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ThreadId(String);

/// Why a thread id was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a thread id has 1 to 128 characters, no `/` and no control characters")]
pub struct InvalidThreadId;

impl ThreadId {
    /// The longest id, in bytes.
    pub const MAX_LEN: usize = 128;

    /// Checks `id`.
    pub fn parse(id: impl Into<String>) -> Result<Self, InvalidThreadId> {
        let id = id.into();
        let valid = !id.is_empty()
            && id.len() <= Self::MAX_LEN
            && !id.chars().any(|c| c.is_control() || c == '/');
        if valid {
            Ok(Self(id))
        } else {
            Err(InvalidThreadId)
        }
    }

    /// The id.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for ThreadId {
    type Err = InvalidThreadId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for ThreadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_of_1_to_128_bytes_without_slashes_or_control_characters_parse() {
        for good in ["t", "thread-1", "a b", "ü", &"x".repeat(128)] {
            assert_eq!(ThreadId::parse(good).unwrap().as_str(), good);
        }
        for bad in ["", "a/b", "tab\there", "nl\n", &"x".repeat(129)] {
            assert_eq!(ThreadId::parse(bad), Err(InvalidThreadId), "{bad:?}");
        }
        assert_eq!("t-1".parse::<ThreadId>().unwrap().to_string(), "t-1");
    }
}
