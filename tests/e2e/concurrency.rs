//! Claude Code runs hooks in parallel (and inside subagents): no event may be lost.

use chronicle_e2e::{event, Env};
use serde_json::json;

#[test]
fn sixteen_concurrent_writers_times_a_hundred_events_store_exactly_1600() {
    let env = Env::with_plugins(&["fixture_echo"]);
    // Create the database first through one event, then race: also covers concurrent creation
    // in `fresh_database_created_by_many_processes_at_once`.
    let workers: Vec<_> = (0..16)
        .map(|w| {
            let home = env.home().to_path_buf();
            std::thread::spawn(move || {
                let env = EnvRef(home);
                for i in 0..100 {
                    let payload = event("PostToolUse", json!({"tool_name": "Bash", "tool_use_id": format!("w{w}-{i}"), "tool_input": {"command": "ls"}, "tool_response": {"stdout": "x"}}));
                    let run = env.hook(&payload);
                    assert_eq!(run.0, 0, "worker {w} event {i}: {}", run.1);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    assert!(!env.home().join("spool.jsonl").exists(), "no event may fall back to the spool");
    assert_eq!(env.count("SELECT count(*) FROM events"), 1600);
    assert_eq!(env.count("SELECT count(DISTINCT tool_use_id) FROM events"), 1600);
    assert_eq!(env.count("SELECT count(*) FROM faults WHERE source = 'input'"), 0);
    assert_eq!(env.query("PRAGMA integrity_check")[0][0], "ok");
}

#[test]
fn fresh_database_created_by_many_processes_at_once() {
    let env = Env::new();
    let workers: Vec<_> = (0..12)
        .map(|w| {
            let home = env.home().to_path_buf();
            std::thread::spawn(move || EnvRef(home).hook(&event("Notification", json!({"message": format!("n{w}")}))))
        })
        .collect();
    let mut stderrs = Vec::new();
    for w in workers {
        let (code, stderr) = w.join().unwrap();
        assert_eq!(code, 0, "{stderr}");
        stderrs.push(stderr);
    }
    let spool = std::fs::read_to_string(env.home().join("spool.jsonl")).unwrap_or_default();
    assert!(spool.is_empty(), "an event fell back to the spool: {spool}\n{stderrs:?}");
    assert_eq!(env.count("SELECT count(*) FROM events"), 12, "{stderrs:?}");
    assert_eq!(env.query("PRAGMA integrity_check")[0][0], "ok");
    // Twelve clients each made a copy (and some of their children one more): one was linked,
    // every other copy is gone.
    let half_made: Vec<String> = std::fs::read_dir(env.home())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".chronicle.db.new-"))
        .collect();
    assert!(half_made.is_empty(), "copies left beside the database: {half_made:?}");
}

/// A minimal runner usable from threads (the `Env` owns a TempDir and is not shared).
struct EnvRef(std::path::PathBuf);

impl EnvRef {
    fn hook(&self, stdin: &[u8]) -> (i32, String) {
        use std::io::Write;
        let mut child = std::process::Command::new(chronicle_e2e::chronicle_bin())
            .arg("hook")
            .env("CHRONICLE_HOME", &self.0)
            .env_remove("CHRONICLE_DB")
            .env_remove("CHRONICLE_PLUGIN_PATH")
            .env_remove("CHRONICLE_CONFIG")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(stdin).unwrap();
        let out = child.wait_with_output().unwrap();
        (out.status.code().unwrap_or(-1), String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The worker threads (`chronicle-srv-N`) of the resident hosts serving `env`.
fn workers_of(env: &Env) -> Vec<String> {
    let home = format!("CHRONICLE_HOME={}", env.home().display());
    let hosts = std::fs::read_dir("/proc").into_iter().flatten().flatten().filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok());
    let ours = hosts.filter(|pid| {
        let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap_or_default();
        cmdline.split(|b| *b == 0).any(|a| a == b"serve") && environ.split(|b| *b == 0).any(|v| v == home.as_bytes())
    });
    ours.flat_map(threads_of).filter(|c| c.starts_with("chronicle-srv")).collect()
}

/// The names of process `pid`'s threads (`comm`: at most 15 bytes).
fn threads_of(pid: u32) -> Vec<String> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).into_iter().flatten().flatten();
    tasks.filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok()).collect()
}

/// How many descriptors process `pid` has open on the database file itself (one per SQLite
/// connection).
fn database_descriptors(env: &Env, pid: u32) -> usize {
    // The directory, not the file: the host may not have made the database yet.
    let path = env.db();
    let db = path.parent().unwrap().canonicalize().unwrap().join(path.file_name().unwrap());
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).into_iter().flatten().flatten();
    fds.filter(|fd| std::fs::read_link(fd.path()).is_ok_and(|target| target == db)).count()
}

/// Clients that queue up behind a busy host get a worker (another serving thread on the same
/// socket, sharing the host's database connection), every event is still recorded once, and
/// the worker leaves when the traffic does.
#[test]
fn queued_clients_get_a_worker_and_each_event_is_recorded_once() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores < 2 {
        eprintln!("SKIP: one core, so a host starts no workers");
        return;
    }
    let mut env = Env::with_plugins(&["chronicle_bash_guard", "fixture_busy"]);
    env.set_env("CHRONICLE_RESIDENT_IDLE_S", "3");
    let pid = env.start_resident();
    assert!(workers_of(&env).is_empty(), "no worker before any traffic");
    // As it starts, the host opens its store on a thread of its own, then its background
    // checkpointer opens a second connection and only then starts its thread: wait for that
    // thread, or the count below can catch the host between its two connections.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !threads_of(pid).iter().any(|t| t.starts_with("chronicle-check")) {
        assert!(std::time::Instant::now() < deadline, "the host never started its checkpointer");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let connections = database_descriptors(&env, pid);
    assert_eq!(connections, 2, "the host's store and its checkpointer each have one connection");
    let seen = std::sync::atomic::AtomicUsize::new(0);
    let most_connections = std::sync::atomic::AtomicUsize::new(0);
    let done = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                seen.fetch_max(workers_of(&env).len(), std::sync::atomic::Ordering::Relaxed);
                most_connections.fetch_max(database_descriptors(&env, pid), std::sync::atomic::Ordering::Relaxed);
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        });
        let clients: Vec<_> = (0..6)
            .map(|c| {
                let env = &env;
                s.spawn(move || {
                    for i in 0..20 {
                        let run = env
                            .hook(&event("PreToolUse", json!({"tool_name": "Bash", "tool_input": {"command": format!("echo {c}-{i}")}})));
                        assert_eq!(run.code, 0, "{}", run.stderr);
                    }
                })
            })
            .collect();
        for c in clients {
            c.join().unwrap();
        }
        done.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    assert!(seen.load(std::sync::atomic::Ordering::Relaxed) >= 1, "six clients at once started no worker thread");
    assert_eq!(most_connections.into_inner(), connections, "a worker opened a database connection of its own");
    assert_eq!(env.count("SELECT count(*) FROM events"), 120);
    assert_eq!(env.count("SELECT count(DISTINCT invocation_id) FROM events"), 120);
    assert_eq!(env.count("SELECT count(*) FROM events WHERE payload NOT LIKE '%echo %'"), 0);
    // The workers leave with the traffic (idle 3 s here; they check every 2 s).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !workers_of(&env).is_empty() {
        assert!(std::time::Instant::now() < deadline, "a worker outlived its idle limit");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

