#!/usr/bin/env python3
"""CPU time of the `chronicle` client process itself, per event, against a warm resident host.

    scripts/client-cpu.py [ROUNDS] BIN_DIR...

Each BIN_DIR holds chronicle, chronicle-host and the four built-in plugins (scripts/build.sh,
then copy target/release's out). Every build gets a home of its own and a resident host
started by a first event; then, in each round and for each build in turn, 800 PreToolUse Bash
events (one process each, spawned directly, stdin from a pipe) are timed. Per event: the
client's user + system time from wait4's rusage (the kernel's exact runtime, split by ticks;
it includes the exec and the exit), its minor faults, and its wall time. The host's CPU is
not in these numbers (scripts/host-cpu.sh measures that).

The client is a third of what an event costs the machine; at 4 clients on 2 cores every
microsecond of it is one the other clients wait for (BENCHMARKS.md, twenty-first session).
"""
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

import hook_runs
import resident_hosts

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PER_ROUND = 800


def first_bash_event():
    with open(os.path.join(ROOT, "tests/corpus/session.jsonl")) as f:
        for line in f:
            e = json.loads(line)
            if e["hook_event_name"] == "PreToolUse" and e.get("tool_name") == "Bash":
                return json.dumps(e).encode()
    raise SystemExit("no Bash PreToolUse in the corpus")


def run(client, payload, env, n):
    cpu = faults = wall = 0.0
    for _ in range(n):
        pid, started = hook_runs.spawn([client, "hook"], payload, env)
        _, _, ru = os.wait4(pid, 0)
        wall += time.perf_counter() - started
        cpu += ru.ru_utime + ru.ru_stime
        faults += ru.ru_minflt
    return cpu / n * 1e6, faults / n, wall / n * 1e6


def main():
    args = sys.argv[1:]
    rounds = int(args.pop(0)) if args and args[0].isdigit() else 4
    if not args:
        raise SystemExit(__doc__)
    payload = first_bash_event()
    parent = tempfile.mkdtemp(prefix="chronicle-client-cpu-")
    base = hook_runs.clean_env()
    builds = []
    for b in args:
        b = os.path.abspath(b)
        home = hook_runs.new_home(parent, b)
        env = dict(base, CHRONICLE_HOME=home, XDG_RUNTIME_DIR=home)
        client = os.path.join(b, "chronicle")
        run(client, payload, env, 3)  # makes the database and starts the resident host
        time.sleep(0.5)
        builds.append((b, client, env, []))
    try:
        for _ in range(rounds):
            for _, client, env, results in builds:
                results.append(run(client, payload, env, PER_ROUND))
    finally:
        for _, _, env, _ in builds:
            resident_hosts.stop(env["CHRONICLE_HOME"], wait_s=0)
        shutil.rmtree(parent, ignore_errors=True)
    print(f"{rounds} rounds of {PER_ROUND} events; per event: the client's CPU (µs), minor faults, wall (µs)")
    for b, _, _, results in builds:
        cpus = sorted(r[0] for r in results)
        walls = sorted(r[2] for r in results)
        print(f"{b:32} cpu {' '.join(f'{c:5.0f}' for c in cpus)} (median {statistics.median(cpus):.0f})"
              f"  faults {statistics.median(r[1] for r in results):5.1f}"
              f"  wall {' '.join(f'{w:5.0f}' for w in walls)}")


if __name__ == "__main__":
    main()
