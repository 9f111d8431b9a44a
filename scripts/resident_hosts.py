"""The resident hosts serving a Chronicle home, found by their command line and environment
(shared by the benchmark and stress scripts: `import resident_hosts` from scripts/)."""
import os
import signal
import time


def serving(home: str) -> list[int]:
    """Pids of the `chronicle-host serve` processes whose CHRONICLE_HOME is `home`."""
    needle = f"CHRONICLE_HOME={home}".encode()
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")
            with open(f"/proc/{pid}/environ", "rb") as f:
                environ = f.read().split(b"\0")
        except OSError:
            continue
        if b"serve" in cmd and needle in environ:
            found.append(int(pid))
    return found


def stop(home: str, wait_s: float = 5.0) -> None:
    """Ends the resident hosts serving `home` (SIGTERM, as idling out would) and waits, up to
    `wait_s`, until they are gone (0: does not wait)."""
    pids = serving(home)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGCONT)
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.time() + wait_s
    while pids and time.time() < deadline:
        pids = [p for p in pids if os.path.exists(f"/proc/{p}") and open(f"/proc/{p}/stat").read().split()[2] != "Z"]
        time.sleep(0.002)
