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
# Needs the Rust target (added with rustup when missing) and `musl-gcc` for the C the host's
# library compiles (Debian's musl-tools, installed when running as root with apt-get).
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
if ! command -v musl-gcc >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq musl-tools >/dev/null
    fi
    if ! command -v musl-gcc >/dev/null 2>&1; then
        echo "musl client: musl-gcc is missing (Debian: apt-get install musl-tools)" >&2
        exit 1
    fi
fi
flags=(--locked --quiet --target "$triple" -p chronicle --bin chronicle)
[ "$profile" = release ] && flags+=(--release)
cargo build "${flags[@]}" >&2
echo "${CARGO_TARGET_DIR:-target}/$triple/$profile/chronicle"
