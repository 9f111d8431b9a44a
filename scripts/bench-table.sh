#!/usr/bin/env bash
# Issue #21's table for one or more builds, interleaved row by row so that every build meets
# the same machine: each row's command runs for every build before the next row starts.
#   scripts/bench-table.sh ROUNDS DIR...
# Each DIR holds chronicle, chronicle-host and the built-in plugins (scripts/build.sh, then
# copy target/release's out: a build left in target/ changes under you). Prints one line per
# row and build (the `chronicle bench` lines that matter), then the cold rows.
# BENCH_HARNESS=PATH runs every row's `chronicle-host bench` from that build (one older than
# a flag a row uses); the binaries measured are still each DIR's.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:?usage: scripts/bench-table.sh ROUNDS DIR...}"
shift
[ $# -ge 1 ] || { echo "usage: scripts/bench-table.sh ROUNDS DIR..." >&2; exit 2; }
bash_events="$(mktemp)"
trap 'rm -f "$bash_events"' EXIT
python3 scripts/bash-events.py 400 > "$bash_events"
# Start from the disk, as a machine that has not run them lately would.
for d in "$@"; do
    for f in "$d"/*; do dd if="$f" iflag=nocache count=0 status=none 2>/dev/null || true; done
done
row() {
    local name="$1" dir="$2" args="$3" keep="$4"
    # shellcheck disable=SC2086 # $args is a list of flags
    echo "== $name $dir $("${BENCH_HARNESS:-$dir/chronicle-host}" bench $args --binary "$dir/chronicle" 2>&1 | grep -E "$keep" | tr -s ' ' | tr '\n' '|')"
}
for _ in $(seq "$rounds"); do
    for d in "$@"; do
        # The issue's session rows: every event type, distinct commands, no Write (the two
        # large Write events have their own row); then the whole session, Writes included.
        row "1 client" "$d" "--session --skip-tool Write --distinct --runs 10" "^chronicle|^cat"
        row "2 clients" "$d" "--session --skip-tool Write --concurrency 2 --distinct --runs 10" "^chronicle|^cat"
        row "4 clients" "$d" "--session --skip-tool Write --concurrency 4 --distinct --runs 5" "^chronicle|^cat"
        row "8 clients" "$d" "--session --skip-tool Write --concurrency 8 --distinct --runs 5" "^chronicle|^cat"
        row "1 client, with the Writes" "$d" "--session --distinct --runs 10" "^chronicle|^cat"
        row "2 clients, with the Writes" "$d" "--session --concurrency 2 --distinct --runs 10" "^chronicle|^cat"
        row "400 Bash, 16 clients" "$d" "--session $bash_events --concurrency 16 --distinct --runs 2" "^chronicle|^cat"
        row "scenarios" "$d" "--runs 100" "Write|PreToolUse.Bash |reference"
    done
done
python3 scripts/bench-cold.py 40 "$@"
python3 scripts/bench-after-idle.py 8 "$@"
