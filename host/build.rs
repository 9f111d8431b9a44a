//! Links the executables as non-PIE binaries on Linux: a position-independent executable pays
//! for its dynamic relocations (and the pages they dirty) at every start, and `chronicle hook`
//! starts once per Claude Code event (`chronicle-host` too, when it handles one in process).
//! Plugins stay PIC.
fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" {
        println!("cargo:rustc-link-arg-bin=chronicle-host=-no-pie");
    }
}
