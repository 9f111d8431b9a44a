#!/usr/bin/env bash
# Measures the CI gate's false-alarm rate on real samples: N fresh `chronicle bench` runs of an
# unchanged build, each compared with the committed baseline (recorded at another time), with
# the gate's noise band. With SPIN_US=<µs>, the runs also load a plugin that busy-waits that
# long on every Bash PreToolUse (a real slowdown), and the count is the gate's detections.
# Usage: [SPIN_US=300] [GATE_BAND=20] scripts/gate-false-alarms.sh [N]
set -euo pipefail
cd "$(dirname "$0")/.."
n="${1:-20}"
scripts/build.sh
bin=target/release/chronicle
extra=()
if [ "${SPIN_US:-0}" != 0 ]; then
    dir=$(mktemp -d)
    trap 'rm -rf "$dir"' EXIT
    mkdir -p "$dir/busy" && cp target/release/libfixture_busy.so "$dir/busy/"
    printf '[plugins.fixture-busy]\nspin_us = %s\n' "$SPIN_US" > "$dir/config.toml"
    export CHRONICLE_CONFIG="$dir/config.toml"
    extra=(--extra-plugins "$dir/busy")
fi
alarms=0
for i in $(seq 1 "$n"); do
    "$bin" bench --runs 150 --out "target/fa-$i.json" "${extra[@]}" >/dev/null
    if ! "$bin" regress compare --baseline bench/baseline.json --candidate "target/fa-$i.json" --scenario hook. --noise-band "${GATE_BAND:-20}" --json > "target/fa-$i.report.json"; then
        alarms=$((alarms + 1))
    fi
    python3 -c "import json; r=json.load(open('target/fa-$i.report.json')); print('run $i:', ', '.join('%s %+.1f %% %s' % (s['name'], s['change_pct'], s['verdict']) for s in r['scenarios']))"
done
echo "regressed: $alarms of $n comparisons against bench/baseline.json (SPIN_US=${SPIN_US:-0}, band ${GATE_BAND:-20} %)"
