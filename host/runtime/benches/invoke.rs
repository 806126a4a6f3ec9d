//! Instantiation and tick round-trip costs.
//!
//! Needs the test guests: `cargo xtask build-plugins` first.

use std::path::PathBuf;

use criterion::{Criterion, criterion_group, criterion_main};
use weft_runtime::{
    CallContext, Grants, Invocation, Message, Plugin, Runtime, RuntimeConfig, Services,
};

fn artifact(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(format!("../../artifacts/guests/{name}.wasm"));
    assert!(
        path.exists(),
        "missing {}: run `cargo xtask build-plugins`",
        path.display()
    );
    path
}

fn setup(config: RuntimeConfig, tokio: &tokio::runtime::Runtime) -> (Runtime, Plugin) {
    let rt = Runtime::new(config).expect("runtime");
    let plugin = tokio
        .block_on(rt.load_file(artifact("guest-echo")))
        .expect("load guest-echo");
    (rt, plugin)
}

fn invocation<'a>(inbox: &'a [Message], services: &'a Services) -> Invocation<'a> {
    Invocation {
        call: CallContext {
            thread: "bench".into(),
            run: "r".into(),
            frame: 0,
            node: "echo".into(),
            project: "default".into(),
        },
        inbox,
        config: "{}",
        model: None,
        grants: Grants::all(),
        tools: &weft_runtime::capabilities::tools::NO_TOOLS,
        services,
        limits: None,
        wall_time: None,
        reuse: None,
    }
}

fn benches(c: &mut Criterion) {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("tokio");
    let services = Services::unavailable();

    let (pooled, plugin) = setup(RuntimeConfig::default(), &tokio);
    let (on_demand, plugin_od) = setup(
        RuntimeConfig {
            pool: None,
            ..RuntimeConfig::default()
        },
        &tokio,
    );

    let mut g = c.benchmark_group("instantiate");
    g.bench_function("pooling+InstancePre", |b| {
        b.to_async(&tokio)
            .iter(|| pooled.bench_instantiate(&plugin))
    });
    g.bench_function("on-demand+InstancePre", |b| {
        b.to_async(&tokio)
            .iter(|| on_demand.bench_instantiate(&plugin_od))
    });
    g.finish();

    let mut g = c.benchmark_group("tick");
    g.bench_function("noop round trip", |b| {
        b.to_async(&tokio).iter(|| async {
            let out = pooled.invoke(&plugin, invocation(&[], &services)).await;
            assert!(out.result.is_ok());
        })
    });
    let body = format!("{{\"text\":\"{}\"}}", "x".repeat(89));
    let inbox = [Message {
        id: "m1".into(),
        from: "user".into(),
        kind: "user".into(),
        body,
    }];
    g.bench_function("100-byte message round trip", |b| {
        b.to_async(&tokio).iter(|| async {
            let out = pooled.invoke(&plugin, invocation(&inbox, &services)).await;
            assert!(out.result.is_ok());
        })
    });
    g.finish();
}

criterion_group!(invoke, benches);
criterion_main!(invoke);
