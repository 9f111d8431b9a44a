#!/usr/bin/env bash
# The performance gate: measure `chronicle hook` (release build, built-in plugins) per event
# type together with the calibration workload, and compare against the committed baseline
# (bench/baseline.json) with calibration cancelling machine drift. Exit 1 on a regression.
# Re-record the baseline after an intended change: scripts/gate.sh --record
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --workspace --locked --quiet
bin=target/release/chronicle
if [ "${1:-}" = "--record" ]; then
    exec "$bin" bench --runs 60 --out bench/baseline.json
fi
"$bin" bench --runs 60 --out target/gate-candidate.json
summary="${GITHUB_STEP_SUMMARY:-/dev/null}"
"$bin" regress compare --baseline bench/baseline.json --candidate target/gate-candidate.json --scenario hook. --markdown | tee -a "$summary"
