#!/usr/bin/env bash
# CPU time a resident host spends per event (all its threads, from /proc/PID/task/*/schedstat)
# while the bundled session is replayed ROUNDS times, one event at a time, through the
# `chronicle` in BIN_DIR (default target/release) with the four built-in plugins.
#
#   scripts/host-cpu.sh [BIN_DIR] [ROUNDS]
#
# Compare two builds by running it on each, alternating: CPU time is what concurrent clients
# on a busy machine wait for, and it moves less with the machine's load than wall time does.
set -euo pipefail
cd "$(dirname "$0")/.."
bin="$(cd "${1:-target/release}" && pwd)"
rounds="${2:-5}"
session="$PWD/tests/corpus/session.jsonl"
home="$(mktemp -d)"
host=""
trap '[ -z "$host" ] || kill "$host" 2>/dev/null || true; rm -rf "$home"' EXIT
chmod 700 "$home"
mkdir -m 700 "$home/plugins"
for lib in bash_guard secret_guard session_context file_guard; do
    cp "$bin/libchronicle_$lib.so" "$home/plugins/"
done
export CHRONICLE_HOME="$home"
replay() {
    local n=0
    for _ in $(seq "$1"); do
        while IFS= read -r line; do
            [ -n "$line" ] || continue
            printf '%s' "$line" | "$bin/chronicle" hook >/dev/null
            n=$((n + 1))
        done < "$session"
    done
    echo "$n"
}
replay 1 >/dev/null # starts the host and warms it
for pid in $(pgrep -f -- "$bin/chronicle-host serve"); do
    if tr '\0' '\n' < "/proc/$pid/environ" 2>/dev/null | grep -qx "CHRONICLE_HOME=$home"; then host=$pid; fi
done
[ -n "$host" ] || { echo "no resident host started for $home" >&2; exit 1; }
cpu_ns() { cat /proc/"$host"/task/*/schedstat | awk '{s += $1} END {print s}'; }
before=$(cpu_ns)
started=$(date +%s%N)
events=$(replay "$rounds")
ended=$(date +%s%N)
after=$(cpu_ns)
echo "$bin: $events events, host CPU $(( (after - before) / 1000 / events )) µs per event, wall $(( (ended - started) / 1000 / events )) µs per event (incl. the shell)"
