#!/usr/bin/env bash
# Builds the release binaries and every plugin. On Linux/glibc the `chronicle` client comes out
# statically linked (host/build.rs: the dynamic loader costs more than everything else the client
# does); this script checks that it did, since a machine without glibc's static archives
# (libc6-dev) gets a working but slower dynamic client.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace --locked --quiet
client="${CARGO_TARGET_DIR:-target}/release/chronicle"
if [ "$(uname -s)" = Linux ] && ldd --version 2>&1 | grep -qiE 'glibc|gnu libc'; then
    linkage="$(ldd "$client" 2>&1 || true)"
    if ! grep -qE 'not a dynamic|statically linked' <<< "$linkage"; then
        echo "warning: $client is not statically linked; each event costs ~0.25 ms more" >&2
    fi
fi
