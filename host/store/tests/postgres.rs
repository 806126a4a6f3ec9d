//! What only the PostgreSQL store does: refusing a wrong URL, another
//! application's database and a newer schema at open; retrying commits
//! while the server restarts; leases with fencing tokens shared by several
//! hosts (two store handles on one database act as two hosts).

#![allow(clippy::unwrap_used)] // a test's helpers unwrap too: a panic fails the test

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use weft_engine::store::{FrameCommit, Lease, RunStart};
use weft_engine::{RunStatus, Store, StoreError};
use weft_store::{PgOptions, PostgresStore};
use weft_testkit::TempPostgres;

mod support;

async fn open(url: &str) -> Result<PostgresStore, StoreError> {
    PostgresStore::open(url, PgOptions::default()).await
}

fn start(run: &str, at_ms: u64) -> RunStart {
    support::run_start(&format!("{run}-thread"), run, &format!("{run}/in"), at_ms)
}

fn frame(run: &str, frame: u32, fence: Option<u64>) -> Arc<FrameCommit> {
    let thread = format!("{run}-thread");
    Arc::new(FrameCommit {
        fence,
        ..support::bare_frame(&thread, run, frame, RunStatus::Running, Vec::new())
    })
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_or_unreachable_url_is_refused_naming_the_store() {
    let err = open("postgres://weft@127.0.0.1:1/nowhere")
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("cannot connect to the PostgreSQL store postgres://weft@127.0.0.1:1/nowhere"),
        "{text}"
    );
    let err = open("postgres://weft:secret@127.0.0.1:1/x?sslmode=bogus")
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a PostgreSQL URL"), "{err}");
    assert!(!err.contains("secret"), "the password is not shown: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_applications_database_and_a_newer_schema_are_refused() {
    let pg = support::postgres();
    let url = tokio::task::block_in_place(|| pg.create_database("foreign")).unwrap();
    tokio::task::block_in_place(|| pg.psql("foreign", "CREATE TABLE orders (id int)")).unwrap();
    let err = open(&url).await.unwrap_err();
    assert!(matches!(err, StoreError::Incompatible(_)), "{err:?}");
    assert!(
        err.to_string().contains("1 tables of another application"),
        "{err}"
    );
    // Nothing was written into it.
    let tables = tokio::task::block_in_place(|| {
        pg.psql(
            "foreign",
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
        )
    })
    .unwrap();
    assert_eq!(tables, "1");

    let url = tokio::task::block_in_place(|| pg.create_database("newer")).unwrap();
    drop(open(&url).await.expect("a new store"));
    tokio::task::block_in_place(|| {
        pg.psql(
            "newer",
            "UPDATE weft_meta SET value = '999' WHERE key = 'schema_version'",
        )
    })
    .unwrap();
    let err = open(&url).await.unwrap_err();
    assert!(matches!(err, StoreError::Incompatible(_)), "{err:?}");
    assert!(err.to_string().contains("schema version 999"), "{err}");

    let url = tokio::task::block_in_place(|| pg.create_database("owned")).unwrap();
    tokio::task::block_in_place(|| {
        pg.psql(
            "owned",
            "CREATE TABLE weft_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             INSERT INTO weft_meta VALUES ('application', 'someone-else'), ('schema_version', '1')",
        )
    })
    .unwrap();
    let err = open(&url).await.unwrap_err();
    assert!(err.to_string().contains("another application"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commits_retry_while_postgres_restarts_and_nothing_is_lost_or_doubled() {
    let mut pg = tokio::task::block_in_place(TempPostgres::start).unwrap();
    let url = tokio::task::block_in_place(|| pg.create_database("restart")).unwrap();
    let store = Arc::new(open(&url).await.unwrap());
    store.begin_run(start("warm", now_ms())).await.unwrap();
    tokio::task::block_in_place(|| pg.kill()).unwrap();
    // Commits submitted while the server is down wait and retry.
    let mut waiting = Vec::new();
    for n in 0..20 {
        let store = Arc::clone(&store);
        waiting.push(tokio::spawn(async move {
            store.begin_run(start(&format!("r{n}"), now_ms())).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    tokio::task::block_in_place(|| pg.start_again()).unwrap();
    for w in waiting {
        tokio::time::timeout(Duration::from_secs(60), w)
            .await
            .expect("the commit finished")
            .unwrap()
            .expect("acknowledged once the server is back");
    }
    let runs = tokio::task::block_in_place(|| {
        pg.psql("restart", "SELECT count(*), count(DISTINCT id) FROM runs")
    })
    .unwrap();
    assert_eq!(runs, "21|21", "every acknowledged run is stored once");
    let messages =
        tokio::task::block_in_place(|| pg.psql("restart", "SELECT count(*) FROM messages"))
            .unwrap();
    assert_eq!(messages, "21");
}

/// Two hosts on one database: A's lease lapses, B takes the run over with
/// a greater token, and A's commits and renewals are refused as fenced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_lease_token_is_fenced_after_another_host_took_over() {
    let pg = support::postgres();
    let url = tokio::task::block_in_place(|| pg.create_database("fencing")).unwrap();
    let a = open(&url).await.unwrap();
    let b = open(&url).await.unwrap();
    assert!(a.shared());
    a.begin_run(start("run1", now_ms())).await.unwrap();
    let held = a.claim_run("run1", "host-a", 300).await.unwrap();
    // B cannot claim a run whose lease is current.
    let err = b.claim_run("run1", "host-b", 300).await.unwrap_err();
    assert_eq!(err.code(), "fenced", "{err}");
    assert!(b.claim_expired("host-b", 300, 10).await.unwrap().is_empty());
    a.commit_frame(frame("run1", 0, Some(held.token)))
        .await
        .unwrap();
    let held = a.renew_lease(&held, 300).await.unwrap();
    // A stops renewing (paused past its lease).
    tokio::time::sleep(Duration::from_millis(500)).await;
    let taken = b.claim_expired("host-b", 30_000, 10).await.unwrap();
    assert_eq!(taken.len(), 1);
    let (lease, run) = &taken[0];
    assert_eq!(
        (lease.host.as_str(), run.run.as_str(), run.frame),
        ("host-b", "run1", 1)
    );
    assert!(lease.token > held.token);
    // A wakes up: its commit and its renewal are refused, nothing written.
    let err = a
        .commit_frame(frame("run1", 1, Some(held.token)))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Fenced(_)), "{err:?}");
    assert!(err.to_string().contains("host-b"), "{err}");
    let err = a.renew_lease(&held, 300).await.unwrap_err();
    assert_eq!(err.code(), "fenced");
    // A releasing its stale lease leaves B's alone.
    a.release_lease(&held).await.unwrap();
    b.commit_frame(frame("run1", 1, Some(lease.token)))
        .await
        .unwrap();
    let frames =
        tokio::task::block_in_place(|| pg.psql("fencing", "SELECT count(*) FROM frames")).unwrap();
    assert_eq!(frames, "2", "frame 0 by A, frame 1 by B, nothing twice");
    // Released, the run is claimable at once.
    b.release_lease(lease).await.unwrap();
    assert_eq!(
        a.claim_expired("host-a", 30_000, 10).await.unwrap().len(),
        1
    );
}

/// Runs whose leases expired are taken over exactly once, however many
/// hosts look at the same moment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_runs_are_taken_over_exactly_once() {
    let pg = support::postgres();
    let url = tokio::task::block_in_place(|| pg.create_database("takeover")).unwrap();
    let hosts: Vec<Arc<PostgresStore>> = futures_join(&url, 4).await;
    for n in 0..40 {
        let run = format!("run{n}");
        hosts[0].begin_run(start(&run, now_ms())).await.unwrap();
        hosts[0].claim_run(&run, "dead-host", 1).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    let mut tasks = Vec::new();
    for (i, host) in hosts.iter().enumerate() {
        let host = Arc::clone(host);
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            loop {
                let claimed = host
                    .claim_expired(&format!("host-{i}"), 60_000, 3)
                    .await
                    .unwrap();
                if claimed.is_empty() {
                    return mine;
                }
                mine.extend(claimed.into_iter().map(|(l, _): (Lease, _)| l));
            }
        }));
    }
    let mut owners: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for t in tasks {
        for lease in t.await.unwrap() {
            owners.entry(lease.run).or_default().push(lease.host);
        }
    }
    assert_eq!(owners.len(), 40, "every expired run was taken over");
    for (run, hosts) in &owners {
        assert_eq!(hosts.len(), 1, "{run} was taken over by {hosts:?}");
    }
}

async fn futures_join(url: &str, n: usize) -> Vec<Arc<PostgresStore>> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(Arc::new(open(url).await.unwrap()));
    }
    out
}

