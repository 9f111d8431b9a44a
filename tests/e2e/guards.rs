//! The guards' decision table (tests/corpus/guards.jsonl, shared with the plugins' in-process
//! tests) through the real binary: each row's plugin installed alone, the event sent to
//! `chronicle hook`, the answer's decision compared.

use chronicle_e2e::{corpus_lines, event, Env};
use serde_json::{json, Value};

#[test]
fn every_table_row_gets_its_decision_through_the_binary() {
    let rows: Vec<Value> = corpus_lines("guards.jsonl").iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    let mut failures = Vec::new();
    for plugin in ["bash-guard", "file-guard", "secret-guard"] {
        let mut env = Env::with_plugins(&[&format!("chronicle_{}", plugin.replace('-', "_"))]);
        env.set_env("HOME", "/home/dev");
        for row in rows.iter().filter(|r| r["plugin"] == plugin) {
            let payload = match row["prompt"].as_str() {
                Some(p) => event("UserPromptSubmit", json!({"prompt": p})),
                None => event("PreToolUse", json!({"tool_name": row["tool"], "tool_input": row["input"], "tool_use_id": "t"})),
            };
            let run = env.hook(&payload);
            let got = if run.stdout.is_empty() {
                "none".to_owned()
            } else {
                let v = run.json();
                v["hookSpecificOutput"]["permissionDecision"].as_str().or(v["decision"].as_str()).unwrap_or("none").to_owned()
            };
            if got != row["decision"] {
                failures.push(format!("{plugin} {}: want {}, got {got} ({})", row["input"], row["decision"], run.stdout));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Chronicle's own files, wherever the environment puts them (here `CHRONICLE_HOME`): a model
/// may not delete a guard's library, switch plugins off in the configuration or touch the
/// records, by a shell command or a file tool.
#[test]
fn chronicles_own_files_are_out_of_the_models_reach() {
    let env = Env::with_plugins(&["chronicle_bash_guard", "chronicle_file_guard"]);
    let home = env.home().display().to_string();
    let guard = env.plugin_dir().join("libchronicle_bash_guard.so");
    let calls = [
        ("Bash", json!({"command": format!("rm -f {}", guard.display())})),
        ("Bash", json!({"command": format!("cd {home} && mv plugins/libchronicle_file_guard.so /home/dev/code/acme-billing/")})),
        ("Bash", json!({"command": format!("echo 'disabled_plugins = [\"bash-guard\"]' >> {home}/config.toml")})),
        ("Write", json!({"file_path": format!("{home}/config.toml"), "content": "disabled_plugins = [\"bash-guard\", \"file-guard\"]"})),
        ("Edit", json!({"file_path": format!("{home}/plugin-index.json"), "old_string": "a", "new_string": "b"})),
    ];
    for (tool, input) in calls {
        let run = env.hook(&event("PreToolUse", json!({"tool_name": tool, "tool_input": input, "tool_use_id": "t"})));
        assert_eq!(run.permission_decision(), "deny", "{tool} {input}: {}", run.stdout);
        let reason = run.json()["hookSpecificOutput"]["permissionDecisionReason"].as_str().unwrap().to_owned();
        assert!(reason.contains("Chronicle's own"), "{reason}");
    }
    assert!(guard.exists());
    assert_eq!(env.count("SELECT count(*) FROM events WHERE decision = 'deny'"), 5);
}

/// The file tools follow symbolic links, and any program the model runs can make one (or a hard
/// link): a path is judged where it leads at the moment of the call, by a resident host that
/// judged the same spelling before it was a link (no answer about a path is reused).
#[test]
fn a_link_is_judged_where_it_leads_at_every_event() {
    let mut env = Env::with_plugins(&["chronicle_file_guard"]);
    let place = tempfile::tempdir().unwrap();
    let project = place.path().join("project");
    let ssh = place.path().join("home/.ssh");
    std::fs::create_dir_all(&project).unwrap();
    std::fs::create_dir_all(&ssh).unwrap();
    std::fs::write(ssh.join("id_ed25519"), "-----BEGIN OPENSSH PRIVATE KEY-----").unwrap();
    std::fs::write(project.join("notes.txt"), "plain notes").unwrap();
    std::fs::write(env.home().join("config.toml"), "").unwrap();
    env.start_resident();
    let call = |tool: &str, path: &str| {
        let input = json!({"file_path": path, "content": "disabled_plugins = [\"file-guard\"]"});
        env.hook(&event("PreToolUse", json!({"tool_name": tool, "tool_input": input, "tool_use_id": "t", "cwd": project})))
    };

    for tool in ["Read", "Write"] {
        let run = call(tool, "notes.txt");
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(run.stdout, "", "{tool} of a plain file in the project: no opinion");
    }
    std::fs::remove_file(project.join("notes.txt")).unwrap();
    std::os::unix::fs::symlink(ssh.join("id_ed25519"), project.join("notes.txt")).unwrap();
    let run = call("Read", "notes.txt");
    assert_eq!(run.permission_decision(), "deny", "{}", run.stdout);
    let reason = run.json()["hookSpecificOutput"]["permissionDecisionReason"].as_str().unwrap().to_owned();
    assert!(reason.contains("a link to") && reason.contains(".ssh"), "{reason}");

    std::fs::remove_file(project.join("notes.txt")).unwrap();
    std::os::unix::fs::symlink(env.home().join("config.toml"), project.join("notes.txt")).unwrap();
    let run = call("Write", "notes.txt");
    assert_eq!(run.permission_decision(), "deny", "{}", run.stdout);
    assert!(run.stdout.contains("Chronicle's own"), "{}", run.stdout);
    assert_eq!(call("Read", "notes.txt").stdout, "", "reading Chronicle's configuration is fine");

    // A hard link is the same file under another name.
    std::fs::hard_link(env.home().join("config.toml"), project.join("copy.txt")).unwrap();
    let run = call("Write", "copy.txt");
    assert_eq!(run.permission_decision(), "deny", "{}", run.stdout);
    assert!(run.stdout.contains("hard link") && run.stdout.contains("Chronicle's own"), "{}", run.stdout);

    assert_eq!(env.count("SELECT count(*) FROM events"), 6);
    assert_eq!(env.count("SELECT count(*) FROM events WHERE decision = 'deny'"), 3);
    assert_eq!(env.count("SELECT count(*) FROM plugin_calls WHERE plugin = 'file-guard' AND status = 'ok'"), 6, "called every time");
}
