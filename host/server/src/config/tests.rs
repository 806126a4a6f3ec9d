//! The config loader's tests: settings, limits on hostile files, prices, and property tests.

use super::*;
use weft_engine::{MoneyBudget, Window};

fn parse(yaml: &str) -> Result<Config> {
    Ok(Config::parse(yaml, "weft.yaml")?)
}

#[test]
fn a_full_config_parses_and_builds() {
    let config = parse(
        r#"
llm:
  providers:
    - { kind: openai, name: local, base_url: "http://127.0.0.1:9/v1", default_model: m }
    - { kind: openai, name: other, base_url: "http://127.0.0.1:10/v1", timeout_ms: 500 }
  models:
    small: [local]
    large: [other, local]
budget:
  thread_tokens: 5000
  project_money: { limit: 5.0, window: daily }
  projects:
    acme: { limit: 50, window: monthly }
    trial: { limit: 0.5 }
prices:
  - { prefix: m, prompt_per_million: 1.0, completion_per_million: 2.0 }
"#,
    )
    .unwrap();
    assert_eq!(config.budget.thread_tokens, Some(5000));
    assert_eq!(
        config.budget.project_money,
        Some(MoneyBudget::new(5.0, Window::Daily).unwrap())
    );
    assert_eq!(
        config.budget.projects["acme"],
        MoneyBudget::new(50.0, Window::Monthly).unwrap()
    );
    assert_eq!(config.budget.projects["trial"].window, Window::None);
    assert_eq!(config.prices().cost("m-1", 1_000_000, 0), Some(1.0));
    assert!(config.llm_backend().unwrap().is_some());
}

#[test]
fn mistakes_are_named() {
    let unknown_key = parse("llm: { provider: [] }").unwrap_err();
    assert!(
        format!("{unknown_key:#}").contains("provider"),
        "{unknown_key:#}"
    );
    let bad_route = parse(
        r#"
llm:
  providers: [{ kind: openai, name: a, base_url: "http://127.0.0.1:9/v1" }]
  models: { small: [b] }
"#,
    )
    .unwrap()
    .llm_backend()
    .err()
    .unwrap();
    assert!(format!("{bad_route:#}").contains("no provider named `b`"));
    let no_key = parse(
            r#"
llm:
  providers: [{ kind: openai, name: a, base_url: "http://x/v1", api_key_env: WEFT_TEST_UNSET_KEY_VAR }]
"#,
        )
        .unwrap()
        .llm_backend()
        .err()
        .unwrap();
    assert!(
        format!("{no_key:#}").contains("WEFT_TEST_UNSET_KEY_VAR"),
        "{no_key:#}"
    );
    let kind = parse("llm: { providers: [{ kind: carrier-pigeon, name: a }] }").unwrap_err();
    assert!(format!("{kind:#}").contains("carrier-pigeon"), "{kind:#}");
    let negative = parse("budget: { project_money: { limit: -5 } }").unwrap_err();
    assert!(
        format!("{negative:#}").contains("at least 0"),
        "{negative:#}"
    );
    let window = parse("budget: { project_money: { limit: 5, window: weekly } }").unwrap_err();
    assert!(format!("{window:#}").contains("weekly"), "{window:#}");
    let key = parse("budget: { project_money: { limit: 5, per: day } }").unwrap_err();
    assert!(format!("{key:#}").contains("per"), "{key:#}");
}

/// A file in a fresh temporary folder.
fn temp_file(name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("weft-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn duplicate_keys_in_the_config_are_errors() {
    for text in [
        "api: { burst: 1 }\napi: { burst: 2 }\n",
        "api: { burst: 1, burst: 2 }\n",
        "llm: { models: { small: [a], small: [b] } }\n",
        "budget: { projects: { acme: { limit: 1 }, acme: { limit: 2 } } }\n",
    ] {
        let err = Config::parse(text, "weft.yaml").unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { .. }), "{text}: {err}");
        assert!(err.to_string().contains("duplicate"), "{text}: {err}");
    }
}

