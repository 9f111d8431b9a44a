#!/usr/bin/env python3
"""Peak size of the write-ahead log under a steady stream: the load of the e2e test
`a_steady_stream_keeps_the_write_ahead_log_within_its_bound` (4 clients x 600 of the bundled
session's events, no pause) against a build directory, in a fresh home with bash-guard and
secret-guard. Run it beside a CPU hog (`sh -c 'while :; do :; done' &` once per core) to see
the host on a saturated machine.

Usage: scripts/wal-soak.py [BIN_DIR]   (default target/release; prints the peak in MiB)
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target/release"))
CLIENTS, PER_CLIENT = 4, 600

lines = [l for l in open(os.path.join(ROOT, "tests/corpus/session.jsonl")).read().splitlines() if l.strip()]
home = tempfile.mkdtemp()
os.chmod(home, 0o700)
os.mkdir(os.path.join(home, "plugins"), 0o700)
for p in ["bash_guard", "secret_guard"]:
    shutil.copy(os.path.join(BIN, f"libchronicle_{p}.so"), os.path.join(home, "plugins"))
env = dict(os.environ, CHRONICLE_HOME=home)
wal = os.path.join(home, "chronicle.db-wal")
peak, stop = [0], threading.Event()


def sample():
    while not stop.is_set():
        try:
            peak[0] = max(peak[0], os.path.getsize(wal))
        except OSError:
            pass
        time.sleep(0.005)


def client(c):
    for i in range(PER_CLIENT):
        event = json.loads(lines[(c * PER_CLIENT + i) % len(lines)])
        event["soak"] = c * PER_CLIENT + i
        subprocess.run([os.path.join(BIN, "chronicle"), "hook"], input=json.dumps(event).encode(), stdout=subprocess.DEVNULL, env=env)


sampler = threading.Thread(target=sample)
sampler.start()
started = time.time()
threads = [threading.Thread(target=client, args=(c,)) for c in range(CLIENTS)]
for t in threads:
    t.start()
for t in threads:
    t.join()
stop.set()
sampler.join()
print(f"peak log {peak[0] / 2**20:.1f} MiB over {CLIENTS * PER_CLIENT} events in {time.time() - started:.1f} s ({home})")