/// A plugin is called by two serving threads at once only if its manifest says it may
/// (`concurrent_calls`); otherwise the threads take turns on it (and say so: `hook.turn`).
/// Six clients send events to a plugin that sleeps 20 ms in each call and notes how many of its
/// calls it saw running at once.
#[test]
fn a_plugin_sees_calls_at_once_only_when_its_manifest_allows_them() {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if cores < 2 {
        eprintln!("SKIP: one core, so a host starts no worker threads");
        return;
    }
    let run = |concurrent: bool| {
        let mut env = Env::with_plugins(&["fixture_busy"]);
        std::fs::write(env.home().join("config.toml"), "[plugins.fixture-busy]\nsleep_us = 20000\ncount_overlap = true\n").unwrap();
        if concurrent {
            env.set_env("CHRONICLE_FIXTURE_CONCURRENT", "1");
        }
        env.start_resident();
        std::thread::scope(|s| {
            for c in 0..6 {
                let env = &env;
                s.spawn(move || {
                    for i in 0..8 {
                        let run = env
                            .hook(&event("PreToolUse", json!({"tool_name": "Bash", "tool_input": {"command": format!("echo {c}-{i}")}})));
                        assert_eq!((run.code, run.stdout.trim()), (0, ""), "{}", run.stderr);
                    }
                });
            }
        });
        assert_eq!(env.count("SELECT count(*) FROM events"), 48);
        assert_eq!(env.count("SELECT count(DISTINCT invocation_id) FROM events"), 48);
        assert_eq!(env.count("SELECT count(*) FROM plugin_calls WHERE plugin = 'fixture-busy' AND status = 'ok'"), 48);
        assert_eq!(env.count("SELECT count(*) FROM faults"), 0, "{:?}", env.query("SELECT source, message FROM faults"));
        let seen = std::fs::read_dir(env.home().join("plugin-data/fixture-busy"))
            .unwrap()
            .filter_map(|e| e.unwrap().file_name().to_str()?.strip_prefix("at_once_")?.parse::<u32>().ok())
            .max()
            .unwrap();
        let turns = env.count("SELECT count(*) FROM metrics WHERE name = 'hook.turn'");
        (seen, turns)
    };
    let (at_once, turns) = run(false);
    assert_eq!(at_once, 1, "two threads were inside a plugin whose manifest does not allow it");
    assert!(turns >= 1, "no event ever waited for another's call: the host served nothing at once");
    let (at_once, turns) = run(true);
    assert!(at_once >= 2, "a plugin that allows concurrent calls never got two at once");
    assert_eq!(turns, 0, "threads took turns on a plugin that allows concurrent calls");
}

