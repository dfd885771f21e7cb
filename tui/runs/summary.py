"""`sft-tui status`: one row per run, read through the monitor's own follower and end event
(tui.runs.watch), so a failed run gives the monitor's sentence and a resumed run the monitor's ETA.

Which runs: a run directory, a folder of them (`runs/`), or the folder `sft-tui export --out` was
given (it holds runs/).
"""

from __future__ import annotations

from pathlib import Path

from tui.runs.diagnoses import nan_loss_warning
from tui.runs.lifecycle import find_runs
from tui.runs.watch import RunWatcher


def runs_in(path: Path) -> list[Path]:
    """The run directories at `path`: itself, the runs in it, else those in its runs/ (export --out's)."""
    path = Path(path)
    return find_runs(path) or find_runs(path / "runs")


def run_summary(run_dir: Path) -> dict:
    """One row of `sft-tui status`: the status, where training got to, the time left, and for a run that
    failed or vanished the monitor's sentence as its detail. Writes nothing."""
    watcher = RunWatcher(run_dir)
    follower, status = watcher.follower, watcher.status
    while follower.poll():  # to the end of what the logs hold now
        pass
    detail = status.detail
    if status.status in ("failed", "vanished"):
        detail = watcher.end_event(status).text
    eta = follower.eta if status.status == "running" else None
    warning = nan_loss_warning(follower.nan_step or "?") if follower.nan_step is not None and status.status in (
        "finished", "running", "stopped") else None
    loss = follower.last_metrics.get("loss")
    return status.to_json() | {"detail": detail, "name": Path(run_dir).name, "step": follower.step or None,
                               "total_steps": follower.total_steps, "loss": loss if isinstance(loss, (int, float)) else None,
                               "eta_s": eta, "warning": warning}
