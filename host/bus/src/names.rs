//! The names a system uses on NATS: every stream and subject starts with
//! its cluster name, so that two systems share a server without seeing
//! each other.

use async_nats::jetstream::stream::{Config, DiscardPolicy, RetentionPolicy, StorageType};

use crate::BusError;

/// A system's stream and subject names.
#[derive(Debug, Clone)]
pub struct Names {
    cluster: String,
}

impl Names {
    /// The names of cluster `cluster` (letters, digits, `-` and `_`: they
    /// go into a stream name and a subject token).
    pub fn new(cluster: &str) -> Result<Self, BusError> {
        let valid = !cluster.is_empty()
            && cluster.len() <= 64
            && cluster
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            return Err(BusError::InvalidCluster(cluster.to_owned()));
        }
        Ok(Self {
            cluster: cluster.to_owned(),
        })
    }

    /// The cluster name.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// The event stream: `<cluster>_events`.
    pub fn stream(&self) -> String {
        format!("{}_events", self.cluster)
    }

    /// Every event subject: `<cluster>.events.>`.
    pub fn events(&self) -> String {
        format!("{}.events.>", self.cluster)
    }

    /// The subject of an event: `<cluster>.events.thread` for a thread's,
    /// `<cluster>.events.host` for a host event.
    pub fn event(&self, host_event: bool) -> String {
        let kind = if host_event { "host" } else { "thread" };
        format!("{}.events.{kind}", self.cluster)
    }

    /// The changes subject: `<cluster>.changes`.
    pub fn changes(&self) -> String {
        format!("{}.changes", self.cluster)
    }

    /// The wake-ups subject: `<cluster>.work`.
    pub fn work(&self) -> String {
        format!("{}.work", self.cluster)
    }

    /// The event stream's settings: file-backed, keeping the last
    /// `history` events.
    pub(crate) fn stream_config(&self, history: u64) -> Config {
        Config {
            name: self.stream(),
            description: Some(format!("weft events of cluster {}", self.cluster)),
            subjects: vec![self.events()],
            storage: StorageType::File,
            retention: RetentionPolicy::Limits,
            discard: DiscardPolicy::Old,
            max_messages: i64::try_from(history.max(1)).unwrap_or(i64::MAX),
            ..Config::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_names_must_fit_a_stream_name_and_a_subject_token() {
        for bad in ["", "a.b", "a b", "a*", "a>", "a/b", &"x".repeat(65)] {
            let e = Names::new(bad).unwrap_err();
            assert_eq!(e.code(), "bus_cluster_invalid", "{bad:?}");
        }
        let names = Names::new("prod-eu_1").unwrap();
        assert_eq!(names.stream(), "prod-eu_1_events");
        assert_eq!(names.event(true), "prod-eu_1.events.host");
        assert_eq!(names.changes(), "prod-eu_1.changes");
    }
}
