"""Peak RSS per process of a process tree, sampled: `python3 peak-rss.py PID OUT.json [INTERVAL]`.

Polls /proc every INTERVAL seconds (default 0.5) while PID lives, reading each descendant's VmHWM (the kernel's
own high-water mark of its resident set, so a sample after the peak still sees it; only a process's last
INTERVAL before it exits goes unseen). Writes {pid: {"command": ..., "peak_kb": ...}} for PID and every
descendant seen. Used by scripts/bench-scale for the per-worker peak (GNU time only reports the largest process).
"""
import json
import os
import sys
import time


def children(pid):
    found = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as f:
                found += [int(c) for c in f.read().split()]
    except OSError:
        pass
    return found


def sample(pid, peaks):
    stack = [pid]
    while stack:
        p = stack.pop()
        try:
            with open(f"/proc/{p}/status") as f:
                hwm = next((int(line.split()[1]) for line in f if line.startswith("VmHWM:")), 0)
            with open(f"/proc/{p}/cmdline", "rb") as f:
                command = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except (OSError, StopIteration):
            continue
        entry = peaks.setdefault(str(p), {"command": command, "peak_kb": 0})
        entry["peak_kb"] = max(entry["peak_kb"], hwm)
        stack += children(p)


def main():
    pid, out = int(sys.argv[1]), sys.argv[2]
    interval = float(sys.argv[3]) if len(sys.argv) > 3 else 0.5
    peaks = {}
    while os.path.exists(f"/proc/{pid}"):
        sample(pid, peaks)
        with open(out + ".tmp", "w") as f:
            json.dump(peaks, f)
        os.replace(out + ".tmp", out)
        time.sleep(interval)


if __name__ == "__main__":
    main()
