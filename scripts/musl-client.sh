#!/usr/bin/env bash
# Builds the `chronicle` client (the process Claude Code starts for every event) against musl
# and prints its path; exits 1, saying why on stderr, when this machine cannot.
#   scripts/musl-client.sh release|debug
#
# Why: glibc sizes the CPU caches at every process start (init_cacheinfo: ~90 `cpuid`
# instructions), and in a virtual machine each `cpuid` traps to the hypervisor (7.3 µs here,
# BENCHMARKS.md "The client on musl"): 0.7 ms of CPU before `main`, more than everything else the
# client does. musl's start runs none. Only the client: `chronicle-host` loads the plugins,
# which are glibc libraries, so it stays a glibc program.
#
# Needs only the Rust target (added with rustup when missing): the client's crates are pure
# Rust (no `host` feature, see host/Cargo.toml), so no musl C toolchain is involved.
set -euo pipefail
cd "$(dirname "$0")/.."
profile="${1:?usage: scripts/musl-client.sh release|debug}"
[ "$(uname -s)" = Linux ] || { echo "musl client: Linux only" >&2; exit 1; }
triple="$(uname -m)-unknown-linux-musl"
has_target() { compgen -G "$(rustc --print target-libdir --target "$triple" 2>/dev/null)/libstd-*.rlib" >/dev/null; }
if ! has_target; then
    if ! command -v rustup >/dev/null 2>&1 || ! rustup target add "$triple" >/dev/null 2>&1; then
        echo "musl client: the Rust target $triple is not installed (rustup target add $triple)" >&2
        exit 1
    fi
fi
# Without the `host` feature: the client's part of the library only (host/Cargo.toml), so
# none of SQLite, ring, rustls or abi_stable is compiled for musl.
flags=(--locked --quiet --target "$triple" -p chronicle --bin chronicle --no-default-features)
[ "$profile" = release ] && flags+=(--release)
# Linked at a fixed address (static, not static-pie): a position-independent client relocates
# itself at every start and takes its data pages copy-on-write; measured, 26 faults instead of
# 32 and ~40 µs less CPU per event, a sixth of the client (BENCHMARKS.md, twenty-first
# session). What is given up is ASLR for a process that lives a fraction of a millisecond and
# parses nothing unsafely: it reads the event's bytes, hands them to the host and relays the
# answer. (A RUSTFLAGS in the environment overrides this; the client then still works.)
flags+=(--config "target.$triple.rustflags=[\"-C\", \"relocation-model=static\"]")
cargo build "${flags[@]}" >&2
client="${CARGO_TARGET_DIR:-target}/$triple/$profile/chronicle"
if command -v readelf >/dev/null && ! LC_ALL=C readelf -h "$client" 2>/dev/null | grep -q 'Type:[[:space:]]*EXEC'; then
    echo "musl client: $client is position-independent (RUSTFLAGS set?): each event costs ~40 µs more" >&2
fi
echo "$client"
