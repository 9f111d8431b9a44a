//! Links the `chronicle` executable as a non-PIE binary on Linux: a position-independent
//! executable pays for tens of thousands of dynamic relocations (and the pages they dirty) at
//! every start, and `chronicle hook` starts once per Claude Code event. Plugins stay PIC.
fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "linux" {
        println!("cargo:rustc-link-arg-bin=chronicle=-no-pie");
    }
}
