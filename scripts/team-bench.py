#!/usr/bin/env python3
"""Team-sync benchmarks (issue #16), printed as Markdown for BENCHMARKS.md.

  scripts/team-bench.py [--chronicle target/release/chronicle] [--backlog 100000] [--runs 100]

1. Throughput: `chronicle sync` of a backlog of --backlog events (the bundled session recorded
   through `chronicle hook`, its rows then copied with fresh ids) into a local server:
   events/s and the syncing process's peak RSS.
2. 20 machines: separate data directories, each replaying the bundled session through
   `chronicle hook`, syncing at once into one database; one sync is killed mid-batch and run
   again. Row counts per machine must be exact, with no duplicates.
3. The hook's latency against `cat` (`chronicle bench`) with no sync, while the resident host
   pushes every second and a 100,000-event sync runs beside it, and while the server is
   unreachable (connection refused; a black-holed address).

Starts its own throwaway PostgreSQL cluster (as `nobody` when run as root: initdb refuses root).
"""

import argparse
import glob
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SESSION = os.path.join(ROOT, "tests", "corpus", "session.jsonl")
TABLES = ["events", "plugin_calls", "faults", "violations", "metrics"]


def pg_bin():
    if os.environ.get("CHRONICLE_PG_BIN"):
        return os.environ["CHRONICLE_PG_BIN"]
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    if not found:
        sys.exit("PostgreSQL server binaries are missing (Debian's postgresql package)")
    return os.path.dirname(found[-1])


