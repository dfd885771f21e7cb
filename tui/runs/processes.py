"""A run's processes: is a pid still our launcher, the whole tree and process group of a
run (from /proc, or `ps` where there is none), signals to all of them, waiting for them to go."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path


def command_line(pid: int) -> str | None:
    """The process's command line, or None when there is no such process (or it is a zombie)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        return raw.replace(b"\0", b" ").decode(errors="replace").strip() or None
    except FileNotFoundError:
        return None
    except OSError:
        pass
    try:  # no /proc (macOS)
        done = subprocess.run(["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, timeout=5)
        return done.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def is_run_process(pid: int) -> bool:
    """The pid is alive and is this run's run_sft.sh (not a recycled pid)."""
    cmd = command_line(pid)
    return cmd is not None and "run_sft.sh" in cmd


def process_group(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


@dataclass
class ProcessTable:
    """One reading of the process table: each process's parent and process group."""

    parent: dict[int, int]
    group: dict[int, int]

    @classmethod
    def read(cls) -> "ProcessTable":
        parent, group = {}, {}
        try:
            entries = os.listdir("/proc")
        except OSError:
            return cls._read_ps()
        for entry in entries:
            if not entry.isdigit():
                continue
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            # the command name (field 2) may hold spaces and parentheses: state, ppid, pgrp follow the last ')'
            fields = stat.rsplit(")", 1)[1].split()
            parent[int(entry)], group[int(entry)] = int(fields[1]), int(fields[2])
        return cls(parent, group)

    @classmethod
    def _read_ps(cls) -> "ProcessTable":  # no /proc (macOS)
        done = subprocess.run(["ps", "-A", "-o", "pid=,ppid=,pgid="], capture_output=True, text=True, timeout=10)
        parent, group = {}, {}
        for line in done.stdout.splitlines():
            pid, ppid, pgid = (int(x) for x in line.split())
            parent[pid], group[pid] = ppid, pgid
        return cls(parent, group)

    @cached_property
    def children(self) -> dict[int, list[int]]:
        children: dict[int, list[int]] = {}
        for child, ppid in self.parent.items():
            children.setdefault(ppid, []).append(child)
        return children

    def descendants(self, pid: int) -> list[int]:
        """pid's children, grandchildren, ... (torchrun's workers included), parents before children."""
        found, queue = [], [pid]
        while queue:
            for child in self.children.get(queue.pop(0), []):
                found.append(child)
                queue.append(child)
        return found


def run_processes(pid: int, pgid: int | None) -> set[int]:
    """Every live process of the run: the script, its descendants, and its process group when the
    script leads one (run by sft-tui or detached: setsid). A hand-started `--foreground` run shares
    the user's shell's group, so only its descendants count then."""
    table = ProcessTable.read()
    found = set()
    if command_line(pid) is not None:
        found.add(pid)
        found.update(table.descendants(pid))
    if pgid is not None and pgid == pid:
        found.update(p for p, group in table.group.items() if group == pgid)
    return {p for p in found if command_line(p) is not None}


def training_processes(pid: int) -> list[int]:
    """The deepest llamafactory processes under pid: the trainer itself, or torchrun's workers
    (SIGABRT to torchrun or the launcher would abort them instead of stopping cleanly)."""
    table = ProcessTable.read()
    lf = [p for p in table.descendants(pid) if any(mark in (command_line(p) or "") for mark in ("llamafactory", "launcher.py"))]
    return [p for p in lf if not any(q in lf for q in table.descendants(p))]


def signal_all(pids, sig) -> None:
    for p in pids:
        try:
            os.kill(p, sig)
        except (ProcessLookupError, PermissionError):
            pass


def wait_gone(pids: set[int], timeout: float) -> set[int]:
    deadline = time.monotonic() + timeout
    alive = {p for p in pids if command_line(p) is not None}
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = {p for p in alive if command_line(p) is not None}
    return alive
