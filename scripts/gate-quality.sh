#!/usr/bin/env bash
# The CI gate's quality on this machine, measured the way the gate measures (regress ab,
# --scenario hook., 3 % band, ROUNDS rounds): TRIALS runs of the release build against itself
# (A/A: any regressed scenario is a false alarm), and TRIALS runs where the candidate also has a
# plugin busy-waiting SPIN µs on every Bash PreToolUse (a real slowdown of that scenario; pick
# SPIN for the size you want, the table prints the measured median change).
# The gate fails only when both of its measurements regress: for independent runs its rates are
# about the squares of the single-run rates printed here.
# Usage: [SPIN=80] [ROUNDS=200] scripts/gate-quality.sh [TRIALS]
set -euo pipefail
cd "$(dirname "$0")/.."
trials="${1:-50}"
rounds="${ROUNDS:-200}"
spin="${SPIN:-80}"
scripts/build.sh
bin=target/release/chronicle
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/busy" && cp target/release/libfixture_busy.so "$dir/busy/"
printf '[plugins.fixture-busy]\nspin_us = %s\n' "$spin" > "$dir/config.toml"
alarms=0
hits=0
: > "$dir/aa" && : > "$dir/slow"
for t in $(seq 1 "$trials"); do
    "$bin" regress ab --runs "$rounds" --scenario hook. --json > "$dir/r.json" || true
    python3 - "$dir/r.json" "$dir/aa" <<'PY' && alarms=$((alarms + 1)) || true
import json, sys
r = json.load(open(sys.argv[1]))
open(sys.argv[2], "a").write(" ".join("%s=%+.2f" % (s["name"], s["change_pct"]) for s in r["scenarios"]) + "\n")
sys.exit(0 if any(s["verdict"] == "regressed" for s in r["scenarios"]) else 1)
PY
    CHRONICLE_CONFIG="$dir/config.toml" "$bin" regress ab --runs "$rounds" --scenario hook. --candidate-plugins "$dir/busy" --json > "$dir/r.json" || true
    python3 - "$dir/r.json" "$dir/slow" <<'PY' && hits=$((hits + 1)) || true
import json, sys
r = json.load(open(sys.argv[1]))
bash = [s for s in r["scenarios"] if s["name"] == "hook.PreToolUse.Bash"][0]
open(sys.argv[2], "a").write("%f\n" % bash["change_pct"])
sys.exit(0 if bash["verdict"] == "regressed" else 1)
PY
done
median=$(python3 -c "import statistics; print('%+.1f %%' % statistics.median(float(l) for l in open('$dir/slow')))")
echo "| rounds | trials | A/A: single runs with any scenario regressed | Bash +${spin} µs (median measured change $median): single runs regressed |"
echo "|---:|---:|---:|---:|"
echo "| $rounds | $trials | $alarms / $trials | $hits / $trials |"
