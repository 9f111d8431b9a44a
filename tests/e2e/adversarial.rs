//! Every hostile input in the adversarial corpus, checked against its `expect` block.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use chronicle_e2e::{corpus_dir, corpus_lines, Env};
use serde_json::Value;

/// Debug builds on a shared 2-core machine are slow: the budget check here is a hang detector
/// (a host that waits for EOF forever, or for a plugin forever), not a performance target.
const BUDGET_SLACK: u32 = 5;

fn bytes_of(case: &Value, materialized: &std::path::Path) -> Vec<u8> {
    match case["stdin_b64"].as_str() {
        Some(b64) => base64::engine::general_purpose::STANDARD.decode(b64).expect("base64"),
        None => std::fs::read(materialized.join(format!("{}.bin", case["name"].as_str().unwrap()))).expect("materialized case"),
    }
}

fn materialize() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("python3")
        .arg(corpus_dir().join("make_adversarial.py"))
        .arg("--materialize")
        .arg(dir.path())
        .stdout(std::process::Stdio::null())
        .status()
        .expect("python3 runs make_adversarial.py");
    assert!(status.success());
    let p = dir.path().to_path_buf();
    (dir, p)
}

pub fn cases() -> Vec<Value> {
    corpus_lines("adversarial.jsonl").iter().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// How a case reaches the host.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Path {
    /// The first event of an installation: handled in the hook's own process.
    InProcess,
    /// Handed to a resident host that is already listening.
    Resident,
}

/// Runs every case through a host with `plugins`, checking exit, stdout, record and budget.
/// Returns (case, run) pairs for further checks.
pub fn run_all(plugins: &[&str], path: Path) -> Vec<(Value, chronicle_e2e::Run)> {
    let (_keep, dir) = materialize();
    let mut out = Vec::new();
    for case in cases() {
        let mut env = Env::with_plugins(plugins);
        if path == Path::Resident {
            env.start_resident();
        }
        let name = case["name"].as_str().unwrap().to_owned();
        let expect = &case["expect"];
        let input = bytes_of(&case, &dir);
        let hold = case["harness"]["hold_stdin_open_ms"].as_u64().map(Duration::from_millis).unwrap_or_default();
        let run = env.hook_holding_stdin(&input, hold);

        let allowed: Vec<i64> = expect["exit"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
        assert!(allowed.contains(&i64::from(run.code)), "{name}: exit {} not in {allowed:?}; stderr {}", run.code, run.stderr);

        let stdout = run.stdout.trim();
        match expect["stdout"].as_str().unwrap() {
            "empty" => assert!(stdout.is_empty(), "{name}: stdout must be empty, got {stdout:?}"),
            "json_object" => assert!(serde_json::from_str::<Value>(stdout).is_ok_and(|v| v.is_object()), "{name}: {stdout:?}"),
            "empty_or_json_object" => assert!(
                stdout.is_empty() || serde_json::from_str::<Value>(stdout).is_ok_and(|v| v.is_object()),
                "{name}: stdout {stdout:?}"
            ),
            other => panic!("unknown stdout expectation {other}"),
        }
        if run.code != 0 && run.code != 2 {
            assert!(!run.stderr.trim().is_empty(), "{name}: a failing exit needs a reason on stderr");
            assert!(run.stderr.trim().lines().count() <= 2, "{name}: the reason should be one line: {}", run.stderr);
        }

        let budget = Duration::from_millis(expect["max_ms"].as_u64().unwrap()) * BUDGET_SLACK;
        assert!(run.elapsed < budget.max(Duration::from_secs(2)), "{name}: took {:?}, budget {budget:?}", run.elapsed);

        let events = env.events();
        assert_eq!(events.len(), 1, "{name}: exactly one record, got {}", events.len());
        let rec = &events[0];
        let options: Vec<&str> = expect["record"].as_str().unwrap().split('|').collect();
        let ok = options.iter().any(|want| match *want {
            "event" => rec["kind"] == "event",
            "event_unknown_type" => rec["kind"] == "event_unknown_type",
            "parse_error" => rec["kind"] == "parse_error",
            "event_redacted" => rec["kind"] == "event" && rec["redacted"] == true,
            "event_truncated" => rec["truncated"] == true && rec["kind"] != "parse_error",
            other => panic!("unknown record expectation {other}"),
        });
        assert!(
            ok,
            "{name}: record {} (kind {}, redacted {}, truncated {}) is not {options:?}",
            rec["id"], rec["kind"], rec["redacted"], rec["truncated"]
        );
        assert_eq!(env.resident_flags(), vec![path == Path::Resident], "{name}: handled on the {path:?} path");
        out.push((case, run));
    }
    out
}

#[test]
fn every_adversarial_case_meets_its_expectations_without_plugins() {
    run_all(&[], Path::InProcess);
    run_all(&[], Path::Resident);
}

#[test]
fn every_adversarial_case_meets_its_expectations_with_a_noisy_plugin_on_every_event() {
    // fixture-stdout subscribes to everything, prints to stdout and has no opinion: the
    // expectations (written for recording plus guards) must hold unchanged.
    run_all(&["fixture_stdout"], Path::InProcess);
    run_all(&["fixture_stdout"], Path::Resident);
}

#[test]
fn secrets_never_reach_the_store() {
    let env = Env::new();
    for case in cases().iter().filter(|c| c["category"] == "secrets") {
        let bytes = base64::engine::general_purpose::STANDARD.decode(case["stdin_b64"].as_str().unwrap()).unwrap();
        env.hook(&bytes);
    }
    let dump = env.query("SELECT payload FROM events").into_iter().flatten().collect::<Vec<_>>().join("\n");
    for secret in [
        "AKIAIOSFODNN7EXAMPLE",
        "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        "ghp_EXAMPLE0EXAMPLE0",
        "hunter2-NOT-REAL",
        "sk_test_EXAMPLE",
        "EXAMPLEONLY",
    ] {
        assert!(!dump.contains(secret), "{secret} was stored");
    }
    assert!(dump.contains("[REDACTED:"));
    // The session id (a UUID) and the structure survive.
    assert!(dump.contains("6f1c2a9e-3b7d-4c5e-9a21-0d8e4b7c1f33"));
}

pub const BUILTINS: &[&str] = &["chronicle_bash_guard", "chronicle_file_guard", "chronicle_secret_guard", "chronicle_session_context"];

#[test]
fn with_the_built_in_plugins_every_case_gets_its_expected_decision() {
    let mut checked = 0;
    let runs = run_all(BUILTINS, Path::InProcess).into_iter().chain(run_all(BUILTINS, Path::Resident));
    for (case, run) in runs {
        let Some(want) = case["expect"]["decision"].as_str() else { continue };
        let name = case["name"].as_str().unwrap();
        let got = if run.stdout.trim().is_empty() {
            "none".to_owned()
        } else {
            let v = run.json();
            v["hookSpecificOutput"]["permissionDecision"].as_str().or(v["decision"].as_str()).unwrap_or("none").to_owned()
        };
        assert_eq!(got, want, "{name}: {}", run.stdout);
        checked += 1;
    }
    assert_eq!(checked, 12, "cases carrying decisions, on both paths");
}
