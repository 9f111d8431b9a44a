//! The built-in plugins' build script (each plugin's `Cargo.toml` names it): link the unwinder
//! from `libgcc_eh.a`, as `chronicle-host` does, so that loading a built-in never loads
//! `libgcc_s.so.1` and runs its constructor (~0.15 ms of `cpuid` traps in a VM; see
//! `host/build.rs`). A plugin built elsewhere links it as usual and still loads and works.

#[path = "../build-support/static_link.rs"]
mod static_link;

fn main() {
    println!("cargo:rerun-if-changed=../build.rs");
    println!("cargo:rerun-if-changed=../../build-support/static_link.rs");
    println!("cargo:rerun-if-env-changed=CC");
    if !static_link::linux_gnu() {
        return;
    }
    match static_link::scripts("static-unwinder", &[static_link::UNWINDER]) {
        Ok(dir) => println!("cargo:rustc-link-arg-cdylib=-L{}", dir.display()),
        Err(e) => println!("cargo:warning={e}: this plugin loads libgcc_s.so.1 (~0.15 ms more per start in a VM)"),
    }
}
