#!/usr/bin/env python3
"""The slowest events of the bundled session replayed by N clients at once, and where their time went.

Usage: scripts/session-slowest.py BIN_DIR [CLIENTS=2] [ROUNDS=5]
BIN_DIR holds chronicle, chronicle-host and the built-in plugins (e.g. target/release after
scripts/build.sh). Each client replays tests/corpus/session.jsonl in order through a resident
host, then `cat` does the same for reference. Prints p50/p99 of both, the 20 slowest events, and,
from the stage metrics, for events over 3 ms: hook.total, the sum of its named stages, and the
rest (time before the host's first stage: waiting for a host or for a core).
"""
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BIN = os.path.abspath(sys.argv[1])
CLIENTS = int(sys.argv[2]) if len(sys.argv) > 2 else 2
ROUNDS = int(sys.argv[3]) if len(sys.argv) > 3 else 5
PLUGINS = ["chronicle_bash_guard", "chronicle_secret_guard", "chronicle_file_guard", "chronicle_session_context"]
STAGES = ("hook.read", "resident.receive", "hook.parse", "hook.redact", "hook.discover", "hook.index", "hook.load",
          "cache.lookup", "hook.load.cache_miss", "hook.dispatch", "hook.merge", "hook.git", "store.wait")


def main():
    home = tempfile.mkdtemp(prefix="chronicle-slowest-")
    os.chmod(home, 0o700)
    os.mkdir(os.path.join(home, "plugins"), 0o700)
    for p in PLUGINS:
        shutil.copy(os.path.join(BIN, f"lib{p}.so"), os.path.join(home, "plugins"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHRONICLE_")}
    env.update(CHRONICLE_HOME=home, XDG_RUNTIME_DIR=home, CHRONICLE_RESIDENT_IDLE_S="5")
    with open(os.path.join(ROOT, "tests/corpus/session.jsonl"), "rb") as f:
        events = [line for line in f if line.strip()]

    def run(argv, data):
        t = time.perf_counter()
        subprocess.run(argv, input=data, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        return time.perf_counter() - t

    client = [os.path.join(BIN, "chronicle"), "hook"]
    for e in events[:5]:
        run(client, e)
    time.sleep(0.3)
    samples, lock = [], threading.Lock()

    def replay(argv):
        mine = [(argv[0], i, run(argv, e)) for _ in range(ROUNDS) for i, e in enumerate(events)]
        with lock:
            samples.extend(mine)

    for argv in (client, ["cat"]):
        threads = [threading.Thread(target=replay, args=(argv,)) for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    for name in (client[0], "cat"):
        v = sorted(s[2] for s in samples if s[0] == name)
        print(f"{os.path.basename(name):10} p50 {statistics.median(v) * 1e3:.2f} ms  p99 {v[int(len(v) * 0.99)] * 1e3:.2f} ms")
    print("\nslowest chronicle events (whole process):")
    for _, i, t in sorted((s for s in samples if s[0] == client[0]), key=lambda s: -s[2])[:20]:
        e = json.loads(events[i])
        print(f"  {t * 1e3:6.2f} ms  #{i} {e['hook_event_name']} {e.get('tool_name', '')} {len(events[i])} bytes")
    db = sqlite3.connect(os.path.join(home, "chronicle.db"))
    marks = ",".join("?" * len(STAGES))
    rows = db.execute(
        f"""SELECT event_id, MAX(CASE WHEN name = 'hook.total' THEN value END) AS total,
                   SUM(CASE WHEN name IN ({marks}) THEN value ELSE 0 END),
                   MAX(CASE WHEN name = 'store.group' THEN value END)
            FROM metrics GROUP BY event_id HAVING total > 3 ORDER BY total DESC LIMIT 20""",
        STAGES,
    ).fetchall()
    print("\nevents over 3 ms to the write: hook.total, named stages, the rest, group size")
    for event_id, total, stages, group in rows:
        print(f"  event {event_id:5}: {total:6.2f} ms  {stages:6.2f} ms  {total - stages:6.2f} ms  {int(group or 1)}")
    time.sleep(6)
    shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
