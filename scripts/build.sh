#!/usr/bin/env bash
# Builds the release binaries and every plugin. On Linux the `chronicle` client that goes out
# (target/release/chronicle, what `install`, the tarball and the benchmarks take) is the musl
# build of scripts/musl-client.sh: glibc's start alone costs a client ~0.7 ms of CPU in a
# virtual machine. Where musl cannot be had, it is cargo's own client, statically linked
# against glibc (host/build.rs); a machine without glibc's static archives (libc6-dev) gets a
# working but slower dynamic one. Either way this script says which it built.
# A later plain `cargo build --release` puts cargo's client back in target/release.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace --locked --quiet
client="${CARGO_TARGET_DIR:-target}/release/chronicle"
if [ "$(uname -s)" = Linux ]; then
    if musl="$(scripts/musl-client.sh release)"; then
        # A new file, not a write into cargo's (hard-linked) one.
        cp "$musl" "$client.musl" && mv -f "$client.musl" "$client"
    else
        echo "warning: $client is glibc's: each event pays glibc's start (~0.7 ms of CPU in a virtual machine)" >&2
    fi
    if ldd --version 2>&1 | grep -qiE 'glibc|gnu libc'; then
        linkage="$(ldd "$client" 2>&1 || true)"
        if ! grep -qE 'not a dynamic|statically linked' <<< "$linkage"; then
            echo "warning: $client is not statically linked; each event costs ~0.25 ms more" >&2
        fi
    fi
fi
