//! Linking a glibc artifact against static archives in place of the shared libraries rustc
//! names, shared by the build scripts of `chronicle` (`host/build.rs`) and of the built-in
//! plugins (`plugins/build.rs`), which include this file as a module.
//!
//! rustc asks for `-lgcc_s -lc …` whatever the crate wants; the linker takes the first
//! `lib<name>.so` on its search path, and a linker script of that name stands for the archives
//! it lists (`GROUP ( libgcc_eh.a )`). A directory of such scripts, searched before the
//! system's, therefore turns chosen libraries static for one artifact.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The unwinder: `libgcc_s.so.1`, whose loading runs `__cpu_indicator_init` (a string of
/// `cpuid` instructions, each a trap to the hypervisor in a VM: ~0.15 ms of every start here),
/// replaced by the same code from the static archive, where nothing calls that constructor.
pub const UNWINDER: (&str, &[&str]) = ("gcc_s", &["libgcc_eh.a", "libgcc.a"]);

/// Whether the target is Linux with glibc (what the scripts are written for).
pub fn linux_gnu() -> bool {
    std::env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux")
        && std::env::var("CARGO_CFG_TARGET_ENV").is_ok_and(|env| env == "gnu")
}

/// The absolute path of `archive` as the C compiler links it, if it is installed.
fn find(archive: &str) -> Option<String> {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let out = Command::new(&cc).arg(format!("-print-file-name={archive}")).output().ok()?;
    let path = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    // Not found: cc echoes the bare name back.
    (Path::new(&path).is_absolute() && Path::new(&path).is_file()).then_some(path)
}

/// Makes `$OUT_DIR/<dir>` hold a linker script `lib<name>.so` for each `(name, archives)`, and
/// returns the directory to put on the link line (`-L`). Err names the archive that is missing
/// or the write that failed: the artifact then links against the shared libraries as usual.
pub fn scripts(dir: &str, libs: &[(&str, &[&str])]) -> Result<PathBuf, String> {
    let out_dir = std::env::var("OUT_DIR").map_err(|_| "no OUT_DIR".to_owned())?;
    let dir = Path::new(&out_dir).join(dir);
    let mut texts = Vec::new();
    for (name, archives) in libs {
        let paths: Vec<String> = archives.iter().map(|a| find(a).ok_or_else(|| format!("no {a}"))).collect::<Result<_, _>>()?;
        texts.push((format!("lib{name}.so"), format!("GROUP ( {} )\n", paths.join(" "))));
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    for (file, text) in texts {
        std::fs::write(dir.join(&file), text).map_err(|e| format!("{file}: {e}"))?;
    }
    Ok(dir)
}
