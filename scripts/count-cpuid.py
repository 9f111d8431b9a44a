"""Counts the `cpuid` instructions a program executes, per object and address (a gdb script).

In a virtual machine each `cpuid` traps to the hypervisor (~9 µs on this project's VM), so a
process's count is a cost no profile inside the guest shows. Every `cpuid` that `objdump -d`
finds in each mapped object gets a breakpoint that counts and continues, armed at the first
instruction (the executable and the dynamic loader) and as each library is loaded (its
constructors included). Threads are followed.

Usage, e.g. one in-process event:
  CHRONICLE_HOME=H CHRONICLE_RESIDENT=0 gdb -q -batch \\
      -ex 'set args hook --in-process 1 < EVENT.json' -x scripts/count-cpuid.py DIR/chronicle-host
"""
import collections
import re
import subprocess

import gdb

counts = collections.Counter()
armed = set()


def cpuid_offsets(path):
    out = subprocess.run(["objdump", "-d", "--no-show-raw-insn", path], capture_output=True, text=True).stdout
    return [int(m.group(1), 16) for m in re.finditer(r"^\s*([0-9a-f]+):\s+cpuid", out, re.M)]


class Counting(gdb.Breakpoint):
    def __init__(self, address, tag):
        super().__init__(f"*{address:#x}", internal=True)
        self.tag = tag

    def stop(self):
        counts[self.tag] += 1
        return False


def arm():
    """Breakpoints in each object mapped from offset 0 and not armed yet (all position-independent)."""
    bases = {}
    for line in gdb.execute("info proc mappings", to_string=True).splitlines():
        p = line.split()
        if len(p) >= 6 and p[-1].startswith("/") and int(p[3], 16) == 0:
            bases.setdefault(p[-1], int(p[0], 16))
    for path, base in bases.items():
        if path not in armed:
            armed.add(path)
            for offset in cpuid_offsets(path):
                Counting(base + offset, (path.rsplit("/", 1)[-1], offset))


gdb.events.new_objfile.connect(lambda _: arm())
gdb.execute("set pagination off")
gdb.execute("starti")
arm()
gdb.execute("continue")
print("cpuid executed:", sum(counts.values()))
per_object = collections.Counter()
for (name, _), n in counts.items():
    per_object[name] += n
for name, n in per_object.most_common():
    print(f"{n:6d}  {name}")
for (name, offset), n in counts.most_common(10):
    print(f"{n:6d}  {name}+{offset:#x}")
