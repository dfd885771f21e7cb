"""Watching a run: its log events (tui.runs.follower) plus how it ended (tui.runs.lifecycle), for the headless
`sft-tui monitor --plain/--json` and the monitor screen alike.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tui.runs.diagnoses import nan_loss_warning
from tui.runs.follower import Event, Follower
from tui.runs.lifecycle import ENDED, RunStatus, run_status
from tui.runs.logfiles import format_duration, tail_offset
from tui.runs.peaks import PeakRecorder
from tui.runs.speed import speed_text

# A log bigger than this is opened at its last lines (the numbers come from trainer_log.jsonl,
# which is read whole: one short line per logging step).
OPEN_AT_TAIL_BYTES = 4 * 1024 * 1024
TAIL_LINES = 200


class RunWatcher:
    def __init__(self, run_dir: Path, nvml=None):
        self.run_dir = Path(run_dir).resolve()
        self.status: RunStatus = run_status(self.run_dir)
        log = self.run_dir / "train.log"
        offset = 0
        if log.is_file() and os.path.getsize(log) > OPEN_AT_TAIL_BYTES:
            offset = tail_offset(log, TAIL_LINES)
        self.output_dir = Path(self.status.output_dir) if self.status.output_dir else None
        self.follower = Follower(self.run_dir, self.output_dir, offset)
        self.ended = False
        self.history_note: str | None = None  # why the run history could not record the run's end (one sentence)
        self.peaks = PeakRecorder(self.run_dir, nvml)  # its processes' peak GPU memory and host RAM (peaks.json)

    def poll(self) -> list[Event]:
        """New events; the last one is finished/failed/stopped/vanished once the run has ended."""
        if self.ended:
            return self.follower.poll()
        self.status = run_status(self.run_dir, self.output_dir)
        if self.status.status == "running" and self.status.pid:
            self.peaks.sample(self.status.pid)
        events = self.follower.poll()
        if self.status.status in ENDED:
            self.peaks.close()
            events += self.follower.poll()  # whatever was written between the two reads
            events.append(self.end_event(self.status))
            self.ended = True
            from tui.runs.recording import record_runs

            self.history_note = record_runs([self.run_dir])  # what it measured, into the run history (tui.history)
        return events

    def end_event(self, status: RunStatus) -> Event:
        f = self.follower
        if status.status == "finished":
            warning: dict[str, Any] = {"warning": nan_loss_warning(f.nan_step)} if f.nan_step is not None else {}
            versus = f.speed.at_end(f)
            if versus["estimated_seconds"] is not None or versus["estimated_tokens_per_second"] is not None:
                record_estimate_vs_actual(self.run_dir, versus)
                warning["estimate_vs_actual"] = versus
            return Event("finished", {"exit_code": 0, **f.final_metrics, "output_dir": status.output_dir, **warning},
                         f"{f.step}/{f.total_steps or f.step} steps"
                         + (f", train_loss {f.final_metrics['train_loss']}" if "train_loss" in f.final_metrics else "")
                         + f"; adapter and checkpoints in {status.output_dir}")
        if status.status == "failed" and status.exit_reason:  # run_sft.sh gave up before training
            return Event("failed", {"exit_code": status.exit_code, "cause": "setup", "reason": status.exit_reason},
                         status.exit_reason)
        if status.status == "failed":
            return f.failure(status.exit_code if status.exit_code is not None else 1)
        if status.status == "stopped":
            return Event("stopped", {"exit_code": status.exit_code, "step": f.step},
                         f"stopped at step {f.step}/{f.total_steps or '?'}; continue with `sft-tui run {self.run_dir} --resume`")
        return Event("vanished", {"step": f.step}, status.detail)


def record_estimate_vs_actual(run_dir: Path, versus: dict) -> None:
    """state.json's estimate_vs_actual, for calibrating the time estimate later; a read-only copy of a
    run directory (a post-mortem) is left as it is."""
    from tui.runs.lifecycle import write_state

    try:
        write_state(run_dir, estimate_vs_actual=versus)
    except OSError:
        pass


def exit_status_of(event: Event) -> int:
    """The exit status `monitor --plain` ends with: the run's own."""
    if event.kind == "finished":
        return 0
    code = event.data.get("exit_code")
    if event.kind == "failed":
        return code or 1
    if event.kind == "stopped":
        return 130 if code in (None, 0) else code
    return 1


def plain_line(event: Event, gpus=None) -> str | None:
    """One line for `monitor --plain`, or None for the events it does not print (raw log lines)."""
    if event.kind == "line":
        return None
    data = event.data
    if event.kind in ("progress", "metrics") and not data.get("final"):
        parts = [f"step {data['current_steps']}/{data['total_steps'] or '?'}"]
        # a progress line says where training is; only a metrics line has numbers of its own step
        if event.kind == "metrics" and isinstance(data.get("loss"), (int, float)):
            parts.append(f"loss {data['loss']:.4f}")
        if isinstance(data.get("eval_loss"), (int, float)):
            parts.append(f"eval_loss {data['eval_loss']:.4f}")
        if event.kind == "metrics" and isinstance(data.get("lr"), (int, float)):
            parts.append(f"lr {data['lr']:.2e}")
        parts.append(f"ETA {format_duration(data.get('remaining'))}")
        if data.get("speed"):
            parts.append(speed_text(data["speed"]))
        for sample in gpus or []:
            parts.append(f"GPU{sample.index} {sample.memory_used_mib / 1024:.1f}/{sample.memory_total_mib / 1024:.0f} GiB")
        return "  ".join(parts)
    if event.kind == "resumed":  # its text says so
        return event.text
    if event.kind == "finished" and event.data.get("warning"):
        return f"{event.kind}: {event.text}\n  warning: {event.data['warning']}"
    return f"{event.kind}: {event.text}"
