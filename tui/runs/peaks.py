"""The peak memory of a run, measured while a monitor follows it (tui.runs.watch.RunWatcher polls here):
per GPU, what NVML says the run's processes use (run_sft.sh and every process under it: the trainer,
torchrun's workers), and the host RAM (RSS) of that process tree. Peaks only grow; each new one is
written to the run directory's `peaks.json` (merged with what another monitor wrote, replaced whole), so
the run history (tui.runs.recording) reads them from the run's files like everything else it records.

NVML is the boundary (tui.hardware.nvidia.NvmlUsage, a fake in the tests); a machine without it measures
the host RAM only. Nothing here raises: a peak that cannot be read or written is simply not recorded.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from tui.hardware.nvidia import NvmlUsage
from tui.runs.processes import ProcessTable

PEAKS_FILE = "peaks.json"
GIB = 1024**3
MIB_PER_GIB = 1024


def process_tree(pid: int) -> set[int]:
    return {pid, *ProcessTable.read().descendants(pid)}


def rss_bytes(pid: int) -> int:
    """The process's resident set (from /proc/<pid>/statm); 0 when it cannot be read (gone, or no /proc)."""
    try:
        resident = int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0
    return resident * os.sysconf("SC_PAGE_SIZE")


def read_peaks(run_dir: Path) -> dict:
    """{"gpu_gib": {"0": 3.1, ...}, "host_gib": 1.2} from the run's peaks.json; {} without one."""
    try:
        data = json.loads((Path(run_dir) / PEAKS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    gpu = data.get("gpu_gib")
    if not isinstance(gpu, dict):
        gpu = {}
    host = data.get("host_gib")
    return {"gpu_gib": {str(k): float(v) for k, v in gpu.items() if isinstance(v, (int, float))},
            "host_gib": float(host) if isinstance(host, (int, float)) else None}


def peak_columns(run_dir: Path) -> dict:
    """The run history's columns for the peaks a monitor measured (none: the columns stay as they were)."""
    peaks = read_peaks(run_dir)
    gpu = peaks.get("gpu_gib") or {}
    return {"gpu_peak_gib": gpu or None, "gpu_peak_max_gib": max(gpu.values()) if gpu else None,
            "host_peak_gib": peaks.get("host_gib") or None}


class PeakRecorder:
    """Samples one run's process tree; `sample(pid)` on each poll of a running run, `close()` at its end."""

    def __init__(self, run_dir: Path, nvml=None):
        self.run_dir = Path(run_dir)
        self.usage: NvmlUsage | None = NvmlUsage(nvml)
        self.gpu_gib: dict[str, float] = {}
        self.host_gib = 0.0

    def sample(self, pid: int) -> None:
        try:
            pids = process_tree(pid)
        except (OSError, ValueError, IndexError):
            return
        grew = False
        host = round(sum(rss_bytes(p) for p in pids) / GIB, 4)
        if host > self.host_gib:
            self.host_gib, grew = host, True
        used = self.usage.process_memory_mib(pids) if self.usage else None
        if used is None and self.usage:  # no NVML here: do not ask again on every poll
            self.usage.close()
            self.usage = None
        for index, mib in (used or {}).items():
            gib = round(mib / MIB_PER_GIB, 3)
            if gib > self.gpu_gib.get(str(index), 0.0):
                self.gpu_gib[str(index)], grew = gib, True
        if grew:
            self._write()

    def _write(self) -> None:
        """The peaks so far, merged with the file's (another monitor's), written to a temp file and renamed."""
        known = read_peaks(self.run_dir)
        gpu = dict(known.get("gpu_gib") or {})
        for index, gib in self.gpu_gib.items():
            gpu[index] = max(gib, gpu.get(index, 0.0))
        host = max(self.host_gib, known.get("host_gib") or 0.0)
        path = self.run_dir / PEAKS_FILE
        temp = path.with_name(f".{PEAKS_FILE}.{os.getpid()}")
        try:
            temp.write_text(json.dumps({"gpu_gib": gpu, "host_gib": host}), encoding="utf-8")
            os.replace(temp, path)
        except OSError:  # a read-only or full run directory: the run goes on, unmeasured
            try:
                temp.unlink()
            except OSError:
                pass

    def close(self) -> None:
        if self.usage:
            self.usage.close()
            self.usage = None
