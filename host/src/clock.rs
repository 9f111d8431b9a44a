//! Process-level clocks: when the process started, wall-clock time, and peak memory.
//!
//! The start timestamp is taken by an `.init_array` constructor, which runs after the dynamic
//! loader and before `main`: the earliest moment our own code can observe. What comes before
//! it (`execve` and dynamic linking, ~0.3 ms here) is visible only to an outside observer,
//! which is why the benchmarks time the whole process from outside as well.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

static START_MONOTONIC_NS: AtomicU64 = AtomicU64::new(0);

/// CLOCK_MONOTONIC in nanoseconds.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64).saturating_mul(1_000_000_000).saturating_add(ts.tv_nsec as u64)
}

extern "C" fn record_start() {
    START_MONOTONIC_NS.store(monotonic_ns(), Ordering::Relaxed);
}

#[cfg(target_os = "linux")]
#[used]
#[link_section = ".init_array"]
static RECORD_START: extern "C" fn() = record_start;

#[cfg(target_os = "macos")]
#[used]
#[link_section = "__DATA,__mod_init_func"]
static RECORD_START: extern "C" fn() = record_start;

/// Time since the process started (see the module docs for what "started" means).
pub fn since_start() -> Duration {
    let start = START_MONOTONIC_NS.load(Ordering::Relaxed);
    if start == 0 {
        record_start();
        return Duration::ZERO;
    }
    Duration::from_nanos(monotonic_ns().saturating_sub(start))
}

/// Wall-clock time as Unix nanoseconds.
pub fn unix_ns() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// Peak resident set size of this process, in bytes: its own, not inherited.
///
/// On Linux this is `VmHWM` from `/proc/self/status`. `getrusage`'s `ru_maxrss` survives
/// `exec`: a hook started by Claude Code (a ~200 MiB process) would report Claude Code's peak.
pub fn peak_rss_bytes() -> u64 {
    #[cfg(target_os = "linux")]
    if let Some(kib) = proc_self_status().as_deref().and_then(vm_hwm_kib) {
        return kib * 1024;
    }
    rusage_max_rss_bytes()
}

/// `/proc/self/status` in one `read` (~1.4 KB): the kernel writes the whole text for every
/// read call, so reading it piecemeal, as `read_to_string` does, costs twice as much (21 µs).
#[cfg(target_os = "linux")]
fn proc_self_status() -> Option<String> {
    use std::io::Read;
    let mut f = std::fs::File::open("/proc/self/status").ok()?;
    let mut buf = [0u8; 4096];
    let n = f.read(&mut buf).ok()?;
    if n == buf.len() {
        return std::fs::read_to_string("/proc/self/status").ok();
    }
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

/// The `VmHWM:` line of `/proc/<pid>/status`, in KiB.
fn vm_hwm_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line["VmHWM:".len()..].trim().trim_end_matches("kB").trim().parse().ok()
}

/// `ru_maxrss`: the larger of this process's peak and that of whatever process exec'd into it
/// (see [`peak_rss_bytes`]). Exact, and 70 times cheaper, for a process the small client
/// started (the resident host): it inherits only the client's few MiB. macOS has no `/proc`.
pub fn rusage_max_rss_bytes() -> u64 {
    // SAFETY: getrusage into a zeroed struct.
    unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut ru) != 0 {
            return 0;
        }
        // Linux reports kilobytes, macOS bytes.
        if cfg!(target_os = "macos") {
            ru.ru_maxrss as u64
        } else {
            (ru.ru_maxrss as u64) * 1024
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_hwm_is_read_from_a_status_file() {
        let status = "Name:\tchronicle\nVmPeak:\t   10000 kB\nVmHWM:\t    1804 kB\nVmRSS:\t    1700 kB\n";
        assert_eq!(vm_hwm_kib(status), Some(1804));
        assert_eq!(vm_hwm_kib("Name:\tx\n"), None);
    }
}
