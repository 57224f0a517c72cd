#!/usr/bin/env python3
"""Where a process's resident memory is, from /proc/PID/smaps (Linux).

Used by bench/fleet_bench.py: RssSampler samples VmRSS every `period`
seconds in a thread and keeps the breakdown taken at the highest sample.
Standalone: `bench/rss_profile.py PID` prints one breakdown.

Categories (anonymous memory is classified by its mapping's shape):
  heap          the main arena ([heap], brk)
  arenas        glibc's per-thread arena heaps: private anonymous mappings
                whose start is 64 MiB aligned (HEAP_MAX_SIZE on 64-bit)
  stacks        [stack] and thread stacks: a private anonymous mapping
                directly above a PROT_NONE guard page
  anon_other    other private anonymous memory (mmap'd malloc chunks)
  files         file-backed mappings (the binary, libraries)
"""
import os
import sys
import threading
import time

ARENA_ALIGN = 64 << 20


def breakdown(pid):
    cats = {"heap": 0, "arenas": 0, "stacks": 0, "anon_other": 0, "files": 0}
    n_arenas = n_stacks = 0
    max_stack = 0
    prev_guard_end = None
    cur = None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            head = line.split(None, 1)[0]
            if "-" in head and not head.endswith(":"):
                parts = line.split()
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                perms = parts[1]
                path = parts[5] if len(parts) > 5 else ""
                if path == "[heap]":
                    cur = "heap"
                elif path == "[stack]":
                    cur = "stacks"
                elif path.startswith("/"):
                    cur = "files"
                elif path:
                    cur = "anon_other"
                elif perms.startswith("---"):
                    cur = None
                elif lo % ARENA_ALIGN == 0:
                    cur = "arenas"
                    n_arenas += 1
                elif prev_guard_end == lo:
                    cur = "stacks"
                    n_stacks += 1
                else:
                    cur = "anon_other"
                prev_guard_end = hi if (perms.startswith("---") and not path) else None
            elif head == "Rss:" and cur:
                kb = int(line.split()[1])
                cats[cur] += kb
                if cur == "stacks":
                    max_stack = max(max_stack, kb)
    cats["n_arenas"] = n_arenas
    cats["n_thread_stacks"] = n_stacks
    cats["n_max_stack_kb"] = max_stack
    return cats


def vmrss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fmt(b):
    return " ".join("%s=%.1fMB" % (k, v / 1024) if not k.startswith("n_") else "%s=%d" % (k, v)
                    for k, v in b.items())


class RssSampler:
    """Samples pid's VmRSS; .peak_kb, .peak_breakdown (at the highest sample)."""

    def __init__(self, pid, period=0.25):
        self.pid, self.period = pid, period
        self.peak_kb, self.peak_breakdown, self._taken_kb = 0, None, 0
        self._stop = False
        self._th = threading.Thread(target=self._run, daemon=True)
        self._th.start()

    def _run(self):
        while not self._stop:
            try:
                kb = vmrss_kb(self.pid)
                # a new high by 2 MB or more: take the (slower) breakdown
                if kb > self._taken_kb + 2048 or self.peak_breakdown is None:
                    self.peak_breakdown = breakdown(self.pid)
                    self._taken_kb = kb
                self.peak_kb = max(kb, self.peak_kb)
            except (OSError, ValueError):
                pass
            time.sleep(self.period)

    def stop(self):
        self._stop = True
        self._th.join()


if __name__ == "__main__":
    p = int(sys.argv[1])
    print("vmrss=%.1fMB %s" % (vmrss_kb(p) / 1024, fmt(breakdown(p))))
