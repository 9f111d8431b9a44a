//! Team sync to a real PostgreSQL server: `chronicle sync`, the schema it keeps, what it does
//! when killed or refused, and the team views (`--source`).

use std::time::Duration;

use chronicle_e2e::postgres::{Cluster, PASSWORD};
use chronicle_e2e::{bash_event, corpus_lines, Env};
use serde_json::Value;

/// An installation with the bundled session recorded, under machine name `machine`.
fn recorded(machine: &str) -> Env {
    let mut env = Env::with_plugins(&["chronicle_bash_guard", "chronicle_secret_guard"]);
    env.set_env("CHRONICLE_MACHINE", machine);
    env.set_env("CHRONICLE_RESIDENT", "0");
    for line in corpus_lines("session.jsonl") {
        assert_eq!(env.hook(line.as_bytes()).code, 0);
    }
    env
}

/// Copies the recorded rows `times` more times (fresh ids, children following their events),
/// for a backlog bigger than one batch without running thousands of hooks.
fn amplify(env: &Env, times: usize) {
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    let n: i64 = conn.query_row("SELECT max(id) FROM events", [], |r| r.get(0)).unwrap();
    for i in 1..=times as i64 {
        let off = i * n;
        conn.execute_batch(&format!(
            "BEGIN;
             INSERT INTO events (id, kind, hook_event_name, session_id, tool_name, tool_use_id, agent_id, received_at_ns, payload,
                                 payload_bytes, redacted, truncated, error, decision, exit_code, answer)
               SELECT id + {off}, kind, hook_event_name, session_id, tool_name, tool_use_id, agent_id, received_at_ns + {off},
                      payload, payload_bytes, redacted, truncated, error, decision, exit_code, answer FROM events WHERE id <= {n};
             INSERT INTO plugin_calls (event_id, plugin, version, path, status, decision, fault, wall_ns, cpu_ns, allocations,
                                       bytes_allocated, peak_live_bytes, memory_source, stdout_bytes, cache)
               SELECT event_id + {off}, plugin, version, path, status, decision, fault, wall_ns, cpu_ns, allocations,
                      bytes_allocated, peak_live_bytes, memory_source, stdout_bytes, cache FROM plugin_calls WHERE event_id <= {n};
             INSERT INTO metrics (event_id, name, value) SELECT event_id + {off}, name, value FROM metrics WHERE event_id <= {n};
             INSERT INTO violations (event_id, metric, subject, value, threshold)
               SELECT event_id + {off}, metric, subject, value, threshold FROM violations WHERE event_id <= {n};
             COMMIT;"
        ))
        .unwrap();
    }
}

fn local_count(env: &Env, table: &str) -> i64 {
    env.count(&format!("SELECT count(*) FROM {table}"))
}

fn team_count(pg: &Cluster, table: &str, machine: &str) -> i64 {
    if pg.psql("team", &format!("SELECT to_regclass('chronicle.{table}') IS NULL")) == "t" {
        return 0; // no sync has created the schema yet
    }
    pg.psql("team", &format!("SELECT count(*) FROM chronicle.{table} WHERE machine = '{machine}'")).parse().unwrap()
}

const TABLES: [&str; 5] = ["events", "plugin_calls", "faults", "violations", "metrics"];

fn assert_all_pushed(env: &Env, pg: &Cluster, machine: &str) {
    for t in TABLES {
        assert_eq!(team_count(pg, t, machine), local_count(env, t), "{t} of {machine}");
    }
    let dupes = pg.psql(
        "team",
        "SELECT count(*) FROM (SELECT machine, store_id, local_id FROM chronicle.events GROUP BY 1, 2, 3 HAVING count(*) > 1) d",
    );
    assert_eq!(dupes, "0");
}

