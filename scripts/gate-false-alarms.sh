#!/usr/bin/env bash
# Measures the gate's false-alarm rate on real samples: N fresh `chronicle bench` runs on an
# unchanged build, each compared with the committed baseline (recorded at another time).
# Usage: scripts/gate-false-alarms.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-20}"
scripts/build.sh
bin=target/release/chronicle
alarms=0
for i in $(seq 1 "$n"); do
    "$bin" bench --runs 150 --out "target/fa-$i.json" >/dev/null
    if ! "$bin" regress compare --baseline bench/baseline.json --candidate "target/fa-$i.json" --scenario hook. --noise-band 30 --json > "target/fa-$i.report.json"; then
        alarms=$((alarms + 1))
    fi
done
echo "false alarms: $alarms of $n comparisons against bench/baseline.json"
