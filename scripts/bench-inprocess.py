#!/usr/bin/env python3
"""In-process events (`CHRONICLE_RESIDENT=0`) of several builds, as ratios to `cat`.

Usage: scripts/bench-inprocess.py ROUNDS BIN_DIR...   (each with chronicle, chronicle-host and
the built-in plugins). Per round, each build handles one of the bundled session's Bash events
(made distinct) in its own home, in a shuffled order, 20 ms apart (so that one build's exiting
process does not share the CPUs with the next measurement), then `cat` gets one. Prints the
median per build and its ratio to `cat`'s, then each build's stage metrics (means over its
events after the fifth, from its database): where an in-process event's time goes.
"""
import importlib.util
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time

import hook_runs
import resident_hosts

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location("bench_cold", os.path.join(HERE, "bench-cold.py"))
argv, sys.argv = sys.argv, ["bench-cold.py", "1"]
bc = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bc)
if len(argv) < 3:
    raise SystemExit(__doc__)
rounds, dirs = int(argv[1]), [os.path.abspath(d) for d in argv[2:]]
events = bc.bash_events()
parent = tempfile.mkdtemp(prefix="bench-inprocess-")
homes = {d: hook_runs.new_home(parent, d) for d in dirs}
base = {k: v for k, v in os.environ.items() if not k.startswith("CHRONICLE_")}
took = {d: [] for d in dirs}
cat = []
for n in range(rounds):
    order = list(dirs)
    random.shuffle(order)
    for d in order:
        env = dict(base, CHRONICLE_HOME=homes[d], XDG_RUNTIME_DIR=homes[d], CHRONICLE_RESIDENT="0")
        took[d].append(bc.timed([os.path.join(d, "chronicle"), "hook"], bc.event(events, 1000 * n + dirs.index(d)), env))
        time.sleep(0.02)
    cat.append(bc.timed(["cat"], bc.event(events, n), base))
    time.sleep(0.02)
reference = statistics.median(cat)
print(f"{rounds} rounds; cat p50 {reference:.3f} ms")
for d in dirs:
    p50 = statistics.median(took[d])
    print(f"{d}: p50 {p50:.3f} ms = {p50 / reference:.2f}x cat")
for d in dirs:
    db = sqlite3.connect(os.path.join(homes[d], "chronicle.db"))
    rows = db.execute(
        "SELECT name, COUNT(*), AVG(value) FROM metrics WHERE event_id > 5 AND name NOT LIKE 'plugin.%'"
        " GROUP BY name ORDER BY AVG(value) DESC"
    ).fetchall()
    print(f"\n{d}: stage means (ms)")
    for name, count, mean in rows:
        print(f"  {name:28s} {count:5d} {mean:8.3f}")
for d in dirs:
    resident_hosts.stop(homes[d])