#[test]
fn an_alias_flood_in_the_config_is_a_limit_error() {
    let aliases = vec!["*s"; weft_engine::graph::MAX_GRAPH_ALIASES + 1].join(", ");
    let text = format!("api:\n  cors: [&s lol, {aliases}]\n");
    let err = Config::parse(&text, "weft.yaml").unwrap_err();
    assert!(matches!(err, ConfigError::Limit { .. }), "{err}");
    assert!(
        err.to_string().contains("over the loader's limits"),
        "{err}"
    );
}

#[test]
fn deep_nesting_in_the_config_is_a_limit_error() {
    let depth = 100_000;
    let flow = format!(
        "api: {{ cors: {}{} }}\n",
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let err = Config::parse(&flow, "weft.yaml").unwrap_err();
    assert!(matches!(err, ConfigError::Limit { .. }), "{err}");
    let block = format!("llm:\n  models:\n    m:\n      {}x\n", "- ".repeat(depth));
    let err = Config::parse(&block, "weft.yaml").unwrap_err();
    assert!(
        matches!(err, ConfigError::Limit { .. } | ConfigError::Invalid { .. }),
        "{err}"
    );
}

#[test]
fn a_huge_endless_or_binary_config_is_refused() {
    let huge = format!("api: {{ burst: 1 }}\n# {}\n", "x".repeat(MAX_CONFIG_BYTES));
    let err = Config::parse(&huge, "weft.yaml").unwrap_err();
    assert!(matches!(err, ConfigError::TooLarge { .. }), "{err}");
    let path = temp_file("huge.yaml", huge.as_bytes());
    assert!(matches!(
        Config::read(&path),
        Err(ConfigError::TooLarge { .. })
    ));
    let zero = Path::new("/dev/zero");
    if zero.exists() {
        assert!(matches!(
            Config::read(zero),
            Err(ConfigError::TooLarge { .. })
        ));
    }
    let path = temp_file("latin.yaml", b"api: { cors: [\"\xe9\"] }\n");
    let err = Config::read(&path).unwrap_err();
    assert!(
        matches!(err, ConfigError::NotUtf8 { offset: 15, .. }),
        "{err}"
    );
    let missing = Config::read(Path::new("/nonexistent/weft.yaml")).unwrap_err();
    assert!(matches!(missing, ConfigError::Read { .. }), "{missing}");
    // `load` keeps the typed error inside.
    let err = Config::load(&path).unwrap_err();
    assert!(err.downcast_ref::<ConfigError>().is_some(), "{err:#}");
}

#[test]
fn unicode_names_in_the_config_load() {
    let config = parse(
            "llm:\n  providers: [{ kind: openai, name: \"приём 🦀\", base_url: \"http://127.0.0.1:9/v1\" }]\n  models: { \"小\": [\"приём 🦀\"] }\nbudget: { projects: { \"e\u{301}\": { limit: 1 } } }\n",
        )
        .unwrap();
    assert!(config.llm.models.contains_key("小"));
    assert!(config.llm_backend().unwrap().is_some());
}

#[test]
fn negative_or_non_finite_prices_are_refused() {
    for price in ["-1", ".nan", ".inf", "-.inf"] {
        let text = format!(
            "prices: [{{ prefix: m, prompt_per_million: {price}, completion_per_million: 1 }}]\n"
        );
        let err = parse(&text).unwrap_err();
        assert!(
            format!("{err:#}").contains("finite and at least 0"),
            "{price}: {err:#}"
        );
    }
    parse("prices: [{ prefix: m, prompt_per_million: 0, completion_per_million: 0.5 }]").unwrap();
}

mod props {
    //! Property tests of the config loader (proptest): any text, and
    //! generated configs with valid, wrong and extra keys, parse or fail
    //! with a [`ConfigError`]; a config that parses keeps its invariants.
    //! Cases: `PROPTEST_CASES` (default 256 per property).

    use proptest::prelude::*;
    use serde_json::{Value, json};

    use super::super::{Config, ConfigError, ProviderConfig};

    fn config() -> ProptestConfig {
        let cases = std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(256);
        ProptestConfig {
            cases,
            ..ProptestConfig::default()
        }
    }

    /// A float, or a marker written as `.nan`, `.inf` or `-.inf`.
    fn float() -> impl Strategy<Value = Value> {
        prop_oneof![
            6 => (0.0f64..100.0).prop_map(|f| json!(f)),
            2 => (-100.0f64..0.0).prop_map(|f| json!(f)),
            1 => prop::sample::select(vec!["@NAN@", "@INF@", "@NEGINF@"]).prop_map(|s| json!(s)),
            1 => any::<i64>().prop_map(|n| json!(n)),
        ]
    }

    fn name() -> impl Strategy<Value = String> {
        prop_oneof![3 => "[a-z]{1,6}", 1 => "\\PC{0,6}"]
    }

    fn maybe(
        key: &'static str,
        p: f64,
        value: impl Strategy<Value = Value>,
    ) -> impl Strategy<Value = Option<(String, Value)>> {
        prop::option::weighted(p, value.prop_map(move |v| (key.to_owned(), v)))
    }

    fn object(fields: Vec<Option<(String, Value)>>) -> Value {
        Value::Object(fields.into_iter().flatten().collect())
    }

    fn provider() -> impl Strategy<Value = Value> {
        let openai = (
            name(),
            prop_oneof![
                4 => Just("http://127.0.0.1:9/v1".to_owned()),
                1 => Just("ftp://x".to_owned()),
                1 => "\\PC{0,12}",
            ],
            maybe(
                "api_key_env",
                0.3,
                prop_oneof![
                    Just(json!("")),
                    Just(json!("A=B")),
                    Just(json!("NUL\u{0}")),
                    Just(json!("WEFT_PROP_UNSET_VARIABLE")),
                    "\\PC{0,8}".prop_map(|s| json!(s)),
                ],
            ),
            maybe(
                "timeout_ms",
                0.3,
                prop_oneof![Just(json!(0)), any::<u64>().prop_map(|n| json!(n))],
            ),
            maybe("default_model", 0.3, name().prop_map(|s| json!(s))),
            maybe("stray", 0.05, Just(json!(1))),
        )
            .prop_map(|(name, url, key, timeout, model, stray)| {
                let mut p = object(vec![key, timeout, model, stray]);
                p["kind"] = json!("openai");
                p["name"] = json!(name);
                p["base_url"] = json!(url);
                p
            });
        prop_oneof![
            8 => openai,
            1 => name().prop_map(|n| json!({"kind": "local", "name": n, "path": "/nonexistent/m.gguf"})),
            1 => ("\\PC{0,8}", name()).prop_map(|(k, n)| json!({"kind": k, "name": n})),
        ]
    }

    fn money() -> impl Strategy<Value = Value> {
        (
            float(),
            prop::option::of(prop::sample::select(vec![
                "daily", "monthly", "none", "weekly",
            ])),
        )
            .prop_map(|(limit, window)| match window {
                Some(w) => json!({"limit": limit, "window": w}),
                None => json!({"limit": limit}),
            })
    }

    fn document() -> impl Strategy<Value = Value> {
        let llm = (
                prop::collection::vec(provider(), 0..4),
                prop::collection::btree_map(name(), prop::collection::vec(name(), 0..3), 0..3),
                prop::collection::vec(name(), 0..3),
            )
                .prop_map(|(providers, models, default)| json!({"providers": providers, "models": models, "default": default}));
        let budget = (
            prop::option::of(prop_oneof![
                any::<u64>().prop_map(|n| json!(n)),
                Just(json!(-1))
            ]),
            prop::option::of(money()),
            prop::collection::btree_map(name(), money(), 0..3),
        )
            .prop_map(|(tokens, money, projects)| {
                let mut b = json!({"projects": projects});
                if let Some(t) = tokens {
                    b["thread_tokens"] = t;
                }
                if let Some(m) = money {
                    b["project_money"] = m;
                }
                b
            });
        let prices = prop::collection::vec(
                (name(), float(), float()).prop_map(|(p, a, b)| json!({"prefix": p, "prompt_per_million": a, "completion_per_million": b})),
                0..3,
            );
        let duration = prop_oneof![
            Just("30d".to_owned()),
            Just("0s".to_owned()),
            Just("1h".to_owned()),
            "[0-9]{1,30}(s|m|h|d|y|ms|ns)",
            "\\PC{0,8}",
        ];
        let store = (
            prop::sample::select(vec!["full", "normal", "eventual"]),
            prop::option::of(any::<u64>()),
            prop::option::of((duration.clone(), prop::option::of(duration))),
        )
            .prop_map(|(sync, size, retention)| {
                let mut s = json!({"sync": sync});
                if let Some(n) = size {
                    s["max_size_mb"] = json!(n);
                }
                if let Some((age, every)) = retention {
                    s["retention"] = match every {
                        Some(e) => json!({"max_age": age, "every": e}),
                        None => json!({"max_age": age}),
                    };
                }
                s
            });
        let api = (any::<u32>(), any::<u32>(), any::<u32>(), prop::collection::vec("\\PC{0,10}", 0..3))
                .prop_map(|(rate, burst, body, cors)| json!({"rate_per_minute": rate, "burst": burst, "body_limit_kb": body, "cors": cors}));
        (
            maybe("llm", 0.7, llm),
            maybe("budget", 0.5, budget),
            maybe("prices", 0.5, prices.prop_map(Value::Array)),
            maybe("store", 0.4, store),
            maybe("api", 0.4, api),
            maybe(
                "runtime",
                0.3,
                any::<u32>().prop_map(|n| json!({"instances": n})),
            ),
            maybe("stray", 0.03, Just(json!({}))),
        )
            .prop_map(|(a, b, c, d, e, f, g)| object(vec![a, b, c, d, e, f, g]))
    }

    fn text_of(doc: &Value) -> String {
        serde_json::to_string_pretty(doc)
            .unwrap()
            .replace("\"@NAN@\"", ".nan")
            .replace("\"@INF@\"", ".inf")
            .replace("\"@NEGINF@\"", "-.inf")
    }

    fn typed(err: &ConfigError) {
        assert!(
            matches!(err, ConfigError::Invalid { .. } | ConfigError::Limit { .. }),
            "{err}"
        );
        assert!(!err.to_string().is_empty());
    }

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn any_text_parses_or_gives_a_config_error(text in "\\PC{0,200}") {
            if let Err(e) = Config::parse(&text, "weft.yaml") {
                typed(&e);
            }
        }

        #[test]
        fn yaml_like_text_parses_or_gives_a_config_error(
            text in "[a-z_ :,\\-\\[\\]{}&*!|>'\"#0-9.\\n]{0,300}"
        ) {
            if let Err(e) = Config::parse(&text, "weft.yaml") {
                typed(&e);
            }
        }

        #[test]
        fn generated_configs_parse_or_fail_typed_and_keep_their_invariants(doc in document()) {
            let text = text_of(&doc);
            match Config::parse(&text, "weft.yaml") {
                Err(e) => typed(&e),
                Ok(config) => {
                    for p in &config.prices {
                        prop_assert!(p.prompt_per_million.is_finite() && p.prompt_per_million >= 0.0, "{text}");
                        prop_assert!(p.completion_per_million.is_finite() && p.completion_per_million >= 0.0, "{text}");
                    }
                    for b in config.budget.project_money.iter().chain(config.budget.projects.values()) {
                        prop_assert!(b.limit.is_finite() && b.limit >= 0.0);
                    }
                    if let Some(r) = &config.store.retention {
                        prop_assert!(!r.max_age.is_zero() && !r.every.is_zero());
                    }
                    let _ = config.public().to_string();
                    let local = config.llm.providers.iter().any(|p| matches!(p, ProviderConfig::Local(_)));
                    if !local {
                        // Builds or names what is wrong; never panics.
                        let _ = config.llm_backend();
                    }
                    // Parsing is deterministic.
                    prop_assert_eq!(Config::parse(&text, "weft.yaml").ok(), Some(config));
                }
            }
        }
    }
}