class Cluster:
    def __init__(self):
        self.bin = pg_bin()
        self.dir = tempfile.mkdtemp(prefix="chronicle-pg-bench-")
        self.root = os.geteuid() == 0
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        self.port = s.getsockname()[1]
        s.close()
        if self.root:
            shutil.chown(self.dir, "nobody", "nogroup")
        self.run("initdb", "-D", self.data, "-U", "chronicle", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=200"
        self.run("pg_ctl", "-D", self.data, "-l", os.path.join(self.dir, "log"), "-o", opts, "-w", "start")
        self.psql("postgres", "CREATE DATABASE team")

    @property
    def data(self):
        return os.path.join(self.dir, "data")

    def run(self, tool, *args):
        cmd = [os.path.join(self.bin, tool), *args]
        if self.root:
            cmd = ["runuser", "-u", "nobody", "--", *cmd]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, cwd=self.dir)

    def url(self):
        return f"postgresql://chronicle@127.0.0.1:{self.port}/team?sslmode=disable"

    def psql(self, db, sql):
        out = subprocess.run(
            [os.path.join(self.bin, "psql"), "-X", "-q", "-A", "-t", "-h", "127.0.0.1", "-p", str(self.port), "-U", "chronicle", "-d", db, "-c", sql],
            check=True, capture_output=True, text=True,
        )
        return out.stdout.strip()

    def stop(self):
        try:
            self.run("pg_ctl", "-D", self.data, "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def home(tag):
    d = tempfile.mkdtemp(prefix=f"chronicle-{tag}-")
    os.chmod(d, 0o700)
    return d


def env_for(h, **extra):
    e = dict(os.environ)
    for k in ["CHRONICLE_DB", "CHRONICLE_CONFIG", "CHRONICLE_PLUGIN_PATH", "CLAUDE_PROJECT_DIR", "CHRONICLE_SYNC_URL"]:
        e.pop(k, None)
    e.update({"CHRONICLE_HOME": h, "XDG_RUNTIME_DIR": h, "CHRONICLE_RESIDENT": "0"})
    e.update(extra)
    return e


def replay(chronicle, h, machine):
    env = env_for(h, CHRONICLE_MACHINE=machine)
    subprocess.run([chronicle, "install", "--settings", os.path.join(h, "settings.json")], env=env, check=True, capture_output=True)
    with open(SESSION) as f:
        for line in f:
            if line.strip():
                subprocess.run([chronicle, "hook"], input=line.encode(), env=env, check=True, capture_output=True)


def amplify(db, target):
    """Copies the recorded rows until there are at least `target` events (fresh ids)."""
    c = sqlite3.connect(db)
    while True:
        n = c.execute("SELECT max(id) FROM events").fetchone()[0]
        if n >= target:
            break
        take = min(n, target - n)
        c.executescript(f"""
        BEGIN;
        INSERT INTO events (id, kind, hook_event_name, session_id, tool_name, tool_use_id, agent_id, received_at_ns, payload,
                            payload_bytes, redacted, truncated, error, decision, exit_code, answer)
          SELECT id + {n}, kind, hook_event_name, session_id, tool_name, tool_use_id, agent_id, received_at_ns + {n},
                 payload, payload_bytes, redacted, truncated, error, decision, exit_code, answer FROM events WHERE id <= {take};
        INSERT INTO plugin_calls (event_id, plugin, version, path, status, decision, fault, wall_ns, cpu_ns, allocations,
                                  bytes_allocated, peak_live_bytes, memory_source, stdout_bytes, cache)
          SELECT event_id + {n}, plugin, version, path, status, decision, fault, wall_ns, cpu_ns, allocations, bytes_allocated,
                 peak_live_bytes, memory_source, stdout_bytes, cache FROM plugin_calls WHERE event_id <= {take};
        INSERT INTO metrics (event_id, name, value) SELECT event_id + {n}, name, value FROM metrics WHERE event_id <= {take};
        INSERT INTO violations (event_id, metric, subject, value, threshold)
          SELECT event_id + {n}, metric, subject, value, threshold FROM violations WHERE event_id <= {take};
        COMMIT;""")
    counts = {t: c.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
    c.close()
    return counts


def sync(chronicle, h, url, machine):
    """Runs `chronicle sync` under /usr/bin/time; returns (json, peak RSS MiB)."""
    out = subprocess.run(
        ["/usr/bin/time", "-f", "%M", chronicle, "sync", "--url", url, "--json"],
        env=env_for(h, CHRONICLE_MACHINE=machine), capture_output=True, text=True,
    )
    if out.returncode != 0:
        sys.exit(f"sync failed: {out.stderr}")
    rss_kb = int(out.stderr.strip().splitlines()[-1])
    return json.loads(out.stdout), rss_kb / 1024


def local_counts(h):
    c = sqlite3.connect(os.path.join(h, "chronicle.db"))
    counts = {t: c.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
    c.close()
    return counts


def team_counts(pg, machine):
    return {t: int(pg.psql("team", f"SELECT count(*) FROM chronicle.{t} WHERE machine = '{machine}'")) for t in TABLES}


def bench(chronicle, runs, extra_env):
    """`chronicle bench`'s table rows: scenario -> (p50/cat, p99/cat)."""
    h = home("bench")
    env = env_for(h, **extra_env)
    env.pop("CHRONICLE_RESIDENT")
    out = subprocess.run([chronicle, "bench", "--runs", str(runs)], env=env, capture_output=True, text=True, check=True)
    rows = {}
    for line in out.stdout.splitlines():
        m = re.match(r"(hook\.\S+)\s+\d+\s+.*?([\d.]+)×\s+([\d.]+)×", line)
        if m:
            rows[m.group(1)] = (float(m.group(2)), float(m.group(3)))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--chronicle", default=os.path.join(ROOT, "target", "release", "chronicle"))
    ap.add_argument("--backlog", type=int, default=100_000)
    ap.add_argument("--runs", type=int, default=100)
    ap.add_argument("--skip-latency", action="store_true")
    a = ap.parse_args()
    chronicle = os.path.abspath(a.chronicle)
    pg = Cluster()
    try:
        # 1. Throughput.
        h = home("backlog")
        replay(chronicle, h, "backlog")
        counts = amplify(os.path.join(h, "chronicle.db"), a.backlog)
        result, rss = sync(chronicle, h, pg.url(), "backlog")
        ev = result["pushed"]["events"]
        rows = sum(result["pushed"][k] for k in ["events", "plugin_calls", "faults", "violations", "metrics"])
        print("## Team sync throughput\n")
        print("| backlog | rows (all tables) | seconds | events/s | rows/s | peak RSS |")
        print("|---|---|---|---|---|---|")
        print(f"| {ev:,} events | {rows:,} | {result['seconds']:.2f} | {ev / result['seconds']:,.0f} | {rows / result['seconds']:,.0f} | {rss:.1f} MiB |")
        assert team_counts(pg, "backlog") == counts, "rows missing after the throughput run"

        # 2. Twenty machines at once, one killed mid-batch.
        homes = []
        for i in range(20):
            m = home(f"m{i:02}")
            replay(chronicle, m, f"dev-{i:02}")
            homes.append(m)
        amplify(os.path.join(homes[0], "chronicle.db"), 20_000)
        procs = [
            subprocess.Popen([chronicle, "sync", "--url", pg.url()], env=env_for(m, CHRONICLE_MACHINE=f"dev-{i:02}"), stdout=subprocess.DEVNULL)
            for i, m in enumerate(homes)
        ]
        while team_counts(pg, "dev-00")["events"] == 0:
            time.sleep(0.005)
        procs[0].send_signal(signal.SIGKILL)
        partial = team_counts(pg, "dev-00")["events"]
        for p in procs:
            p.wait()
        subprocess.run([chronicle, "sync", "--url", pg.url()], env=env_for(homes[0], CHRONICLE_MACHINE="dev-00"), check=True, stdout=subprocess.DEVNULL)
        exact = all(team_counts(pg, f"dev-{i:02}") == local_counts(m) for i, m in enumerate(homes))
        dupes = pg.psql("team", "SELECT count(*) FROM (SELECT 1 FROM chronicle.events GROUP BY machine, store_id, local_id HAVING count(*) > 1) d")
        print("\n## Twenty machines at once\n")
        print(f"20 machines pushed concurrently (dev-00 with {local_counts(homes[0])['events']:,} events, the rest the bundled session);")
        print(f"dev-00 killed after {partial:,} of its events were in, then run again: every table's row count per machine exact: "
              f"**{'yes' if exact else 'NO'}**; duplicate events: **{dupes}**.")

        # 3. The hook's latency while syncing / unreachable.
        if not a.skip_latency:
            cfg = os.path.join(home("cfg"), "config.toml")
            with open(cfg, "w") as f:
                f.write("[sync]\ninterval_s = 1\n")
            print("\n## The hook while syncing\n")
            print("`chronicle bench` (hook vs `cat`, same run), resident host warm:\n")
            print("| condition | PreToolUse.Bash p50/cat | p99/cat | UserPromptSubmit p50/cat | 482 KB Write p50/cat |")
            print("|---|---|---|---|---|")
            conditions = [
                ("no [sync]", {}, None),
                ("the resident host pushing its events every 1 s", {"CHRONICLE_SYNC_URL": pg.url(), "CHRONICLE_CONFIG": cfg}, None),
                ("the same + a 100k-event `chronicle sync` on this 2-core machine", {"CHRONICLE_SYNC_URL": pg.url(), "CHRONICLE_CONFIG": cfg}, "bg"),
                ("server refusing connections", {"CHRONICLE_SYNC_URL": "postgresql://chronicle@127.0.0.1:1/team?sslmode=disable", "CHRONICLE_CONFIG": cfg}, None),
                ("server black-holed (connect timeout)", {"CHRONICLE_SYNC_URL": "postgresql://chronicle@10.255.255.1:5432/team?sslmode=disable&connect_timeout=10", "CHRONICLE_CONFIG": cfg}, None),
            ]
            for name, extra, bg in conditions:
                side = None
                if bg:
                    hb = home("side")
                    src = sqlite3.connect(os.path.join(h, "chronicle.db"))
                    c = sqlite3.connect(os.path.join(hb, "chronicle.db"))
                    src.backup(c)
                    src.close()
                    os.chmod(os.path.join(hb, "chronicle.db"), 0o600)
                    c.execute("UPDATE identity SET store_id = lower(hex(randomblob(16)))")
                    c.commit()
                    c.close()
                    side = subprocess.Popen([chronicle, "sync", "--url", pg.url()], env=env_for(hb, CHRONICLE_MACHINE="side"), stdout=subprocess.DEVNULL)
                r = bench(chronicle, a.runs, extra)
                if side:
                    side.wait()
                bash = r.get("hook.PreToolUse.Bash", (0, 0))
                ups = r.get("hook.UserPromptSubmit", (0, 0))
                big = next((v for k, v in r.items() if k.startswith("hook.PostToolUse.Write")), (0, 0))
                print(f"| {name} | {bash[0]:.2f}× | {bash[1]:.2f}× | {ups[0]:.2f}× | {big[0]:.2f}× |")
    finally:
        pg.stop()


if __name__ == "__main__":
    main()
