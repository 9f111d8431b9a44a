#!/usr/bin/env python3
"""What starting `chronicle-host` and loading each built-in plugin costs, for several builds.

Usage: scripts/bench-starts.py ROUNDS BIN_DIR...   (each with chronicle-host and the built-in
plugins). Per round, in a shuffled order, each build's `chronicle-host --version` is started and
waited for, and each of its plugins is `dlopen`ed (RTLD_NOW, as the host loads them) in a fresh
process that times only the call. Prints, per build, the p50 and p10 of each and the page faults
each took (`wait4`'s and `getrusage`'s counts: deterministic, where the times are at the machine's
mercy). This is the cost a cold event pays before any of Chronicle's own work: relocating the
position-independent host and each plugin (BENCHMARKS.md, twenty-fifth session).
"""
import os
import random
import statistics
import subprocess
import sys
import time

import hook_runs

if len(sys.argv) < 3:
    raise SystemExit(__doc__)
ROUNDS = int(sys.argv[1])
DIRS = [os.path.abspath(d) for d in sys.argv[2:]]
DEVNULL = os.open(os.devnull, os.O_WRONLY)


def start(host: str) -> tuple[float, int]:
    """Wall time (ms) and minor faults of one `chronicle-host --version`."""
    began = time.perf_counter()
    pid = os.posix_spawn(host, [host, "--version"], {}, file_actions=[(os.POSIX_SPAWN_DUP2, DEVNULL, 1)])
    _, _, usage = os.wait4(pid, 0)
    return (time.perf_counter() - began) * 1000, usage.ru_minflt


# Run in a fresh interpreter: a forked child of this one would copy this process's pages on
# write as the call allocates, hundreds of microseconds that are not the plugin's.
LOAD = """
import ctypes, resource, sys, time
ctypes.CDLL("libgcc_s.so.1", mode=2)  # the host has it already: not the plugin's cost
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
began = time.perf_counter_ns()
ctypes.CDLL(sys.argv[1], mode=2)  # RTLD_NOW, as the host loads plugins
took = time.perf_counter_ns() - began
print(took, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def load(path: str) -> tuple[float, int]:
    """Time (µs) of one `dlopen` in a fresh process, and the faults taken meanwhile."""
    out = subprocess.run([sys.executable, "-c", LOAD, path], capture_output=True, text=True, check=True).stdout
    took, faults = out.split()
    return int(took) / 1000, int(faults)


def main():
    samples = {}
    for _ in range(ROUNDS):
        order = list(DIRS)
        random.shuffle(order)
        for d in order:
            samples.setdefault((d, "chronicle-host --version (ms)"), []).append(start(os.path.join(d, "chronicle-host")))
            for p in hook_runs.PLUGINS:
                samples.setdefault((d, f"dlopen {p} (µs)"), []).append(load(os.path.join(d, f"lib{p}.so")))
            time.sleep(0.005)
    print(f"{ROUNDS} rounds")
    for (d, what), got in samples.items():
        times = sorted(t for t, _ in got)
        faults = statistics.median(f for _, f in got)
        print(f"{d}: {what:44s} p50 {statistics.median(times):9.3f}  p10 {times[len(times) // 10]:9.3f}  faults {faults:.0f}")


main()
