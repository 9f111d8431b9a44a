//! Link settings and the build's identity.
//!
//! - `chronicle-host` links as a non-PIE binary on Linux: a position-independent executable pays
//!   for its dynamic relocations (and the pages they dirty) at every start, and it starts once
//!   per event it handles in process. Plugins stay PIC.
//! - `chronicle`, the client, is relinked statically by `scripts/build.sh` (`crt-static`):
//!   stable cargo cannot scope that flag to one binary, and a workspace-wide one refuses to
//!   build the plugins (cdylibs). `-static` as a link argument alone is not enough either: rustc
//!   still links libgcc_s and libc dynamically (the result segfaults at start).
//! - `CHRONICLE_COMMIT`: the commit built from (`git` at build time; the variable of the same
//!   name when building from a tarball), for `chronicle --version` and `doctor`.
use std::path::Path;
use std::process::Command;

fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" {
        println!("cargo:rustc-link-arg-bin=chronicle-host=-no-pie");
    }
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CHRONICLE_COMMIT");
    let commit = std::env::var("CHRONICLE_COMMIT").ok().filter(|c| !c.is_empty()).or_else(git_commit).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=CHRONICLE_COMMIT={commit}");
}

/// The checkout's HEAD commit (12 hex digits), watching the files that move it.
fn git_commit() -> Option<String> {
    let git = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?.join(".git");
    // Not a checkout (a tarball, `git archive`): an enclosing repository is not ours.
    if !git.exists() {
        return None;
    }
    if git.is_dir() {
        println!("cargo:rerun-if-changed={}", git.join("HEAD").display());
        println!("cargo:rerun-if-changed={}", git.join("packed-refs").display());
        if let Ok(head) = std::fs::read_to_string(git.join("HEAD")) {
            if let Some(r) = head.trim().strip_prefix("ref: ") {
                println!("cargo:rerun-if-changed={}", git.join(r).display());
            }
        }
    }
    let out = Command::new("git").args(["rev-parse", "--short=12", "HEAD"]).current_dir(env!("CARGO_MANIFEST_DIR")).output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !text.trim().is_empty()).then(|| text.trim().to_owned())
}
