#!/usr/bin/env bash
# Measures the detector's power on real samples: interleaved A/B runs of the same build where the
# candidate also has a plugin busy-waiting SPIN µs on every Bash PreToolUse (a real slowdown of
# that scenario), TRIALS times per cell; prints how often hook.PreToolUse.Bash is "regressed".
# Usage: scripts/gate-power.sh [TRIALS] [ROUNDS...]   (SPINS="0 400 800" to choose the busy-waits)
set -euo pipefail
cd "$(dirname "$0")/.."
trials="${1:-20}"
scripts/build.sh
bin=target/release/chronicle
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/busy" && cp target/release/libfixture_busy.so "$dir/busy/"
echo "| n (rounds) | candidate | median measured change | regressed (hook.PreToolUse.Bash) |"
echo "|---|---|---|---|"
shift || true
rounds=("$@")
[ ${#rounds[@]} -eq 0 ] && rounds=(30 100)
for n in "${rounds[@]}"; do
    for spin in ${SPINS:-0 400 800}; do
        export CHRONICLE_CONFIG="$dir/config-$spin.toml"
        printf '[plugins.fixture-busy]\nspin_us = %s\n' "$spin" > "$CHRONICLE_CONFIG"
        hits=0
        : > "$dir/changes"
        # spin 0: a true A/A (same build, same plugins); otherwise the candidate also runs the
        # busy-wait plugin (its load cost is part of the slowdown).
        extra=()
        [ "$spin" != 0 ] && extra=(--candidate-plugins "$dir/busy")
        for t in $(seq 1 "$trials"); do
            "$bin" regress ab --baseline-bin "$bin" --candidate-bin "$bin" "${extra[@]}" --runs "$n" --json > "$dir/r.json" || true
            python3 -c "import json; r=json.load(open('$dir/r.json')); print([s['change_pct'] for s in r['scenarios'] if s['name']=='hook.PreToolUse.Bash'][0])" >> "$dir/changes"
            if python3 -c "import json,sys; r=json.load(open('$dir/r.json')); sys.exit(0 if any(s['name']=='hook.PreToolUse.Bash' and s['verdict']=='regressed' for s in r['scenarios']) else 1)"; then
                hits=$((hits + 1))
            fi
        done
        median=$(python3 -c "import statistics; print('%+.1f %%' % statistics.median(float(l) for l in open('$dir/changes')))")
        label="A/A (same build)"
        [ "$spin" != 0 ] && label="+ plugin busy-waiting ${spin} µs"
        echo "| $n | $label | $median | $hits / $trials |"
    done
done