#[test]
fn sync_pushes_every_row_once_and_again_nothing() {
    let pg = Cluster::start(&[]);
    pg.create_db("team");
    let env = recorded("ann-laptop");
    let url = pg.url("team");
    let run = env.run(&["sync", "--url", &url]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with("pushed 86 events"), "{}", run.stdout);
    assert!(!run.stdout.contains(PASSWORD) && !run.stderr.contains(PASSWORD), "the password is shown: {}", run.stdout);
    assert_all_pushed(&env, &pg, "ann-laptop");
    assert_eq!(team_count(&pg, "sessions", "ann-laptop"), local_count(&env, "sessions"));

    // The contract columns, typed: timestamptz, jsonb payloads, already redacted.
    let row = pg
        .psql("team", "SELECT pg_typeof(received_at), pg_typeof(payload), count(DISTINCT session_id) FROM chronicle.events GROUP BY 1, 2");
    assert_eq!(row, "timestamp with time zone|jsonb|1");
    let local_secret_free = env.count("SELECT count(*) FROM events WHERE payload LIKE '%sk-ant-%' OR payload LIKE '%AKIA%'");
    assert_eq!(local_secret_free, 0);
    let team_secrets = pg.psql("team", "SELECT count(*) FROM chronicle.events WHERE payload::text ~ '(sk-ant-|AKIA)'");
    assert_eq!(team_secrets, "0");
    let deny = pg.psql("team", "SELECT count(*) FROM chronicle.events WHERE decision = 'deny'");
    assert_eq!(deny, env.count("SELECT count(*) FROM events WHERE decision = 'deny'").to_string());

    let again = env.run(&["sync", "--url", &url, "--json"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    let v: Value = serde_json::from_str(&again.stdout).unwrap();
    assert_eq!(v["pushed"]["events"], 0, "{v}");
    assert_eq!(v["machine"], "ann-laptop");
    assert_all_pushed(&env, &pg, "ann-laptop");

    // New events later: only they are pushed.
    assert_eq!(env.hook(&bash_event("ls -la")).code, 0);
    let more = env.run(&["sync", "--url", &url, "--json"]);
    let v: Value = serde_json::from_str(&more.stdout).unwrap();
    assert_eq!(v["pushed"]["events"], 1, "{v}");
    assert_all_pushed(&env, &pg, "ann-laptop");

    // A database a newer chronicle migrated is not written to.
    pg.psql("team", "INSERT INTO chronicle.schema_version (version) VALUES (99)");
    assert_eq!(env.hook(&bash_event("ls")).code, 0);
    let refused = env.run(&["sync", "--url", &url]);
    assert_eq!(refused.code, 1, "{refused:?}");
    assert!(refused.stderr.contains("schema is version 99") && refused.stderr.contains("upgrade chronicle"), "{}", refused.stderr);
}

#[test]
fn a_sync_killed_mid_batch_and_run_again_leaves_each_row_once() {
    let pg = Cluster::start(&[]);
    pg.create_db("team");
    let env = recorded("bob-desktop");
    amplify(&env, 60); // 86 * 61 = 5,246 events: several batches
    let url = pg.url("team");
    // Killed as soon as its first batches are in, twice.
    for _ in 0..2 {
        let before = team_count(&pg, "events", "bob-desktop");
        let mut child = env.command(&["sync", "--url", &url]).stdout(std::process::Stdio::null()).spawn().unwrap();
        while team_count(&pg, "events", "bob-desktop") == before {
            std::thread::sleep(Duration::from_millis(5));
        }
        unsafe { libc::kill(child.id() as i32, libc::SIGKILL) };
        let _ = child.wait();
    }
    let partial = team_count(&pg, "events", "bob-desktop");
    assert!(partial > 0 && partial < local_count(&env, "events"), "not killed mid-way: {partial} pushed");
    let run = env.run(&["sync", "--url", &url]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_all_pushed(&env, &pg, "bob-desktop");
}

#[test]
fn a_server_that_is_down_is_one_line_and_loses_nothing() {
    let mut pg = Cluster::start(&[]);
    pg.create_db("team");
    let env = recorded("cat-laptop");
    let url = pg.url("team");
    pg.stop();
    let run = env.run(&["sync", "--url", &url]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.stderr.trim().lines().count(), 1, "{}", run.stderr);
    assert!(run.stderr.contains("cannot reach PostgreSQL at postgresql://chronicle:***@127.0.0.1"), "{}", run.stderr);
    assert!(!run.stderr.contains(PASSWORD));
    pg.restart(&[]);
    let run = env.run(&["sync", "--url", &url]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_all_pushed(&env, &pg, "cat-laptop");
}

#[test]
fn the_password_comes_from_the_url_pgpassword_or_pgpass_and_is_never_shown() {
    let pg = Cluster::start(&[]);
    pg.create_db("team");
    let mut env = recorded("dan");
    // Wrong password: authentication, in one line, without the password.
    let wrong = pg.url("team").replace(PASSWORD, "not-the-password");
    let run = env.run(&["sync", "--url", &wrong]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("authentication failed"), "{}", run.stderr);
    assert!(!run.stderr.contains("not-the-password"), "{}", run.stderr);

    // ~/.pgpass (here PGPASSFILE), refused when others can read it, as libpq does.
    let bare = pg.url_without_password("team");
    let pgpass = env.home().join("pgpass");
    std::fs::write(&pgpass, format!("127.0.0.1:{}:team:chronicle:{PASSWORD}\n", pg.port)).unwrap();
    chronicle_e2e::set_mode(&pgpass, 0o644);
    env.set_env("PGPASSFILE", pgpass.to_str().unwrap());
    assert_eq!(env.run(&["sync", "--url", &bare]).code, 1);
    chronicle_e2e::set_mode(&pgpass, 0o600);
    let run = env.run(&["sync", "--url", &bare]);
    assert_eq!(run.code, 0, "{}", run.stderr);

    // PGPASSWORD, and the URL through the environment.
    let mut env2 = recorded("dan2");
    env2.set_env("PGPASSWORD", PASSWORD);
    env2.set_env("CHRONICLE_SYNC_URL", &bare);
    let run = env2.run(&["sync"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_all_pushed(&env2, &pg, "dan2");

    // config show masks it.
    env2.set_env("CHRONICLE_SYNC_URL", &pg.url("team"));
    let shown = env2.run(&["config", "show"]);
    assert!(shown.stdout.contains("url = \"postgresql://chronicle:***@127.0.0.1"), "{}", shown.stdout);
    assert!(!shown.stdout.contains(PASSWORD));
}

#[test]
fn twenty_machines_push_at_once_into_one_database() {
    let pg = Cluster::start(&[]);
    pg.create_db("team");
    let url = pg.url("team");
    let template = recorded("template");
    let envs: Vec<Env> = (0..20)
        .map(|i| {
            let mut env = Env::new();
            rusqlite::Connection::open(template.db()).unwrap().execute("VACUUM INTO ?1", [env.db().to_str().unwrap()]).unwrap();
            chronicle_e2e::set_mode(&env.db(), 0o600);
            // Each machine's database is its own: a copy gets a new identity.
            let conn = rusqlite::Connection::open(env.db()).unwrap();
            conn.execute("UPDATE identity SET store_id = lower(hex(randomblob(16)))", []).unwrap();
            drop(conn);
            env.set_env("CHRONICLE_MACHINE", &format!("dev-{i:02}"));
            env
        })
        .collect();
    amplify(&envs[0], 10);
    let children: Vec<_> =
        envs.iter().map(|e| e.command(&["sync", "--url", &url]).stdout(std::process::Stdio::null()).spawn().unwrap()).collect();
    // One is killed mid-way and run again.
    std::thread::sleep(Duration::from_millis(200));
    unsafe { libc::kill(children[0].id() as i32, libc::SIGKILL) };
    for mut c in children {
        let _ = c.wait();
    }
    assert_eq!(envs[0].run(&["sync", "--url", &url]).code, 0);
    for (i, env) in envs.iter().enumerate() {
        assert_all_pushed(env, &pg, &format!("dev-{i:02}"));
    }
    assert_eq!(pg.psql("team", "SELECT count(*) FROM chronicle.machines"), "20");
    assert_eq!(pg.psql("team", "SELECT max(version) FROM chronicle.schema_version"), "1");
}

fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    done()
}

#[test]
fn the_resident_host_pushes_in_the_background_and_a_server_that_is_down_costs_the_hooks_nothing() {
    let mut pg = Cluster::start(&[]);
    pg.create_db("team");
    let mut env = Env::with_plugins(&["chronicle_bash_guard"]);
    std::fs::write(env.home().join("config.toml"), "[sync]\ninterval_s = 1\nmachine = \"eve\"\n").unwrap();
    env.set_env("CHRONICLE_SYNC_URL", &pg.url("team"));
    env.start_resident();
    let lines = corpus_lines("session.jsonl");
    for line in &lines[..40] {
        assert_eq!(env.hook(line.as_bytes()).code, 0);
    }
    assert!(wait_until(Duration::from_secs(20), || team_count(&pg, "events", "eve") == 40), "not pushed in the background");
    // The pusher writes its status after the push commits: the rows can be seen first.
    let status_file = env.home().join("sync-status.json");
    assert!(wait_until(Duration::from_secs(20), || status_file.exists()), "no sync-status.json after the push");
    let status: Value = serde_json::from_str(&std::fs::read_to_string(&status_file).unwrap()).unwrap();
    assert_eq!(status["ok"], true, "{status}");
    assert_eq!(status["by"], "resident");

    // The server goes away: every hook still answers and is recorded; the failure is visible.
    pg.stop();
    for line in &lines[40..] {
        let run = env.hook(line.as_bytes());
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    assert_eq!(local_count(&env, "events"), lines.len() as i64);
    assert!(wait_until(Duration::from_secs(20), || {
        std::fs::read_to_string(env.home().join("sync-status.json")).is_ok_and(|s| s.contains("cannot reach PostgreSQL"))
    }));
    let doctor = env.run(&["doctor"]);
    assert!(doctor.stdout.contains("cannot reach PostgreSQL"), "{}", doctor.stdout);
    assert!(doctor.stdout.contains(&format!("{} events wait", lines.len() - 40)), "{}", doctor.stdout);

    // Back: the rest arrives, once.
    pg.restart(&[]);
    assert!(wait_until(Duration::from_secs(20), || team_count(&pg, "events", "eve") == lines.len() as i64));
    assert_all_pushed(&env, &pg, "eve");
}

#[test]
fn team_views_read_every_machine_in_the_local_shapes() {
    let pg = Cluster::start(&[]);
    pg.create_db("team");
    let url = pg.url("team");
    let ann = recorded("ann");
    let bob = recorded("bob");
    assert_eq!(bob.hook(&bash_event("rm -rf /")).code, 0);
    for env in [&ann, &bob] {
        assert_eq!(env.run(&["sync", "--url", &url]).code, 0);
    }
    let json_lines = |r: chronicle_e2e::Run| -> Vec<Value> {
        assert_eq!(r.code, 0, "{}", r.stderr);
        r.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    };

    // events: both machines, each row saying where it came from; --machine narrows.
    let all = json_lines(ann.run(&["events", "--source", &url, "--all", "--json"]));
    assert_eq!(all.len() as i64, local_count(&ann, "events") + local_count(&bob, "events"));
    let local: Vec<Value> = bob.events();
    let bobs = json_lines(ann.run(&["events", "--source", &url, "--machine", "bob", "--all", "--json"]));
    assert_eq!(bobs.len(), local.len());
    for (t, l) in bobs.iter().zip(&local) {
        assert_eq!(t["machine"], "bob");
        for k in ["kind", "hook_event_name", "tool_name", "session_id", "decision", "received_at", "payload", "faults", "redacted"] {
            assert_eq!(t[k], l[k], "{k}");
        }
    }
    let denied = json_lines(ann.run(&["events", "--source", &url, "--decision", "deny", "--json"]));
    assert!(denied.iter().any(|e| e["machine"] == "bob" && e["payload"]["tool_input"]["command"] == "rm -rf /"), "{denied:?}");
    // The table fits 80 columns with the machine in it.
    let table = ann.run(&["events", "--source", &url]);
    assert_eq!(table.code, 0, "{}", table.stderr);
    assert!(table.stdout.lines().all(|l| l.chars().count() <= 80), "{}", table.stdout);
    assert!(table.stdout.contains("MACHINE"));
    // A session prefix, as tables show it.
    let sid = local[0]["session_id"].as_str().unwrap();
    let by_prefix = json_lines(ann.run(&["events", "--source", &url, "--machine", "bob", "--session", &sid[..8], "--all", "--json"]));
    assert_eq!(by_prefix.len(), local.iter().filter(|e| e["session_id"] == sid).count());

    // sessions
    let sessions = json_lines(ann.run(&["sessions", "--source", &url, "--json"]));
    assert_eq!(sessions.len() as i64, local_count(&ann, "sessions") + local_count(&bob, "sessions"));
    assert!(sessions.iter().all(|s| s["machine"] == "ann" || s["machine"] == "bob"));

    // stats: one machine's team stats are its local stats; all of them add a machines section.
    let local_stats: Value = serde_json::from_str(&bob.run(&["stats", "--json"]).stdout).unwrap();
    let team_bob = ann.run(&["stats", "--json", "--source", &url, "--machine", "bob"]);
    assert_eq!(team_bob.code, 0, "{}", team_bob.stderr);
    let team_bob: Value = serde_json::from_str(&team_bob.stdout).unwrap();
    assert_eq!(team_bob["events"], local_stats["events"]);
    for (name, op) in local_stats["performance_stats"]["operations"].as_object().unwrap() {
        let t = &team_bob["performance_stats"]["operations"][name];
        for k in ["count", "p50_ms", "p95_ms", "p99_ms", "max_ms"] {
            assert_eq!(t[k], op[k], "{name} {k}");
        }
    }
    for (name, p) in local_stats["plugins"].as_object().unwrap() {
        let t = &team_bob["plugins"][name];
        for k in ["calls", "cached", "faults", "decisions", "max_peak_live_bytes"] {
            assert_eq!(t[k], p[k], "{name} {k}");
        }
        assert_eq!(t["time"]["p50_ms"], p["time"]["p50_ms"]);
    }
    assert_eq!(team_bob["performance_stats"]["violations"], local_stats["performance_stats"]["violations"]);
    let team: Value = serde_json::from_str(&ann.run(&["stats", "--json", "--source", &url]).stdout).unwrap();
    let machines = team["machines"].as_object().unwrap();
    assert_eq!(machines.len(), 2);
    assert_eq!(machines["bob"]["events"], local_count(&bob, "events"));
    assert_eq!(machines["bob"]["decisions"]["deny"], team_bob["events"]["PreToolUse"]["decisions"]["deny"]);
    assert!(machines["ann"]["hook_total"]["p50_ms"].as_f64().unwrap() > 0.0);
    let text = ann.run(&["stats", "--source", &url]);
    assert!(text.stdout.contains("Machines") && text.stdout.contains("bob"), "{}", text.stdout);

    // report
    let page = ann.home().join("team.html");
    let run = ann.run(&["report", "--html", page.to_str().unwrap(), "--source", &url]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("Chronicle team report (2 machines)"));
    assert!(html.contains(&format!("data-value=\"{}\"", all.len())), "the page counts every machine's events");

    // --source team means [sync] url; --machine needs --source.
    let mut ann = ann;
    ann.set_env("CHRONICLE_SYNC_URL", &url);
    assert_eq!(json_lines(ann.run(&["events", "--source", "team", "--all", "--json"])).len(), all.len());
    assert_eq!(ann.run(&["events", "--machine", "bob"]).code, 2);
}

fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = std::process::Command::new("openssl").args(args).current_dir(dir).output().expect("openssl runs");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// A CA and a server certificate it signed for `db.example` (not for 127.0.0.1).
fn certificates(dir: &std::path::Path) {
    for ca in ["ca", "other-ca"] {
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                &format!("{ca}.key"),
                "-out",
                &format!("{ca}.crt"),
                "-days",
                "2",
                "-subj",
                &format!("/CN={ca}"),
            ],
        );
    }
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=db.example",
        ],
    );
    std::fs::write(dir.join("san.ext"), "subjectAltName=DNS:db.example\n").unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ],
    );
    chronicle_e2e::set_mode(&dir.join("server.key"), 0o600);
}

