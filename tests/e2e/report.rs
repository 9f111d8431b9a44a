//! The HTML report, rendered in a real headless browser (Debian's chromium).

use std::process::Command;

use chronicle_e2e::{corpus_lines, target_dir, Env};

fn chromium() -> std::path::PathBuf {
    for c in ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"] {
        if std::path::Path::new(c).exists() {
            return c.into();
        }
    }
    panic!("no chromium: scripts/test.sh installs Debian's `chromium` package (apt-get install chromium)");
}

fn headless(profile: &std::path::Path) -> Command {
    let mut c = Command::new(chromium());
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--enable-logging=stderr",
        "--v=0",
        "--window-size=1100,1600",
    ]);
    c.arg(format!("--user-data-dir={}", profile.display()));
    c
}

#[test]
fn the_report_renders_in_chromium_with_its_data_and_no_console_errors() {
    let env = Env::with_plugins(crate::adversarial::BUILTINS);
    for _ in 0..2 {
        for l in corpus_lines("session.jsonl") {
            env.hook(l.as_bytes());
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("report.html");
    let run = env.run(&["report", "--html", page.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let html = std::fs::read_to_string(&page).unwrap();
    for remote in ["src=\"http", "href=\"http", "@import", "url(http"] {
        assert!(!html.contains(remote), "self-contained, no network: found {remote}");
    }
    assert!(!html.contains("<script"), "no script needed");

    let url = format!("file://{}", page.display());
    let dom = headless(&dir.path().join("p1")).arg("--dump-dom").arg(&url).output().expect("chromium runs");
    assert!(dom.status.success(), "{}", String::from_utf8_lossy(&dom.stderr));
    let dom_text = String::from_utf8_lossy(&dom.stdout);
    let stderr = String::from_utf8_lossy(&dom.stderr);
    let console: Vec<&str> =
        stderr.lines().filter(|l| l.contains("CONSOLE") || l.contains("Uncaught") || l.contains("Refused to")).collect();
    assert!(console.is_empty(), "console errors: {console:?}");

    // The rendered charts carry the data: one timeline mark per event, bars per event type
    // and plugin, the cache curve ending above zero (the second pass hits), the deny listed.
    let events = env.count("SELECT count(*) FROM events") as usize;
    assert_eq!(dom_text.matches("class=\"event\"").count(), events);
    for t in ["PreToolUse", "PostToolUse", "SessionStart", "Stop"] {
        assert!(dom_text.contains(&format!("data-label=\"{t}\" data-p50-ms")), "{t} missing from the latency chart");
    }
    for p in ["bash-guard", "file-guard", "secret-guard", "session-context"] {
        assert!(dom_text.contains(&format!("data-label=\"{p}\"")), "{p} missing from the plugin chart");
    }
    assert!(dom_text.contains("class=\"tool\""));
    let last_ratio: f64 = dom_text
        .rsplit("data-hit-ratio=\"")
        .next()
        .and_then(|s| s.split('"').next())
        .and_then(|s| s.parse().ok())
        .expect("a hit-ratio point");
    assert!(last_ratio > 0.0, "second pass hits the cache");
    assert!(dom_text.contains("data-decision=\"deny\""));

    // A screenshot, kept as a test artifact.
    let artifacts = target_dir().parent().unwrap().join("artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join("report.png");
    let _ = std::fs::remove_file(&shot);
    let s = headless(&dir.path().join("p2")).arg(format!("--screenshot={}", shot.display())).arg(&url).output().unwrap();
    assert!(s.status.success());
    let png = std::fs::read(&shot).expect("screenshot written");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 20_000, "a real picture, {} bytes", png.len());
}

fn report(env: &Env, args: &[&str]) -> String {
    let page = env.home().join("r.html");
    let mut all = vec!["report", "--html", page.to_str().unwrap()];
    all.extend_from_slice(args);
    let run = env.run(&all);
    assert_eq!(run.code, 0, "{}", run.stderr);
    std::fs::read_to_string(page).unwrap()
}

/// The value of `attr="..."` on the element with `id="id"`.
fn attr(html: &str, id: &str, attr: &str) -> String {
    let at = html.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no #{id}"));
    let rest = &html[at..];
    let end = rest.find('>').unwrap();
    let tag = &rest[..end];
    let from = tag.find(&format!("{attr}=\"")).unwrap_or_else(|| panic!("no {attr} on #{id}")) + attr.len() + 2;
    tag[from..].split('"').next().unwrap().to_owned()
}

#[test]
fn the_report_says_what_it_covers_from_empty_to_more_than_it_draws() {
    // Empty: it says so, and how to get events.
    let env = Env::with_plugins(crate::adversarial::BUILTINS);
    env.run(&["doctor"]);
    assert!(env.db().exists(), "doctor creates the database");
    let empty = report(&env, &[]);
    assert!(empty.contains("id=\"empty\"") && empty.contains("chronicle demo"), "{empty}");

    // Two sessions: the timeline shows the latest; the list names both with their command.
    let lines = corpus_lines("session.jsonl");
    for l in &lines {
        env.hook(l.as_bytes());
    }
    let first: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    let old_session = first["session_id"].as_str().unwrap().to_owned();
    let new_session = "0f0f0f0f-1111-2222-3333-444444444444";
    for l in lines.iter().take(10) {
        env.hook(l.replace(&old_session, new_session).as_bytes());
    }
    let html = report(&env, &[]);
    assert!(html.contains("name=\"viewport\""), "a phone gets a viewport");
    assert!(!html.contains("<svg id=\"timeline\" width="), "charts scale with the page");
    assert_eq!(html.matches("class=\"event\"").count(), 10, "the timeline is the latest session's");
    assert!(html.contains(&format!("--session {}", &old_session[..8])) && html.contains("--session 0f0f0f0f"));
    assert!(html.contains("(n="), "latency rows say how many samples they stand on");
    assert!(html.contains("class=\"axis time\""), "the timeline has a time axis");
    let only_old = report(&env, &["--session", &old_session[..8]]);
    assert_eq!(only_old.matches("class=\"event\"").count(), lines.len());

    // More events than it draws: the newest, and it says how many of how many.
    let conn = rusqlite::Connection::open(env.db()).unwrap();
    let max: i64 = conn.query_row("SELECT max(id) FROM events", [], |r| r.get(0)).unwrap();
    conn.execute_batch(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 2100)
         INSERT INTO events (id, kind, hook_event_name, session_id, received_at_ns, payload, payload_bytes, redacted, truncated, decision)
         SELECT {max} + i, 'event', CASE WHEN i = 2100 THEN 'PreToolUse' ELSE 'Notification' END, '{new_session}',
                (SELECT max(received_at_ns) FROM events) + i * 1000000, '{{}}', 2, 0, 0, CASE WHEN i = 2100 THEN 'deny' ELSE 'none' END
         FROM n"
    ))
    .unwrap();
    let big = report(&env, &["--session", "0f0f"]);
    assert_eq!(attr(&big, "timeline-caption", "data-shown"), "2000");
    assert_eq!(attr(&big, "timeline-caption", "data-total"), "2110");
    assert!(big.contains("the newest 2000 of 2110 events"));
    assert!(big.contains(&format!("data-event-id=\"{}\"", max + 2100)), "the newest event, a deny, is drawn");
}