/// Clients that were already waiting when the host finished an event are recorded with it in
/// one transaction (group commit), and each still gets its own answer and exactly one row.
#[test]
fn events_that_arrive_together_are_committed_together_and_each_answered_alone() {
    let mut env = Env::with_plugins(&["chronicle_bash_guard"]);
    let pid = env.start_resident() as i32;
    let warm = event("PreToolUse", json!({"tool_name": "Bash", "tool_input": {"command": "echo warm"}}));
    assert_eq!(env.hook(&warm).code, 0);
    // Stopped, the host leaves the clients queued at its socket; resumed, it finds them all.
    // SAFETY: signalling this test's own resident host.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let clients: Vec<_> = (0..6)
        .map(|i| {
            let command = if i % 2 == 0 { format!("rm -rf / # {i}") } else { format!("echo together {i}") };
            env.start_hook(&event("PreToolUse", json!({"tool_name": "Bash", "tool_input": {"command": command}})))
        })
        .collect();
    // All six queued before the host runs again.
    for client in &clients {
        client.wait_until_awaiting_answer(std::time::Duration::from_secs(30));
    }
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    let answers: Vec<(usize, i32, String)> = clients
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let run = c.wait();
            (i, run.code, run.stdout)
        })
        .collect();
    for (i, code, stdout) in &answers {
        if i % 2 == 0 {
            assert!(stdout.contains("\"deny\""), "client {i} ({code}) got {stdout:?}");
        } else {
            assert!(*code == 0 && stdout.trim().is_empty(), "client {i} ({code}) got {stdout:?}");
        }
    }
    assert_eq!(env.count("SELECT count(*) FROM events"), 7);
    assert_eq!(env.count("SELECT count(DISTINCT invocation_id) FROM events"), 7);
    assert_eq!(env.count("SELECT count(*) FROM events WHERE decision = 'deny'"), 3);
    // Not answered by children of the clients: the host itself recorded them, in groups.
    assert_eq!(env.count("SELECT count(*) FROM faults WHERE source = 'resident'"), 0);
    let grouped = env.count("SELECT count(*) FROM metrics WHERE name = 'store.group' AND value >= 2");
    assert!(grouped >= 2, "no two of six queued events shared a commit ({grouped} grouped)");
}

