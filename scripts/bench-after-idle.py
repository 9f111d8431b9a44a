#!/usr/bin/env python3
"""The first event after a resident host idled out, as it happens in a session: a host that
served 20 events (its write-ahead log holding them) leaves after its idle limit (1 s here), and
the next event's process opens the database. `scripts/bench-cold.py`'s after-idle row stops the
host after one event, so its log is short; this one measures what a real idle-out leaves.

Usage: python3 scripts/bench-after-idle.py ROUNDS DIR [DIR...]   (each DIR: chronicle,
chronicle-host and the built-in plugin libraries side by side, e.g. a copy of target/release).
The four built-in plugins (libchronicle_*.so) are installed in each home.
Prints, per build, the median wall time of that first event (spawned with subprocess, stdin
piped), its ratio to `cat` fed the same bytes in the same rounds, and the log's size before it.

The reference is `cat` after the same 3 s pause: the first process after a pause pays for CPUs
woken from idle (on this KVM guest `cat` takes ~2.7 ms after 3 s of quiet, ~1.3 ms right after
another process), so a `cat` timed right after the event would flatter nothing and blame
Chronicle for the wake-up. The ratio to that warm `cat` is printed too.
"""
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

rounds = int(sys.argv[1])
bins = sys.argv[2:]
here = pathlib.Path(__file__).resolve().parent
events = subprocess.run([sys.executable, str(here / "bash-events.py"), str(rounds * 21 + 1)], capture_output=True, text=True, check=True).stdout.splitlines()
first, wal, cats, warm_cats = {b: [] for b in bins}, {b: [] for b in bins}, [], []


def timed(argv, stdin, env=None):
    t = time.perf_counter()
    subprocess.run(argv, input=stdin.encode(), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return (time.perf_counter() - t) * 1e3


for r in range(rounds):
    for b in bins:
        home = tempfile.mkdtemp(prefix="chronicle-idle-")
        os.chmod(home, 0o700)
        os.makedirs(home + "/plugins", mode=0o700)
        # The built-ins only: a build directory may also hold the test fixtures (a plugin that
        # hangs, one that panics), which no user installs.
        for f in os.listdir(b):
            if f.startswith("libchronicle_") and f.endswith(".so"):
                shutil.copy(os.path.join(b, f), home + "/plugins/")
        env = dict(os.environ, CHRONICLE_HOME=home, CHRONICLE_RESIDENT_IDLE_S="1")
        timed([b + "/chronicle", "hook"], events[-1], env)  # in process; starts the host
        time.sleep(0.3)
        for e in events[r * 20:(r + 1) * 20]:
            timed([b + "/chronicle", "hook"], e, env)
        time.sleep(3.0)  # the host idles out
        log = pathlib.Path(home, "chronicle.db-wal")
        wal[b].append(log.stat().st_size if log.exists() else 0)
        payload = events[rounds * 20 + r]
        first[b].append(timed([b + "/chronicle", "hook"], payload, env))
        warm_cats.append(timed(["cat"], payload))
        time.sleep(3.0)  # the same pause before the reference
        cats.append(timed(["cat"], payload))
        time.sleep(0.2)
        subprocess.run(["pkill", "-f", home])
        shutil.rmtree(home, ignore_errors=True)

cat, warm = statistics.median(cats), statistics.median(warm_cats)
print(f"{rounds} rounds; cat median {cat:.3f} ms after the same pause, {warm:.3f} ms right after the event")
for b in bins:
    m = statistics.median(first[b])
    print(f"{b}: first event after an idle-out {m:.3f} ms = {m / cat:.2f}x cat after the same pause"
          f" ({m / warm:.2f}x a warm cat); log before it {statistics.median(wal[b]):.0f} bytes")
