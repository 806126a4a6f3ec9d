//! The expert's graph `config`.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::cues::Cues;

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
    /// The cue words of intent mode, by ISO 639-1 language code (see
    /// [`Cues`]); [`Cues::defaults`] (English and German) when unset.
    pub cues: BTreeMap<String, Cues>,
    /// Bounds of the value index (intent mode's value filters).
    pub values: ValueIndex,
    /// The answer's language when the job names none the expert knows.
    pub language: String,
}

/// Bounds of the index of text values (see [`crate::intent`]'s value
/// filters).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValueIndex {
    /// A column with more distinct values than this is not indexed; 0
    /// turns value filters off.
    pub max_per_column: usize,
    /// Values indexed at most, over all columns.
    pub max_total: usize,
    /// Values shorter than this (in characters) are not indexed.
    pub min_chars: usize,
    /// Values longer than this (in characters) are not indexed.
    pub max_chars: usize,
}

impl Default for ValueIndex {
    fn default() -> Self {
        Self {
            max_per_column: 200,
            max_total: 4000,
            min_chars: 3,
            max_chars: 40,
        }
    }
}

/// A noun in one language: singular and plural.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Noun {
    /// Singular: `Kunde`.
    pub one: String,
    /// Plural: `Kunden`.
    pub many: String,
}

/// The words users use for a column: one phrase or a list.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(from = "OneOrMany")]
pub struct Glosses(pub Vec<String>);

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl From<OneOrMany> for Glosses {
    fn from(value: OneOrMany) -> Self {
        match value {
            OneOrMany::One(one) => Self(vec![one]),
            OneOrMany::Many(many) => Self(many),
        }
    }
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
    /// The date column a period (`in 2024`) filters on; `latest_by` when
    /// unset.
    pub date: Option<String>,
    /// Column glosses: column name → the words users use for it, one
    /// phrase or a list (`Wohnflaeche: [living area, Wohnfläche]`).
    pub columns: BTreeMap<String, Glosses>,
    /// Whether rows of this table own the others (customers): the target
    /// of an owner question (`who owns property 7`).
    pub owner: bool,
    /// How answers name a row, by language code
    /// (`de: { one: Kunde, many: Kunden }`); the first of `names` (with an
    /// English plural) when the language has none.
    pub label: BTreeMap<String, Noun>,
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
            cues: Cues::defaults(),
            values: ValueIndex::default(),
            language: "en".to_owned(),
        }
    }
}
