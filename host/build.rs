//! Link settings and the build's identity.
//!
//! - `chronicle-host` stays position-independent (the toolchain's default): it parses what the
//!   model wrote and loads native plugins, and ASLR keeps its own code (SQLite included) at an
//!   address an exploit must first find. Relocating itself costs a start ~0.15 ms of CPU (~90
//!   copy-on-write faults, ~70 since regex-syntax builds in one codegen unit; `-z
//!   pack-relative-relocs` saved none of it), paid on the cold paths only (BENCHMARKS.md,
//!   twenty-second and twenty-fifth sessions).
//! - `chronicle`, the client Claude Code starts for every event, links statically on
//!   Linux/glibc: the dynamic loader costs more than everything else it does (~0.25 ms a
//!   start). Every ordinary build does it (`cargo build --release`, `cargo install`), not only
//!   `scripts/build.sh`. Stable cargo cannot give one binary `crt-static` (workspace-wide it
//!   refuses the plugin cdylibs), and `-static` alone is not enough: rustc still asks for
//!   `-lgcc_s -lc …` after `-Bdynamic` (the result segfaults at start). So the client's link
//!   line also gets a directory, searched before the system's, where each of those names is a
//!   linker script for the static archive (`libgcc_s.so` → `libgcc_eh.a`, `libc.so` →
//!   `libc.a`, …): what `crt-static` links, chosen per binary. Without the archives (no
//!   `libc6-dev`), the client stays dynamic and the build says so.
//! - `chronicle-host` takes the unwinder from `libgcc_eh.a`, not `libgcc_s.so.1`: that
//!   library's constructor runs `cpuid` over and over, each a trap to the hypervisor in a VM
//!   (~0.15 ms of every start here). The built-in plugins do the same (`plugins/build.rs`),
//!   or the first of them loaded would bring the library back (BENCHMARKS.md, twenty-sixth
//!   session). The linker scripts for both are made by `build-support/static_link.rs`.
//! - `CHRONICLE_COMMIT`: the commit built from (`git` at build time; the variable of the same
//!   name when building from a tarball), for `chronicle --version` and `doctor`.
use std::path::Path;
use std::process::Command;

#[path = "../build-support/static_link.rs"]
mod static_link;

fn main() {
    if static_link::linux_gnu() {
        static_client();
        static_unwinder();
    }
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=../build-support/static_link.rs");
    println!("cargo:rerun-if-env-changed=CC");
    println!("cargo:rerun-if-env-changed=CHRONICLE_COMMIT");
    let commit = std::env::var("CHRONICLE_COMMIT").ok().filter(|c| !c.is_empty()).or_else(git_commit).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=CHRONICLE_COMMIT={commit}");
}

/// The libraries rustc links a glibc binary against, and the archive each stands for.
const STATIC_FOR: &[(&str, &[&str])] = &[
    static_link::UNWINDER,
    ("c", &["libc.a", "libgcc_eh.a", "libgcc.a"]),
    ("m", &["libm.a"]),
    ("rt", &["librt.a"]),
    ("pthread", &["libpthread.a"]),
    ("dl", &["libdl.a"]),
    ("util", &["libutil.a"]),
];

fn static_client() {
    match static_link::scripts("static-client", STATIC_FOR) {
        Ok(dir) => {
            println!("cargo:rustc-link-arg-bin=chronicle=-static");
            println!("cargo:rustc-link-arg-bin=chronicle=-no-pie");
            println!("cargo:rustc-link-arg-bin=chronicle=-L{}", dir.display());
        }
        Err(e) => println!(
            "cargo:warning={e}: the `chronicle` client is linked dynamically (~0.25 ms more per event; install glibc's static libraries, e.g. libc6-dev)"
        ),
    }
}

/// `chronicle-host` stays dynamic (it loads plugins) but takes the unwinder from the archive.
fn static_unwinder() {
    match static_link::scripts("static-unwinder", &[static_link::UNWINDER]) {
        Ok(dir) => println!("cargo:rustc-link-arg-bin=chronicle-host=-L{}", dir.display()),
        Err(e) => println!("cargo:warning={e}: `chronicle-host` loads libgcc_s.so.1 (~0.15 ms more per start in a VM)"),
    }
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
        // Only files that exist: cargo counts a missing one as changed, and rebuilt the host
        // on every build in a checkout without packed refs.
        if git.join("packed-refs").exists() {
            println!("cargo:rerun-if-changed={}", git.join("packed-refs").display());
        }
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
