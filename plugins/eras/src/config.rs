//! The expert's graph `config`.

use serde::Deserialize;

/// The node's graph `config`; every key is optional.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The peer told about failed jobs (`expert_failed`).
    pub pa: String,
    /// The peer that writes the reply (`respond`).
    pub output: String,
    /// The peer that shows the rows (`ui`).
    pub ui: String,
    /// How many times a failed statement is rewritten (with the error in the
    /// prompt) before the job is given up; 0 tries once.
    pub max_retries: u32,
    /// How many rows become `key_facts` of the answer.
    pub max_facts: usize,
    /// The tables the expert may use; `None` (the default) means every
    /// table the database lists.
    pub tables: Option<Vec<String>>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            pa: "pa".to_owned(),
            output: "output".to_owned(),
            ui: "ui".to_owned(),
            max_retries: 3,
            max_facts: 10,
            tables: None,
        }
    }
}