/// Jobs that reach the writer together share one transaction and one
/// pipeline of statements; one that fails (a frame of no run, a frame out
/// of turn, a frame committed twice, a run started twice) fails alone and
/// writes nothing, and every other job of its batch commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_job_fails_alone_and_the_rest_of_its_batch_commits() {
    let pg = support::postgres();
    let url = tokio::task::block_in_place(|| pg.create_database("batches")).unwrap();
    let store = open(&url).await.unwrap();
    for n in 0..30 {
        store
            .begin_run(start(&format!("run{n}"), now_ms()))
            .await
            .unwrap();
    }
    for round in 0..3u32 {
        // Good frames, with bad jobs among them, all sent at once.
        let mut good = Vec::new();
        for n in 0..30 {
            good.push(store.commit_frame(frame(&format!("run{n}"), round, None)));
        }
        let bad = vec![
            store.commit_frame(frame("nowhere", round, None)),
            store.commit_frame(frame("run3", round + 5, None)),
            store.commit_frame(frame("run7", round, None)),
        ];
        let again = store.begin_run(start("run11", now_ms()));
        let (good, bad, again) = tokio::join!(
            futures_util::future::join_all(good),
            futures_util::future::join_all(bad),
            again
        );
        // run7's frame was sent twice: exactly one of the two commits.
        let twice = [&good[7], &bad[2]];
        let refused: Vec<_> = twice.iter().filter_map(|r| r.as_ref().err()).collect();
        assert_eq!(refused.len(), 1, "{twice:?}");
        assert!(
            refused[0]
                .to_string()
                .contains(&format!("run `run7` is running at frame {}", round + 1)),
            "{refused:?}"
        );
        let failed: Vec<_> = good
            .iter()
            .enumerate()
            .filter(|(n, r)| *n != 7 && r.is_err())
            .collect();
        assert_eq!(failed.len(), 0, "{failed:?}");
        let errors = [
            bad[0].as_ref().unwrap_err(),
            bad[1].as_ref().unwrap_err(),
            refused[0],
        ];
        for err in errors {
            assert_eq!(err.code(), "store_conflict", "{err}");
        }
        assert!(
            bad[0]
                .as_ref()
                .unwrap_err()
                .to_string()
                .contains("no run `nowhere`")
        );
        // Its thread has that run in flight: the start is refused as busy.
        let again = again.unwrap_err();
        assert_eq!(again.code(), "thread_busy", "{again}");
        assert!(again.to_string().contains("run `run11`"), "{again}");
    }
    let count = |sql: &str| {
        tokio::task::block_in_place(|| pg.psql("batches", sql))
            .unwrap()
            .parse::<u64>()
            .unwrap()
    };
    assert_eq!(count("SELECT count(*) FROM frames"), 90);
    assert_eq!(count("SELECT count(*) FROM frames WHERE run = 'run7'"), 3);
    assert_eq!(count("SELECT count(*) FROM runs"), 30);
    assert_eq!(count("SELECT count(*) FROM messages"), 30);
    assert_eq!(count("SELECT min(frames) FROM runs"), 3);
    assert_eq!(count("SELECT max(frames) FROM runs"), 3);

    // Claims and releases go with the batches too: a claim of a run
    // another host holds is fenced alone.
    let held = store.claim_run("run0", "host-a", 60_000).await.unwrap();
    let claims: Vec<_> = (0..10)
        .map(|n| store.claim_run(&format!("run{n}"), "host-b", 60_000))
        .collect();
    let stale = Lease {
        token: held.token + 1000,
        ..held.clone()
    };
    let (claims, released) = tokio::join!(
        futures_util::future::join_all(claims),
        store.release_lease(&stale)
    );
    released.unwrap();
    let err = claims[0].as_ref().unwrap_err();
    assert_eq!(err.code(), "fenced", "{err}");
    let mut tokens: Vec<u64> = claims[1..]
        .iter()
        .map(|c| c.as_ref().unwrap().token)
        .collect();
    tokens.sort_unstable();
    tokens.dedup();
    assert_eq!(tokens.len(), 9, "every claim draws its own token");
    assert_eq!(
        tokio::task::block_in_place(|| {
            pg.psql(
                "batches",
                "SELECT host FROM leases WHERE run = 'run0' AND expires_ms > 0",
            )
        })
        .unwrap(),
        "host-a",
        "a stale token releases nothing"
    );
    store.release_lease(&held).await.unwrap();
    assert_eq!(count("SELECT count(*) FROM leases WHERE expires_ms > 0"), 9);
}

