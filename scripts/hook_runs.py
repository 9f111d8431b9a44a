"""Homes and `chronicle hook` processes for the benchmark scripts (`import hook_runs` from
scripts/): a home with the four built-in plugins, an environment without the caller's
Chronicle settings, and one hook process started the way Claude Code starts it."""
import os
import shutil
import tempfile
import time

PLUGINS = ["chronicle_bash_guard", "chronicle_secret_guard", "chronicle_file_guard", "chronicle_session_context"]


def clean_env() -> dict:
    """This process's environment without CHRONICLE_* and CLAUDE_PROJECT_DIR."""
    return {k: v for k, v in os.environ.items() if not k.startswith("CHRONICLE_") and k != "CLAUDE_PROJECT_DIR"}


def new_home(parent: str, bin_dir: str, with_db_from: str | None = None) -> str:
    """A private home under `parent` with the built-in plugins of `bin_dir` installed, and a
    copy of the database in `with_db_from` if given."""
    home = tempfile.mkdtemp(dir=parent)
    os.chmod(home, 0o700)
    plugins = os.path.join(home, "plugins")
    os.mkdir(plugins, 0o700)
    for p in PLUGINS:
        shutil.copy(os.path.join(bin_dir, f"lib{p}.so"), plugins)
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
