//! A plugin author's path: scaffold → build as a separate project → drop in → decision; and a
//! plugin written in C against the header.

use std::process::Command;

use chronicle_e2e::{bash_event, needed_libraries, set_mode, target_dir, Env};

#[test]
fn a_scaffolded_plugin_builds_on_its_own_and_its_decision_comes_back() {
    let env = Env::new();
    let work = tempfile::tempdir().unwrap();
    let crate_dir = work.path().join("no-terraform");
    // The API crate as a plugin author has it: a copy outside our checkout (the release tarball's
    // share/chronicle/plugin-api), with no workspace around it to inherit settings from.
    let api = work.path().join("plugin-api");
    let repo_api = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin-api");
    let copied = Command::new("cp").arg("-R").arg(&repo_api).arg(&api).status().unwrap();
    assert!(copied.success());
    let run = env.run(&["new-plugin", "no-terraform", "--path", crate_dir.to_str().unwrap(), "--api-path", api.to_str().unwrap()]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(crate_dir.join("src/lib.rs").exists());
    // The hint names this user's plugin directory (CHRONICLE_HOME here), not a fixed path.
    assert!(run.stdout.contains(&env.plugin_dir().display().to_string()), "{}", run.stdout);

    // A separate cargo project (its own [workspace]); the target dir is shared across runs only
    // to save build time.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--quiet"])
        .current_dir(&crate_dir)
        .env("CARGO_TARGET_DIR", target_dir().parent().unwrap().join("scaffold-test"))
        .status()
        .expect("cargo runs");
    assert!(status.success(), "the scaffolded crate builds");
    let built = target_dir().parent().unwrap().join("scaffold-test/debug/libno_terraform.so");
    // Its build.rs is the one plugin-api/README.md shows ("Loading fast"), and does what it says.
    let build_rs = std::fs::read_to_string(crate_dir.join("build.rs")).unwrap();
    let readme = std::fs::read_to_string(repo_api.join("README.md")).unwrap();
    assert!(
        readme.contains(&format!("```rust\n{build_rs}```")),
        "plugin-api/README.md shows another build.rs than the scaffold's:\n{build_rs}"
    );
    if cfg!(all(target_os = "linux", target_env = "gnu")) {
        assert!(!needed_libraries(&built).iter().any(|l| l.starts_with("libgcc_s")), "{:?}", needed_libraries(&built));
    }
    let dropped = env.plugin_dir().join("libno_terraform.so");
    std::fs::copy(&built, &dropped).unwrap();
    set_mode(&dropped, 0o644);

    let check = env.run(&["plugins", "check", dropped.to_str().unwrap()]);
    assert_eq!(check.code, 0, "{}", check.stdout);
    // As an author types it, in the directory of the library: a bare file name.
    let bare = env.command(&["plugins", "check", "libno_terraform.so"]).current_dir(env.plugin_dir()).output().unwrap();
    let said = String::from_utf8_lossy(&bare.stdout);
    assert!(bare.status.success() && said.contains("no-terraform") && said.contains("loads"), "{said}");
    let run = env.hook(&bash_event("terraform destroy -auto-approve"));
    assert_eq!(run.permission_decision(), "deny", "{}", run.stderr);
    assert!(run.stdout.contains("no-terraform"));
    assert_eq!(env.hook(&bash_event("terraform plan")).stdout, "");

    // Its config section reaches it.
    std::fs::write(env.home().join("config.toml"), "[plugins.no-terraform]\nwords = [\"kubectl delete\"]\n").unwrap();
    assert_eq!(env.hook(&bash_event("kubectl delete ns prod")).permission_decision(), "deny");
}

#[test]
fn a_c_plugin_loads_through_the_c_abi_and_answers() {
    let env = Env::new();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let lib = env.plugin_dir().join("libdeny_word.so");
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-I"])
        .arg(root.join("plugin-api/include"))
        .arg("-o")
        .arg(&lib)
        .arg(root.join("plugin-api/examples/c/deny_word.c"))
        .status()
        .expect("a C compiler (cc)");
    assert!(status.success());
    set_mode(&lib, 0o644);

    let list = env.run(&["plugins", "list", "--json"]);
    let entry: serde_json::Value = serde_json::from_str(list.stdout.lines().next().unwrap()).unwrap();
    assert_eq!(entry["name"], "c-deny-word");
    assert_eq!(entry["abi"], "c");
    assert_eq!(entry["failure_policy"], "closed");

    let run = env.hook(&bash_event("terraform destroy"));
    assert_eq!(run.permission_decision(), "deny");
    assert!(run.stdout.contains("c-deny-word"));
    assert_eq!(env.hook(&bash_event("ls")).stdout, "");
    std::fs::write(env.home().join("config.toml"), "[plugins.c-deny-word]\nword = \"rm -rf build\"\n").unwrap();
    assert_eq!(env.hook(&bash_event("rm -rf build")).permission_decision(), "deny");
    let mem = env.query("SELECT memory_source FROM plugin_calls LIMIT 1");
    assert_eq!(mem[0][0], "mallinfo2", "C plugins get heap deltas instead of the counting allocator");
}

/// A C plugin author gets advice in C terms: the header and its ABI number, or the symbols a
/// library is missing, not "rebuild against chronicle-plugin-api" or "no manifest".
#[test]
fn c_plugins_are_refused_with_advice_for_c() {
    let env = chronicle_e2e::Env::new();
    let manifest = |abi: u32| {
        format!(
            "const char *chronicle_plugin_manifest(void) {{ return \"{{\\\"name\\\":\\\"c-old\\\",\\\"version\\\":\\\"1\\\",\\\"abi_version\\\":{abi},\\\"events\\\":[\\\"Stop\\\"]}}\"; }}\n"
        )
    };
    let full = |abi: u32| {
        format!(
            "#include <stdlib.h>\n{}char *chronicle_plugin_handle(const char *e, size_t n) {{ (void)e; (void)n; return NULL; }}\nvoid chronicle_plugin_free(char *p) {{ free(p); }}\n",
            manifest(abi)
        )
    };
    let old = chronicle_e2e::c_plugin(&env, "c_old", &full(99), &[]);
    let run = env.run(&["plugins", "check", old.to_str().unwrap()]);
    assert_ne!(run.code, 0);
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(said.contains("chronicle_plugin.h") && said.contains("abi_version") && !said.contains("chronicle-plugin-api"), "{said}");

    let half = chronicle_e2e::c_plugin(&env, "c_half", &format!("#include <stddef.h>\n{}", manifest(1)), &[]);
    let run = env.run(&["plugins", "check", half.to_str().unwrap()]);
    assert_ne!(run.code, 0);
    let said = format!("{}{}", run.stdout, run.stderr);
    assert!(said.contains("but not chronicle_plugin_handle nor chronicle_plugin_free"), "{said}");
}

/// A plugin's data directory outlives every process that runs it: a count kept there goes on
/// across in-process hooks, a resident host, its restart and parallel hooks, exactly.
#[test]
fn a_plugin_keeps_state_in_its_data_directory_across_processes() {
    let mut env = Env::with_plugins(&["fixture_counter"]);
    let prompt = chronicle_e2e::event("UserPromptSubmit", serde_json::json!({"prompt": "hi"}));
    let context = |run: chronicle_e2e::Run| -> String {
        assert_eq!(run.code, 0, "{}", run.stderr);
        run.json()["hookSpecificOutput"]["additionalContext"].as_str().unwrap_or_default().to_owned()
    };
    env.set_env("CHRONICLE_RESIDENT", "0");
    for n in 1..=3 {
        assert_eq!(context(env.hook(&prompt)), format!("prompts so far: {n}"));
    }
    let dir = env.home().join("plugin-data/fixture-counter");
    assert_eq!(std::fs::read_to_string(dir.join("count")).unwrap(), "3");
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777, 0o700);

    env.set_env("CHRONICLE_RESIDENT", "1");
    let pid = env.start_resident();
    assert_eq!(context(env.hook(&prompt)), "prompts so far: 4");
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    assert_eq!(context(env.hook(&prompt)), "prompts so far: 5", "a new host, the same count");

    // Eight hooks at once, in their own processes: each counted once.
    env.set_env("CHRONICLE_RESIDENT", "0");
    let children: Vec<_> = (0..8)
        .map(|_| {
            let mut c = env.command(&["hook"]).stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::null()).spawn().unwrap();
            use std::io::Write;
            c.stdin.take().unwrap().write_all(&prompt).unwrap();
            c
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    assert_eq!(std::fs::read_to_string(dir.join("count")).unwrap(), "13");
}
