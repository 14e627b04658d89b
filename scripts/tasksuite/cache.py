"""Atomic writes into the suite's cache (~/.cache/brickyard/tasksuite), which several benchmarks read at once."""
from __future__ import annotations

import json
import os
import shutil
import tempfile


def publish_directory(out_dir: str, write) -> str:
    """Runs `write(tmp)` on a fresh sibling directory and renames it to `out_dir`, so a concurrent reader (another
    benchmark sharing the cache) sees either no directory or a complete one. A stale `out_dir` (other settings) is
    moved aside to `out_dir.stale-<pid>` (kept, not deleted: the cache is shared)."""
    parent = os.path.dirname(os.path.abspath(out_dir))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=os.path.basename(out_dir) + ".tmp-", dir=parent)
    try:
        write(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # our own half-written copy; `out_dir` is untouched
        raise
    if os.path.exists(out_dir):
        os.rename(out_dir, f"{out_dir}.stale-{os.getpid()}-{os.path.basename(tmp)}")
    try:
        os.rename(tmp, out_dir)
    except OSError:  # another process published `out_dir` meanwhile (same settings, same bytes): keep theirs
        if not os.path.isdir(out_dir):
            raise
        shutil.rmtree(tmp)
    return out_dir


def write_json(path: str, value) -> None:
    """Writes `value` to `path` through a per-process temporary name and a rename (readers see all or nothing)."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(value, f)
    os.replace(tmp, path)
