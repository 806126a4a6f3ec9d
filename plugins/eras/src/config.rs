//! The expert's graph `config`.

use std::collections::BTreeMap;

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
    /// How a job becomes SQL: the model writes it (`sql`, for capable
    /// models) or fills a query intent the expert turns into SQL
    /// (`intent`, for small models; needs `entities`).
    pub mode: Mode,
    /// The vocabulary of the tables, by table name, for intent mode.
    pub entities: BTreeMap<String, Entity>,
}

/// See [`Config::mode`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Plan, then model-written SQL with retries.
    #[default]
    Sql,
    /// Grounded, schema-constrained intent; SQL built by the expert.
    Intent,
}

/// How users speak of one table (intent mode).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Entity {
    /// Words naming a row of the table, singular, most usual first
    /// (`customer`, `client`); plurals are recognised.
    pub names: Vec<String>,
    /// The columns a `list` or `latest` shows; all when empty.
    pub show: Vec<String>,
    /// The column `latest` orders by (a date).
    pub latest_by: Option<String>,
    /// Column glosses: column name → the words users use for it
    /// (`Wohnflaeche: living area`).
    pub columns: BTreeMap<String, String>,
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
            mode: Mode::Sql,
            entities: BTreeMap::new(),
        }
    }
}
