#!/usr/bin/env bash
# The performance gate: measure `chronicle hook` (release build, built-in plugins) per event
# type together with the calibration workload, and compare against the committed baseline
# (bench/baseline.json) with calibration cancelling machine drift. Exit 1 on a regression.
# Re-record the baseline after an intended change: scripts/gate.sh --record, ideally run in a
# fresh clone, which is how CI measures (a long-lived target dir measured ~10 % faster).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/build.sh
bin=target/release/chronicle
if [ "${1:-}" = "--record" ]; then
    exec "$bin" bench --runs 150 --out bench/baseline.json
fi
summary="${GITHUB_STEP_SUMMARY:-/dev/null}"
# Calibrated stored-baseline comparisons of an unchanged build reached +17 % (one scenario, one
# run in 32; BENCHMARKS.md): the gate flags changes beyond 20 % that are significant in two
# measurements; a real +25-40 % slowdown was caught 8 times in 8. Smaller regressions are the
# job of `chronicle regress ab` (interleaved, 3 % band). scripts/gate-false-alarms.sh measures
# this band's false alarms (and, with SPIN_US, its detections).
band="${GATE_BAND:-20}"
gate() {
    "$bin" bench --runs 150 --out "target/gate-candidate-$1.json" >/dev/null
    "$bin" regress compare --baseline bench/baseline.json --candidate "target/gate-candidate-$1.json" --scenario hook. --noise-band "$band" --markdown | tee -a "$summary"
}
# A regression must show in two independent measurements: a burst from a noisy neighbour
# during one run (measured here: +48 % on one scenario, once in 20 runs) is not a regression,
# while a real slowdown is there both times.
if gate 1; then
    exit 0
fi
echo "regression in the first measurement; measuring again to confirm"
gate 2