#[test]
fn tls_modes_behave_as_libpq_says() {
    let mut pg = Cluster::start(&[]);
    certificates(pg.dir());
    for f in ["server.key", "server.crt"] {
        pg.chown_for_server(&pg.dir().join(f));
    }
    let dir = pg.dir().to_path_buf();
    let ssl = [
        "ssl=on".to_owned(),
        format!("ssl_cert_file={}", dir.join("server.crt").display()),
        format!("ssl_key_file={}", dir.join("server.key").display()),
        "log_connections=on".to_owned(),
    ];
    pg.restart(&ssl.iter().map(String::as_str).collect::<Vec<_>>());
    pg.create_db("team");
    let mut env = recorded("tls");
    let base = pg.url("team").replace("?sslmode=disable", "");
    let ca = dir.join("ca.crt");
    let other = dir.join("other-ca.crt");
    let sync = |env: &Env, url: &str| env.run(&["sync", "--url", url]);

    // require: encrypted, the certificate not checked.
    let run = sync(&env, &format!("{base}?sslmode=require"));
    assert_eq!(run.code, 0, "{}", run.stderr);
    let log = std::fs::read_to_string(dir.join("server.log")).unwrap();
    assert!(log.contains("SSL enabled"), "no TLS connection in the server log:\n{log}");
    // verify-ca: the chain is checked, the name is not.
    let run = sync(&env, &format!("{base}?sslmode=verify-ca&sslrootcert={}", ca.display()));
    assert_eq!(run.code, 0, "{}", run.stderr);
    // verify-full: 127.0.0.1 is not db.example.
    let run = sync(&env, &format!("{base}?sslmode=verify-full&sslrootcert={}", ca.display()));
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.starts_with("chronicle sync: TLS:") && run.stderr.trim().lines().count() == 1, "{}", run.stderr);
    assert!(!run.stderr.contains(PASSWORD));
    // Another CA: refused in both verifying modes.
    for mode in ["verify-ca", "verify-full"] {
        let run = sync(&env, &format!("{base}?sslmode={mode}&sslrootcert={}", other.display()));
        assert_eq!(run.code, 1, "{mode}: {run:?}");
        assert!(run.stderr.contains("TLS"), "{}", run.stderr);
    }
    // The same through [sync]: sslmode and ca_file.
    std::fs::write(env.home().join("config.toml"), format!("[sync]\nsslmode = \"verify-ca\"\nca_file = {:?}\n", ca.display().to_string()))
        .unwrap();
    env.set_env("CHRONICLE_SYNC_URL", &base);
    let run = env.run(&["sync"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_all_pushed(&env, &pg, "tls");
}

#[test]
fn two_pushes_of_one_database_at_once_take_turns() {
    let pg = Cluster::start(&[]);
    pg.create_db("team");
    let env = recorded("fay");
    amplify(&env, 30);
    let url = pg.url("team");
    let children: Vec<_> =
        (0..3).map(|_| env.command(&["sync", "--url", &url, "--json"]).stdout(std::process::Stdio::piped()).spawn().unwrap()).collect();
    let mut pushed = 0;
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success());
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        pushed += v["pushed"]["events"].as_i64().unwrap();
    }
    // Between them they inserted each event once.
    assert_eq!(pushed, local_count(&env, "events"));
    assert_all_pushed(&env, &pg, "fay");
}
