#!/usr/bin/env bash
# The floor of a client/server hook on this machine: a toy `chronicle` (read stdin, send it over a
# Unix socket, relay the reply) and a toy single-threaded server that burns SPIN µs of CPU per
# event, measured by `chronicle bench` exactly as the real client is (the bundled session, N
# clients at once, `cat` fed the same bytes in the same run).
#
#   scripts/handover-floor.sh [CLIENTS] [SPIN_US...]     (default: 4 clients, spins 0 and 180)
#
# Why: at 4 clients on 2 cores the real client's p50 stayed above `cat`'s, and the hand-over
# itself (client → host → client, a wake-up each way) was blamed. This measures a hand-over
# that does nothing else: if it sits well under `cat`, what is left is CPU per event, which is
# what to cut (BENCHMARKS.md, twenty-first session). Needs the musl target (as
# scripts/musl-client.sh) and a built `chronicle-host` in target/release (scripts/build.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
clients="${1:-4}"
shift || true
spins=("${@:-0 180}")
# shellcheck disable=SC2206 # one word per spin
spins=(${spins[*]})
work="$(mktemp -d)"
server=""
trap '[ -z "$server" ] || kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
mkdir -p "$work/toy/src/bin" "$work/bin"
cat > "$work/toy/Cargo.toml" <<'TOML'
[package]
name = "toy"
version = "0.1.0"
edition = "2021"
[workspace]
[profile.release]
panic = "abort"
TOML
cat > "$work/toy/src/bin/client.rs" <<'RS'
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
fn main() {
    let mut input = Vec::with_capacity(4096);
    std::io::stdin().read_to_end(&mut input).unwrap();
    let mut s = UnixStream::connect(env!("TOY_SOCKET")).unwrap();
    s.write_all(&input).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut reply = Vec::new();
    s.read_to_end(&mut reply).unwrap();
    std::io::stdout().write_all(&reply).unwrap();
}
RS
cat > "$work/toy/src/bin/server.rs" <<'RS'
use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
fn main() {
    let spin: u128 = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(0);
    let _ = std::fs::remove_file(env!("TOY_SOCKET"));
    let listener = UnixListener::bind(env!("TOY_SOCKET")).unwrap();
    for stream in listener.incoming() {
        let mut stream = stream.unwrap();
        let mut event = Vec::new();
        stream.read_to_end(&mut event).unwrap();
        let started = std::time::Instant::now();
        while started.elapsed().as_micros() < spin {}
        stream.write_all(b"").unwrap();
    }
}
RS
triple="$(uname -m)-unknown-linux-musl"
export TOY_SOCKET="$work/toy.sock"
(cd "$work/toy" && cargo build --quiet --release --target "$triple" --bin client && cargo build --quiet --release --bin server)
cp "$work/toy/target/$triple/release/client" "$work/bin/chronicle"
for spin in "${spins[@]}"; do
    "$work/toy/target/release/server" "$spin" &
    server=$!
    while [ ! -S "$TOY_SOCKET" ]; do sleep 0.01; done
    echo "== server burning $spin µs per event, $clients clients"
    target/release/chronicle-host bench --session --skip-tool Write --concurrency "$clients" --distinct --runs 3 \
        --binary "$work/bin/chronicle" 2>&1 | grep -E "P50|^chronicle|^cat"
    kill "$server"
    wait "$server" 2>/dev/null || true
    server=""
    rm -f "$TOY_SOCKET"
done
