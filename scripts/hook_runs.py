"""Homes and `chronicle hook` processes for the benchmark and stress scripts (`import hook_runs`
from scripts/): a home with the four built-in plugins, an environment without the caller's
Chronicle settings, one hook process started the way Claude Code starts it, a Bash event's
decision, and what a home's database says afterwards."""
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time

import resident_hosts

PLUGINS = ["chronicle_bash_guard", "chronicle_secret_guard", "chronicle_file_guard", "chronicle_session_context"]


def clean_env() -> dict:
    """This process's environment without CHRONICLE_* and CLAUDE_PROJECT_DIR."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CHRONICLE_") and k != "CLAUDE_PROJECT_DIR"}


def new_home(parent: str | None, bin_dir: str, with_db_from: str | None = None, prefix: str | None = None,
             plugins: list = PLUGINS) -> str:
    """A private home under `parent` (None: the temporary directory) with `plugins` (the
    built-ins) of `bin_dir` installed, and a copy of the database in `with_db_from` if given."""
    home = tempfile.mkdtemp(dir=parent, prefix=prefix)
    os.chmod(home, 0o700)
    os.mkdir(os.path.join(home, "plugins"), 0o700)
    for p in plugins:
        shutil.copy(os.path.join(bin_dir, f"lib{p}.so"), os.path.join(home, "plugins"))
    if with_db_from:
        shutil.copy(os.path.join(with_db_from, "chronicle.db"), home)
        os.chmod(os.path.join(home, "chronicle.db"), 0o600)
    return home


def spawn(argv: list, payload: bytes, env: dict) -> tuple[int, float]:
    """Starts `argv` directly (no shell) with `payload` on stdin through a pipe and stdout and
    stderr on /dev/null. Returns its pid, for the caller to wait for, and `time.perf_counter()`
    right before the spawn (the pipe's making is not the process's time)."""
    r, w = os.pipe()
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        started = time.perf_counter()
        pid = os.posix_spawnp(argv[0], argv, env, file_actions=[
            (os.POSIX_SPAWN_DUP2, r, 0), (os.POSIX_SPAWN_DUP2, devnull, 1), (os.POSIX_SPAWN_DUP2, devnull, 2),
            (os.POSIX_SPAWN_CLOSE, w),
        ])
    finally:
        os.close(r)
        os.close(devnull)
    os.write(w, payload)
    os.close(w)
    return pid, started


def timed(argv: list, payload: bytes, env: dict) -> float:
    """Wall milliseconds of one process started by `spawn`, from its spawn to its exit."""
    pid, started = spawn(argv, payload, env)
    os.waitpid(pid, 0)
    return (time.perf_counter() - started) * 1e3


def home_env(base: dict, home: str, **extra) -> dict:
    """`base` with Chronicle's data and the resident host's socket in `home`, and `extra`."""
    env = dict(base, CHRONICLE_HOME=home, XDG_RUNTIME_DIR=home)
    env.update(extra)
    return env


def bash_event(command: str, tool_use_id: str) -> dict:
    """A PreToolUse Bash event for `command`."""
    return {
        "session_id": "s", "transcript_path": "/tmp/t", "cwd": "/tmp/p", "permission_mode": "default",
        "hook_event_name": "PreToolUse", "tool_name": "Bash", "tool_input": {"command": command},
        "tool_use_id": tool_use_id,
    }


def decide(client: str, event: dict, env: dict) -> tuple[int, str]:
    """Runs `client hook` on `event`: its exit code and the permission decision it answered
    (`none` without an answer)."""
    run = subprocess.run([client, "hook"], input=json.dumps(event).encode(), env=env, capture_output=True)
    out = run.stdout.decode()
    return run.returncode, json.loads(out)["hookSpecificOutput"]["permissionDecision"] if out.strip() else "none"


def query(home: str, sql: str) -> str:
    """`sql`'s result from the home's database, read-only, as the sqlite3 shell prints it."""
    return subprocess.run(["sqlite3", f"file:{home}/chronicle.db?mode=ro", sql], capture_output=True, text=True).stdout.strip()


def recorded(home: str) -> tuple[int, int]:
    """The events recorded, and how many distinct invocations (tool_use_id) they are."""
    return int(query(home, "SELECT count(*) FROM events")), int(query(home, "SELECT count(DISTINCT tool_use_id) FROM events"))


def finish(home: str, ok: bool) -> int:
    """A stress run's exit code: 0 and the home removed when `ok`, else 1 and the home kept."""
    if ok:
        shutil.rmtree(home, ignore_errors=True)
        return 0
    print(f"kept {home}")
    return 1


def storm(client, clients: int, disturb, stop: threading.Event, home: str) -> None:
    """Runs `client(k)` on `clients` threads while `disturb()` runs on another until `stop` is
    set (once every client is done); then lets a handed-over host record (it does so after its
    client relayed the answer) and stops the home's resident hosts."""
    disturber = threading.Thread(target=disturb)
    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads + [disturber]:
        t.start()
    for t in threads:
        t.join()
    stop.set()
    disturber.join()
    time.sleep(1.5)
    resident_hosts.stop(home)