/// Serving events at once (workers) must not change a single answer: the bundled session
/// replayed by six clients at once gets, event for event, the exit code and stdout that one
/// client replaying it in order gets, and each is recorded once.
#[test]
fn the_concurrent_replay_decides_exactly_as_the_sequential_one() {
    let plugins = ["chronicle_bash_guard", "chronicle_secret_guard", "chronicle_file_guard", "chronicle_session_context", "fixture_busy"];
    // The session, then every row of the guards' decision table as an event (denials, asks and
    // allows among ordinary traffic), twice: each event distinct, the cache still sees repeats.
    let mut lines = chronicle_e2e::corpus_lines("session.jsonl");
    for row in chronicle_e2e::corpus_lines("guards.jsonl") {
        let row: serde_json::Value = serde_json::from_str(&row).unwrap();
        let e = match row["prompt"].as_str() {
            Some(p) => event("UserPromptSubmit", json!({"prompt": p})),
            None => event("PreToolUse", json!({"tool_name": row["tool"], "tool_input": row["input"], "tool_use_id": "t"})),
        };
        lines.push(String::from_utf8(e).unwrap());
    }
    let events: Vec<String> = (0..2)
        .flat_map(|pass| {
            lines.iter().map(move |l| {
                let mut e: serde_json::Value = serde_json::from_str(l).unwrap();
                e["replay"] = json!(pass);
                e.to_string()
            })
        })
        .collect();
    let answer = |env: &Env, e: &str| {
        let run = env.hook(e.as_bytes());
        (run.code, run.stdout)
    };
    let sequential_env = Env::with_plugins(&plugins);
    let sequential: Vec<(i32, String)> = events.iter().map(|e| answer(&sequential_env, e)).collect();

    let concurrent_env = Env::with_plugins(&plugins);
    let clients = 6;
    let seen_workers = std::sync::atomic::AtomicUsize::new(0);
    let done = std::sync::atomic::AtomicBool::new(false);
    let mut concurrent: Vec<(usize, (i32, String))> = std::thread::scope(|s| {
        s.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                seen_workers.fetch_max(workers_of(&concurrent_env).len(), std::sync::atomic::Ordering::Relaxed);
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        });
        let handles: Vec<_> = (0..clients)
            .map(|c| {
                let (env, events) = (&concurrent_env, &events);
                s.spawn(move || (c..events.len()).step_by(clients).map(|i| (i, answer(env, &events[i]))).collect::<Vec<_>>())
            })
            .collect();
        let all = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        all
    });
    concurrent.sort_by_key(|(i, _)| *i);
    assert_eq!(concurrent.len(), events.len());
    for ((i, got), want) in concurrent.iter().zip(&sequential) {
        assert_eq!(got, want, "event {i} answered differently at once than in order: {}", events[*i]);
    }
    // The session holds real decisions (a test of identical silences could not fail).
    let decided = sequential.iter().filter(|(code, out)| *code == 2 || out.contains("permissionDecision")).count();
    assert!(decided >= 150, "{decided} decisions in the replay");
    for env in [&sequential_env, &concurrent_env] {
        assert_eq!(env.count("SELECT count(*) FROM events") as usize, events.len());
        assert_eq!(env.count("SELECT count(DISTINCT invocation_id) FROM events") as usize, events.len());
    }
    eprintln!("{decided} decisions; up to {} workers served at once", seen_workers.load(std::sync::atomic::Ordering::Relaxed));
}
