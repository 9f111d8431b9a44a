#!/usr/bin/env python3
"""What crash containment costs, as whole-process timings of `chronicle hook`.

1. A PreToolUse Bash event with bash-guard installed, with and without a quarantined plugin
   (a C plugin that segfaulted once) and with and without a suspended one (fixture-hang after
   three timeouts), interleaved round by round with `cat` on the same bytes.
2. The first event after a crash: a fresh build of the crashing plugin (which lifts its
   quarantine) is installed before each round, so every round's event crashes the resident
   host, is handed to a child, attributed and answered.

Usage: scripts/build.sh && python3 scripts/bench-containment.py [ROUNDS]
Prints a Markdown table (medians and p95 in ms, ratios against cat measured in the same run).
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REL = os.path.join(ROOT, "target", "release")
ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 200
EVENT = json.dumps({
    "session_id": "bench", "cwd": "/home/dev/p", "permission_mode": "default",
    "hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {"command": "ls -la"},
}).encode()
CRASH_C = r'''
#include <stdlib.h>
const char *chronicle_plugin_manifest(void) {
    return "{\"name\":\"c-crash\",\"version\":\"1\",\"abi_version\":1,\"events\":[\"PreToolUse\"],\"tool_matcher\":\"Bash\",\"failure_policy\":\"open\"}";
}
int chronicle_plugin_init(const char *c, size_t n) { (void)c; (void)n; return 0; }
char *chronicle_plugin_handle(const char *e, size_t n) { (void)e; (void)n; volatile int *p = 0; *p = 1; return 0; }
void chronicle_plugin_free(char *p) { free(p); }
/* build %d */
'''


def home(libs):
    d = tempfile.mkdtemp(prefix="chron-bench-")
    os.chmod(d, 0o700)
    os.mkdir(os.path.join(d, "plugins"), 0o700)
    for lib in libs:
        shutil.copy(os.path.join(REL, lib), os.path.join(d, "plugins", lib))
    return d


def build_crasher(d, n):
    src = os.path.join(d, "crash.c")
    with open(src, "w") as f:
        f.write(CRASH_C % n)
    tmp = os.path.join(d, ".crash.so")
    subprocess.run(["cc", "-shared", "-fPIC", "-O0", "-o", tmp, src], check=True)
    os.chmod(tmp, 0o644)
    os.rename(tmp, os.path.join(d, "plugins", "libc_crash.so"))


def run(argv, env, data=EVENT):
    t = time.perf_counter()
    p = subprocess.run(argv, input=data, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t, p.stdout


def env_for(d):
    e = dict(os.environ)
    e.update({"CHRONICLE_HOME": d, "HOME": "/home/dev"})
    return e


def main():
    client = [os.path.join(REL, "chronicle"), "hook"]
    plain = home(["libchronicle_bash_guard.so"])
    quarantined = home(["libchronicle_bash_guard.so"])
    build_crasher(quarantined, 0)
    suspended = home(["libchronicle_bash_guard.so", "libfixture_hang.so"])
    crash = home(["libchronicle_bash_guard.so"])
    envs = {k: env_for(v) for k, v in [("plain", plain), ("quarantined", quarantined), ("suspended", suspended), ("crash", crash)]}
    # Warm up: resident hosts started, the crasher quarantined, fixture-hang suspended.
    for name in ("plain", "quarantined", "suspended", "crash"):
        for _ in range(3):
            run(client, envs[name])
    hang = EVENT.replace(b"ls -la", b"hang-me")
    for _ in range(4):
        run(client, envs["suspended"], hang)
    time.sleep(0.5)
    samples = {k: [] for k in ("cat", "plain", "quarantined", "suspended", "first event after a crash")}
    for i in range(ROUNDS):
        samples["cat"].append(run(["cat"], envs["plain"])[0])
        samples["plain"].append(run(client, envs["plain"])[0])
        samples["quarantined"].append(run(client, envs["quarantined"])[0])
        samples["suspended"].append(run(client, envs["suspended"], hang)[0])
        build_crasher(crash, i + 1)
        dt, out = run(client, envs["crash"])
        assert b"deny" not in out
        samples["first event after a crash"].append(dt)
    cat = statistics.median(samples["cat"])
    base = statistics.median(samples["plain"])
    print(f"{ROUNDS} rounds, interleaved; PreToolUse Bash `ls -la` with bash-guard installed\n")
    print("| workload | p50 | p95 | p50 / cat | p50 / same event without it |")
    print("|---|---:|---:|---:|---:|")
    for k, v in samples.items():
        v = sorted(v)
        p50, p95 = statistics.median(v), v[int(len(v) * 0.95) - 1]
        print(f"| {k} | {p50 * 1e3:.2f} ms | {p95 * 1e3:.2f} ms | {p50 / cat:.2f}x | {p50 / base:.2f}x |")
    for d in (plain, quarantined, suspended, crash):
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
