#!/usr/bin/env python3
"""The cold paths of `chronicle hook`, as ratios to `cat` fed the same bytes in the same round.

Per round, in a shuffled order, each a whole process timed from spawn to exit:
  cat          `cat` on the event (the reference)
  warm         a resident host already serving this home
  in-process   CHRONICLE_RESIDENT=0, database present
  after-idle   no host (it idled out: stopped before the round), database and plugin index
               present: the client starts one
  first        an empty home: no host, no database (the first event of a configuration)
  installed    the first event after `chronicle install` (which creates the database and
               indexes the plugins' manifests; run before the round, untimed)

Usage: scripts/bench-cold.py [ROUNDS] [BIN_DIR ...]   (default 60 rounds, target/release)
With several BIN_DIRs (each holding chronicle, chronicle-host and the built-in plugins) their
workloads are interleaved in the same rounds: an A/B of two builds. The four built-in plugins
are installed in every home. The events are the bundled session's PreToolUse Bash events in
turn, each round's command made distinct (a `# round N` comment), as a session's commands are:
a repeated command would be answered from bash-guard's cache and never load or run it. Prints
p50/p90 and p50/cat per workload.
"""
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import hook_runs
import resident_hosts

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 60
BINS = [os.path.abspath(b) for b in (sys.argv[2:] or ["target/release"])]
WORKLOADS = ("warm", "in-process", "after-idle", "first", "installed")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def bash_events():
    with open(os.path.join(ROOT, "tests/corpus/session.jsonl")) as f:
        found = [json.loads(line) for line in f]
    found = [e for e in found if e["hook_event_name"] == "PreToolUse" and e.get("tool_name") == "Bash"]
    if not found:
        raise SystemExit("no Bash PreToolUse in the corpus")
    return found


def event(events, n):
    """The n-th event: the session's Bash events in turn, the command made distinct."""
    e = json.loads(json.dumps(events[n % len(events)]))
    e["tool_input"]["command"] += f" # round {n}"
    return json.dumps(e).encode()


def main():
    events = bash_events()
    payload = event(events, -1)
    parent = tempfile.mkdtemp(prefix="chronicle-cold-")
    base = hook_runs.clean_env()
    base["CHRONICLE_RESIDENT_IDLE_S"] = "2"

    def env(home, **extra):
        return hook_runs.home_env(base, home, **extra)

    samples = {"cat": []}
    setups = []
    for b in BINS:
        client = os.path.join(b, "chronicle")
        tag = f" {os.path.basename(os.path.dirname(client)) or b}" if len(BINS) > 1 else ""
        # A database to copy: made by one in-process event.
        template = hook_runs.new_home(parent, b)
        hook_runs.timed([client, "hook"], payload, env(template, CHRONICLE_RESIDENT="0"))
        warm_home = hook_runs.new_home(parent, b, template)
        for _ in range(3):
            hook_runs.timed([client, "hook"], payload, env(warm_home))
            time.sleep(0.05)
        in_process_home = hook_runs.new_home(parent, b, template)
        # The same home each time (its plugin index matches its plugin files), its host stopped.
        idle_home = hook_runs.new_home(parent, b, template)
        hook_runs.timed([client, "hook"], payload, env(idle_home, CHRONICLE_RESIDENT="0"))
        setups.append((b, client, tag, warm_home, in_process_home, idle_home))
        for w in WORKLOADS:
            samples[w + tag] = []
    jobs = [("cat", None)] + [(w, s) for s in setups for w in WORKLOADS]
    for n in range(ROUNDS):
        payload = event(events, n)
        random.shuffle(jobs)
        for job, setup in jobs:
            if job == "cat":
                samples["cat"].append(hook_runs.timed(["cat"], payload, base))
                continue
            b, client, tag, warm_home, in_process_home, idle_home = setup
            if job == "warm":
                dt = hook_runs.timed([client, "hook"], payload, env(warm_home))
            elif job == "in-process":
                dt = hook_runs.timed([client, "hook"], payload, env(in_process_home, CHRONICLE_RESIDENT="0"))
            elif job == "after-idle":
                resident_hosts.stop(idle_home)
                dt = hook_runs.timed([client, "hook"], payload, env(idle_home))
            elif job == "installed":
                home = hook_runs.new_home(parent, b)
                user = os.path.join(home, "userhome")
                os.makedirs(os.path.join(user, ".claude"))
                subprocess.run([os.path.join(b, "chronicle-host"), "install"], env=env(home, HOME=user),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
                dt = hook_runs.timed([client, "hook"], payload, env(home, HOME=user))
            else:
                dt = hook_runs.timed([client, "hook"], payload, env(hook_runs.new_home(parent, b)))
            samples[job + tag].append(dt)
            # Let a host started by this job finish warming up before the next measurement.
            time.sleep(0.03)
    cat50 = statistics.median(samples["cat"])
    print(f"{ROUNDS} rounds, {' '.join(BINS)}")
    print(f"{'workload':<24} {'p50 ms':>8} {'p90 ms':>8} {'p50/cat':>8}")
    for k, v in samples.items():
        v.sort()
        p90 = v[min(len(v) - 1, int(0.9 * len(v)))]
        print(f"{k:<24} {statistics.median(v):8.3f} {p90:8.3f} {statistics.median(v) / cat50:7.2f}x")
    time.sleep(2.5)
    shutil.rmtree(parent, ignore_errors=True)


if __name__ == "__main__":
    main()
