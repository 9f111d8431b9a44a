//! Micro-benchmarks of the pieces added around every plugin call and every cache lookup.
//! `cargo bench -p chronicle --bench hot` (numbers in BENCHMARKS.md).

use std::hint::black_box;

use chronicle::cache::{self, Cache};
use chronicle_plugin_api::Outcome;
use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;

const KEY: &[&str] = &["/tool_input/command", "/cwd"];

fn subject(key: &[String]) -> cache::Subject<'_> {
    cache::Subject { name: "bash-guard", version: "0.1.0", key, file: "/p/libchronicle_bash_guard.so\x00123:4567:890", config: "null" }
}

fn benches(c: &mut Criterion) {
    let output = chronicle::output::Output::divert().ok();
    let probe = output.as_ref().and_then(|o| o.probe());
    c.bench_function("instrumentation/per_call_overhead", |b| b.iter(|| black_box(chronicle::dispatch::instrumentation_sample(probe))));

    let event = json!({"hook_event_name": "PreToolUse", "cwd": "/home/dev/p", "tool_name": "Bash", "tool_use_id": "t1", "tool_input": {"command": "python -m pytest -q"}});
    let key_parts: Vec<String> = KEY.iter().map(|k| (*k).to_owned()).collect();
    c.bench_function("cache/key", |b| {
        b.iter(|| black_box(cache::key_for(&subject(&key_parts), &event, |p| event.pointer(p).map(serde_json::Value::to_string))))
    });

    let l1 = Cache::new();
    let key = cache::key_for(&subject(&key_parts), &event, |p| event.pointer(p).map(serde_json::Value::to_string));
    l1.put(key.clone(), Outcome::deny("no"), i64::MAX);
    c.bench_function("cache/l1_hit", |b| b.iter(|| black_box(l1.get(&key, 1))));
    c.bench_function("cache/l1_miss", |b| b.iter(|| black_box(l1.get("absent", 1))));

    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let mut store = chronicle::store::Store::open(&dir.path().join("b.db")).unwrap_or_else(|e| panic!("{e}"));
    let rec = chronicle::store::EventRecord {
        kind: "event".into(),
        received_at_ns: 1,
        payload: "{}".into(),
        decision: "none".into(),
        cache_puts: vec![chronicle::store::CachePut {
            key: key.clone(),
            plugin: "bash-guard".into(),
            value: cache::encode(&Outcome::deny("no")),
            expires_at_ns: i64::MAX,
        }],
        ..Default::default()
    };
    store.record(&rec).unwrap_or_else(|e| panic!("{e}"));
    c.bench_function("cache/l2_hit", |b| {
        b.iter(|| black_box(store.cache_get(&key, 1).ok().flatten().and_then(|(t, _)| cache::decode(&t))))
    });
    if let Some(o) = output {
        o.restore();
    }

    // The bundled session's largest event (a 482 KB PostToolUse Write): its search for
    // credential trigger words is the vectorised one (`chronicle_secrets::LONG_TEXT`).
    let big = include_str!("../../tests/corpus/session.jsonl").lines().max_by_key(|l| l.len()).unwrap_or_default();
    c.bench_function("redact/482KB_write", |b| b.iter(|| black_box(chronicle_secrets::redact(big))));
}

criterion_group!(hot, benches);
criterion_main!(hot);
