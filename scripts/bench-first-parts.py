#!/usr/bin/env python3
"""Where a configuration's first event goes: what it costs without a database, without a
plugin index, and without either, as ratios to `cat` fed the same bytes in the same round.

Per round, in a shuffled order, each a whole process timed from spawn to exit, no resident
host running in any home:
  cat          `cat` on the event (the reference)
  first        an empty home (the built-in plugins only): no database, no plugin index
  db-only      the database is there, the plugin index is not (every plugin is loaded and
               its layout checked to learn what it subscribes to)
  index-only   the plugin index is there, the database is not (the client makes it)
  both         both there: what `after-idle` in bench-cold.py measures

The homes of a round are made before it (one in-process event each, then the database or the
index removed), untimed. The events are PreToolUse Bash, each command new.

Usage: scripts/bench-first-parts.py [ROUNDS] [BIN_DIR]   (default 40 rounds, target/release)
"""
import glob
import os
import random
import shutil
import statistics
import sys
import tempfile
import time

import hook_runs
import resident_hosts

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 40
BIN = os.path.abspath(sys.argv[2] if len(sys.argv) > 2 else "target/release")
WORKLOADS = ("cat", "first", "db-only", "index-only", "both")


def event(n):
    return ('{"hook_event_name":"PreToolUse","session_id":"s","tool_name":"Bash",'
            '"tool_input":{"command":"ls -la # %d"},"cwd":"/tmp","transcript_path":"/tmp/t"}' % n).encode()


def main():
    client = os.path.join(BIN, "chronicle")
    parent = tempfile.mkdtemp(prefix="chronicle-first-parts-")
    base = hook_runs.clean_env()
    base["CHRONICLE_RESIDENT_IDLE_S"] = "2"

    def env(home, **extra):
        return hook_runs.home_env(base, home, **extra)

    def prepared(keep_db, keep_index):
        home = hook_runs.new_home(parent, BIN)
        hook_runs.timed([client, "hook"], event(10**6), env(home, CHRONICLE_RESIDENT="0"))
        if not keep_db:
            for f in glob.glob(os.path.join(home, "chronicle.db*")):
                os.remove(f)
        if not keep_index:
            os.remove(os.path.join(home, "plugin-index.json"))
        return home

    samples = {w: [] for w in WORKLOADS}
    jobs = list(WORKLOADS)
    for n in range(ROUNDS):
        homes = {
            "first": hook_runs.new_home(parent, BIN),
            "db-only": prepared(True, False),
            "index-only": prepared(False, True),
            "both": prepared(True, True),
        }
        time.sleep(0.05)
        random.shuffle(jobs)
        for job in jobs:
            if job == "cat":
                samples[job].append(hook_runs.timed(["cat"], event(n), base))
                continue
            samples[job].append(hook_runs.timed([client, "hook"], event(n), env(homes[job])))
            # Let the host this event started settle before the next measurement.
            time.sleep(0.03)
        for home in homes.values():
            resident_hosts.stop(home)
    cat50 = statistics.median(samples["cat"])
    print(f"{ROUNDS} rounds, {BIN}")
    print(f"{'workload':<12} {'p50 ms':>8} {'p50/cat':>8}")
    for k, v in samples.items():
        print(f"{k:<12} {statistics.median(v):8.3f} {statistics.median(v) / cat50:7.2f}x")
    time.sleep(2.5)
    shutil.rmtree(parent, ignore_errors=True)


if __name__ == "__main__":
    main()
