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
