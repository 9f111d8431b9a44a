//! `chronicle new-plugin NAME [--path DIR]`: a standalone crate (outside any workspace) that
//! builds a drop-in plugin against chronicle-plugin-api.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context};

/// The plugin-api source to build against: the release tarball's copy beside this binary
/// (`share/chronicle/plugin-api`), else the source tree this binary was built from, when it is
/// still there. The crate is self-contained (no workspace inheritance), so either builds from
/// anywhere.
fn local_api() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let packaged = exe.parent()?.parent()?.join("share/chronicle/plugin-api");
    let built_from = Path::new(env!("CARGO_MANIFEST_DIR")).join("../plugin-api");
    [packaged, built_from].into_iter().find(|p| p.join("Cargo.toml").exists()).map(|p| p.canonicalize().unwrap_or(p))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        && name.starts_with(|c: char| c.is_ascii_lowercase())
}

/// The plugin's `build.rs`: the unwinder from `libgcc_eh.a`, so that loading the plugin does
/// not load `libgcc_s.so.1` and run its `cpuid`-heavy constructor (plugin-api/README.md,
/// "Loading fast", shows the same file; the scaffold test holds the two together).
const BUILD_RS: &str = r#"// Link the unwinder from libgcc_eh.a: a linker script named libgcc_s.so, found first.
fn main() {
    let linux_gnu = std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|v| v == "linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").is_ok_and(|v| v == "gnu");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let archive = std::process::Command::new(cc).arg("-print-file-name=libgcc_eh.a").output();
    let archive = archive.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned()).unwrap_or_default();
    let out = std::env::var("OUT_DIR").unwrap();
    if linux_gnu && archive.starts_with('/') {
        std::fs::write(format!("{out}/libgcc_s.so"), format!("GROUP ( {archive} )\n")).unwrap();
        println!("cargo:rustc-link-arg-cdylib=-L{out}");
    }
}
"#;

/// `plugin_dir`: where this user's plugins go (the config's user plugin directory, which
/// follows CHRONICLE_HOME).
pub fn run(name: &str, path: Option<PathBuf>, api_path: Option<PathBuf>, plugin_dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    if !valid_name(name) {
        bail!("plugin name {name:?}: use lowercase letters, digits, '-' and '_', starting with a letter");
    }
    let dir = path.unwrap_or_else(|| PathBuf::from(name));
    if dir.exists() && std::fs::read_dir(&dir).map(|mut d| d.next().is_some()).unwrap_or(true) {
        bail!("{} already exists and is not empty: choose another --path", dir.display());
    }
    let api_dep = match api_path.map(|p| p.canonicalize().unwrap_or(p)).or_else(local_api) {
        Some(p) if p.join("Cargo.toml").exists() => format!("chronicle-plugin-api = {{ path = {:?} }}", p.display().to_string()),
        Some(p) => bail!("{} holds no chronicle-plugin-api (no Cargo.toml)", p.display()),
        // Not on crates.io: a version requirement would not resolve.
        None => bail!(
            "cannot find chronicle-plugin-api's source: pass --api-path DIR (the release tarball ships it as \
             share/chronicle/plugin-api; a checkout has it as plugin-api/)"
        ),
    };
    let lib = name.replace('-', "_");
    std::fs::create_dir_all(dir.join("src")).with_context(|| format!("cannot create {}", dir.display()))?;
    let cargo = format!(
        r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2021"

[lib]
crate-type = ["cdylib"]

[dependencies]
{api_dep}
# export_plugin! expands to abi_stable paths, so the plugin names abi_stable itself.
abi_stable = "0.11"
serde_json = "1"

# A standalone crate, not part of any enclosing workspace.
[workspace]

[profile.release]
# Plugins must unwind (their panics are caught and reported, never allowed to abort the host).
panic = "unwind"
"#
    );
    let src = format!(
        r#"//! {name}: a Chronicle plugin. Denies Bash commands containing one of the configured words.
use chronicle_plugin_api::{{export_plugin, Event, Manifest, Outcome, Plugin}};

struct Guard {{
    words: Vec<String>,
}}

impl Plugin for Guard {{
    fn manifest() -> Manifest {{
        Manifest::new("{name}", env!("CARGO_PKG_VERSION")).events(&["PreToolUse"]).tool_matcher("Bash")
    }}

    /// `[plugins.{name}] words = ["..."]` in Chronicle's config.toml.
    fn init(config: &serde_json::Value) -> Result<Self, String> {{
        let words = match config.get("words") {{
            Some(w) => serde_json::from_value(w.clone()).map_err(|e| format!("words: {{e}}"))?,
            None => vec!["terraform destroy".to_owned()],
        }};
        Ok(Guard {{ words }})
    }}

    fn handle(&self, event: &Event) -> Outcome {{
        let command = event.tool_input_str("command").unwrap_or("");
        match self.words.iter().find(|w| command.contains(w.as_str())) {{
            Some(w) => Outcome::deny(format!("{name}: `{{w}}` is not allowed in this project")),
            // No opinion: Claude Code's own permission flow decides. Never answer allow for this.
            None => Outcome::none(),
        }}
    }}
}}

export_plugin!(Guard);
"#
    );
    let readme = format!(
        "# {name}\n\nA Chronicle plugin.\n\n```sh\ncargo build --release\n\
         chronicle plugins install target/release/lib{lib}.so   # checks it, copies it into the user plugin directory, registers its events\n```\n\n\
         Configure it in Chronicle's config.toml:\n\n```toml\n[plugins.{name}]\nwords = [\"terraform destroy\"]\n```\n"
    );
    std::fs::write(dir.join("Cargo.toml"), cargo)?;
    std::fs::write(dir.join("src/lib.rs"), src)?;
    std::fs::write(dir.join("build.rs"), BUILD_RS)?;
    std::fs::write(dir.join("README.md"), readme)?;
    std::fs::write(dir.join(".gitignore"), "/target\n")?;
    super::show::out(&format!(
        "created {0}\nbuild it:   cd {0} && cargo build --release\ninstall it: chronicle plugins install target/release/lib{lib}.{ext}   (checks it, copies it into {1}, registers its events)\n",
        dir.display(),
        plugin_dir.display(),
        ext = std::env::consts::DLL_EXTENSION
    ))?;
    Ok(ExitCode::SUCCESS)
}