/// Three hosts on one store, each with its own metering and budgets, call
/// the model at once for threads of one project with a money budget: the
/// calls they make together cost no more than the budget (each host alone
/// would let its calls spend the whole of it), every warning threshold is
/// reported once across the hosts, and no hold is left behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_money_budget_hammered_from_three_hosts_is_never_overrun() {
    use weft_engine::metering::{Ledger, Metered, SharedMoney};
    use weft_engine::{
        BudgetConfig, Budgets, Bus, EventBody, MemoryLedger, MoneyBudget, Price, PriceTable, Window,
    };
    use weft_runtime::capabilities::llm::{LlmBackend, LlmCall, NoDeltas, ScriptRule, Scripted};
    use weft_runtime::{CallContext, CapabilityError, ChatMessage, CompletionRequest, Role};

    let pg = support::postgres();
    let url = tokio::task::block_in_place(|| pg.create_database("money_hosts")).unwrap();
    // Each call reserves (17 + 2 * 10) / 1e6 and costs (5 + 2 * 10) / 1e6:
    // 30 calls per host would cost 0.00075 per host, 0.00225 together.
    const LIMIT: f64 = 0.0006;
    let mut hosts = Vec::new();
    for (n, store) in futures_join(&url, 3).await.into_iter().enumerate() {
        let ledger = Arc::new(MemoryLedger::default());
        let bus = Bus::new(4096);
        let budgets = Budgets::new(BudgetConfig {
            thread_tokens: None,
            project_money: Some(MoneyBudget::new(LIMIT, Window::Daily).unwrap()),
            ..BudgetConfig::default()
        })
        .with_ledger(ledger.clone());
        let metered = Arc::new(Metered {
            inner: Arc::new(Scripted::from_rules([ScriptRule::answer(
                ["x"; 10].join(" "),
            )
            .repeat()
            .delay(Duration::from_millis(20))])),
            budgets: Arc::new(budgets),
            ledger: ledger.clone(),
            prices: PriceTable {
                entries: vec![Price {
                    prefix: "scripted".into(),
                    prompt_per_million: 1.0,
                    completion_per_million: 2.0,
                }],
            },
            bus: bus.clone(),
            shared: Some(SharedMoney {
                store: store.clone(),
                host: format!("host-{n}"),
                live_ms: 30_000,
            }),
        });
        hosts.push((metered, ledger, bus.subscribe()));
    }
    async fn ask(
        metered: Arc<Metered>,
        thread: String,
    ) -> Result<weft_runtime::Completion, CapabilityError> {
        metered.budgets.assign_project(&thread, "acme");
        let ctx = CallContext {
            thread,
            run: "r".into(),
            frame: 0,
            node: "pa".into(),
            project: "acme".into(),
        };
        let call = LlmCall {
            ctx: &ctx,
            model: Some("scripted-small"),
            deltas: &NoDeltas,
        };
        let request = CompletionRequest {
            messages: vec![ChatMessage {
                role: Role::User,
                content: ["w"; 5].join(" "),
            }],
            max_tokens: 10,
            json_schema: None,
            stream: false,
        };
        metered.complete(call, request).await
    }
    // Spawned host after host (not all of one host's calls first), so
    // that every host's first calls are among the first to run.
    let hosts_ref = &hosts;
    let calls = (0..30).flat_map(|t| {
        hosts_ref
            .iter()
            .enumerate()
            .map(move |(h, (metered, _, _))| {
                tokio::spawn(ask(metered.clone(), format!("h{h}-t{t}")))
            })
    });
    let results: Vec<_> = futures_util::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    let ok = results.iter().filter(|r| r.is_ok()).count();
    let refused = results
        .iter()
        .filter(|r| matches!(r, Err(CapabilityError::BudgetExhausted(m)) if m.contains("project `acme`")))
        .count();
    assert_eq!(ok + refused, 90, "{results:?}");
    assert!(ok > 0 && refused > 0, "ok {ok}, refused {refused}");
    // Then one call at a time, host after host, until every host refuses:
    // the spend ends within one call's worst case of the limit.
    let (mut t, mut refusals) = (0, 0);
    while refusals < 3 {
        let metered = hosts[t % 3].0.clone();
        match ask(metered, format!("seq-{t}")).await {
            Ok(_) => refusals = 0,
            Err(_) => refusals += 1,
        }
        t += 1;
        assert!(t < 200, "the hosts never all refused");
    }

    // What the three hosts' ledgers priced, together, is within the limit.
    let spent: f64 = hosts
        .iter()
        .map(|(_, ledger, _)| {
            ledger
                .breakdown()
                .by_project
                .get("acme")
                .map_or(0.0, |p| p.cost)
        })
        .sum();
    assert!(spent <= LIMIT + 1e-12, "spent {spent} of {LIMIT}");
    assert!(
        spent > LIMIT - 37e-6 - 1e-12,
        "spent only {spent} of {LIMIT}"
    );
    // More than one host's worth was answered by no single host: every
    // host answered some.
    for (metered, ledger, _) in &hosts {
        let answered = ledger.events().iter().filter(|e| e.outcome == "ok").count();
        assert!(answered > 0, "a host answered nothing");
        assert!(metered.budgets.project_status("acme").reserved == 0.0);
    }
    // The store's window holds the same spend, and no hold is left.
    let rows = tokio::task::block_in_place(|| {
        pg.psql(
            "money_hosts",
            "SELECT spent, (SELECT count(*) FROM money_holds) FROM money_windows WHERE project = 'acme'",
        )
    })
    .unwrap();
    let (stored, holds) = rows.trim().split_once('|').unwrap();
    let stored: f64 = stored.parse::<f64>().unwrap() / 1e9;
    assert!(
        (stored - spent).abs() < 1e-9,
        "store {stored}, ledgers {spent}"
    );
    assert_eq!(holds, "0");
    // Each threshold the spend reached was reported once, by one host.
    let reached: Vec<u64> = [75, 90, 95]
        .into_iter()
        .filter(|t| stored * 100.0 >= LIMIT * *t as f64 - 1e-12)
        .collect();
    assert!(reached.starts_with(&[75, 90]), "spent {stored} of {LIMIT}");
    let mut warned = Vec::new();
    for (_, _, events) in &mut hosts {
        while let Ok(e) = events.try_recv() {
            if let EventBody::BudgetWarning(w) = &e.body {
                warned.push(w["percent"].as_u64().unwrap());
            }
        }
    }
    warned.sort_unstable();
    assert_eq!(warned, reached);
}
