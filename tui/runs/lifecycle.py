"""Launching, finding and stopping runs: the bundle's run_sft.sh, whoever started it.

A run directory's files say what happened; nothing is remembered that the system can tell:

    run.pid     written by run_sft.sh itself (detached or --foreground), so a run started by hand
                with `nohup bash run_sft.sh --foreground &` is found like one started by sft-tui
    exit_code   written by run_sft.sh when llamafactory-cli returns, or when it exits before
                (no environment, no llamafactory-cli, --resume without a checkpoint)
    exit_reason written by run_sft.sh with exit_code on such an early exit: one line, what to do
    state.json  written by us: how we started it (command, time, process group) and whether we
                stopped it; never needed to tell a status, only to tell "stopped" from "failed"

Status is computed each time (`run_status`): running (the pid is alive and its command line is
run_sft.sh), finished (exit code 0 and the final metrics in the log), failed (another exit code;
exit_reason's line when run_sft.sh gave up before training),
stopped (we stopped it), vanished (the pid is gone and no exit code: killed, or the machine
rebooted), new (never started).
"""

from __future__ import annotations

import signal
import subprocess
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

from tui.runs.events import EventKind
from tui.runs.processes import (
    is_run_process,
    process_group,
    run_processes,
    signal_all,
    training_processes,
    wait_gone,
)
from tui.runs.rundir import (  # noqa: F401 - callers import these from here too
    STATE_FILE,
    RunError,
    output_dir_of,
    read_state,
    write_state,
)

ENDED: tuple[EventKind, ...] = ("finished", "failed", "stopped", "vanished")


# LLaMA-Factory finishes the current step and saves on SIGABRT when LLAMABOARD_ENABLED=1 (run_sft.sh sets it).
DEFAULT_GRACE_S = 60.0


TERM_GRACE_S = 10.0


@dataclass
class RunStatus:
    run_dir: str
    status: str
    pid: int | None
    exit_code: int | None
    output_dir: str | None
    started: str | None  # ISO time: state.json's, else run.pid's mtime
    detail: str = ""
    exit_reason: str | None = None  # run_sft.sh's one line when it exited before training

    def to_json(self) -> dict:
        return asdict(self)


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def read_exit_reason(run_dir: Path) -> str | None:
    try:
        lines = (run_dir / "exit_reason").read_text(encoding="utf-8", errors="replace").strip().splitlines()
    except OSError:
        return None
    return lines[0].strip() if lines and lines[0].strip() else None


def final_metrics_logged(run_dir: Path, output_dir: Path | None) -> bool:
    if output_dir and (output_dir / "train_results.json").is_file():
        return True
    from tui.runs.logfiles import last_lines

    try:
        lines = last_lines(run_dir / "train.log", 400)
    except OSError:
        return False
    return any("***** train metrics *****" in line for line in lines)


def reached_last_step(output_dir: Path | None) -> bool:
    """trainer_log.jsonl's last row is the last step (NaN losses included: they are rows too)."""
    from tui.runs.logfiles import read_trainer_log

    rows = read_trainer_log(output_dir) if output_dir else []
    last = rows[-1] if rows else {}
    return bool(last.get("total_steps")) and (last.get("current_steps") or 0) >= last["total_steps"]


def run_status(run_dir: Path, output_dir: Path | None = None) -> RunStatus:
    """The run's status, read afresh. `output_dir`: train.yaml's, when the caller has read it
    already (a watcher asks twice a second, and a running run's train.yaml does not change)."""
    run_dir = Path(run_dir)
    if not (run_dir / "run_sft.sh").is_file():
        raise RunError(f"{run_dir} is not a run directory (no run_sft.sh): export one with `sft-tui export`")
    state = read_state(run_dir)
    pid = _read_int(run_dir / "run.pid")
    exit_code = _read_int(run_dir / "exit_code")
    output_dir = output_dir or output_dir_of(run_dir)
    started = state.get("started")
    if started is None and (run_dir / "run.pid").exists():
        started = datetime.fromtimestamp((run_dir / "run.pid").stat().st_mtime).astimezone().isoformat(timespec="seconds")
    out = str(output_dir) if output_dir else None
    stopped_by_us = bool(state.get("stop_requested")) and state.get("stop_pid") == pid

    if pid is None:
        return RunStatus(str(run_dir), "new", None, exit_code, out, started, "not started")
    if exit_code is None and is_run_process(pid):
        detail = "stopping" if stopped_by_us else ""
        return RunStatus(str(run_dir), "running", pid, None, out, started, detail)
    if stopped_by_us:
        return RunStatus(str(run_dir), "stopped", pid, exit_code, out, started, f"stopped at {state.get('stop_requested')}")
    if exit_code is None:
        return RunStatus(str(run_dir), "vanished", pid, None, out, started,
                         "the process is gone without an exit code (killed, or the machine restarted)")
    reason = read_exit_reason(run_dir)
    if reason:
        return RunStatus(str(run_dir), "failed", pid, exit_code, out, started, reason, reason)
    if exit_code == 0:
        if final_metrics_logged(run_dir, output_dir) or reached_last_step(output_dir):
            return RunStatus(str(run_dir), "finished", pid, 0, out, started)
        return RunStatus(str(run_dir), "failed", pid, 0, out, started, "exit 0 but no final train metrics in the log")
    return RunStatus(str(run_dir), "failed", pid, exit_code, out, started, f"exit code {exit_code}")


def start_run(run_dir: Path, resume: bool = False, env: dict | None = None, force: bool = False,
              detection=None) -> RunStatus:
    """Start run_sft.sh detached (it puts itself in a new session) and return once it has a pid.
    What can be checked here is checked first (tui.runs.preflight); `force` starts a run planned
    for other hardware anyway."""
    from tui.runs.preflight import preflight

    run_dir = Path(run_dir).resolve()
    current = run_status(run_dir)
    if current.status == "running":
        raise RunError(f"{run_dir} is already running (pid {current.pid}): `sft-tui monitor {run_dir}` to watch it")
    env, environment_note = preflight(run_dir, resume=resume, force=force, env=env, detection=detection)
    command = ["bash", str(run_dir / "run_sft.sh")] + (["--resume"] if resume else [])
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise RunError(f"run_sft.sh failed to start: {(done.stderr or done.stdout).strip()}")
    pid = _read_int(run_dir / "run.pid")
    if pid is None:
        raise RunError(f"run_sft.sh started but wrote no run.pid; see {run_dir / 'train.log'}")
    # `status` here is a record of what we did; run_status() never trusts it over the process table.
    write_state(run_dir, pid=pid, pgid=process_group(pid), command=command, resume=resume, status="started",
                started=datetime.now().astimezone().isoformat(timespec="seconds"),
                stop_requested=None, stop_pid=None, environment_note=environment_note)
    return run_status(run_dir)


def stop_run(run_dir: Path, grace: float = DEFAULT_GRACE_S, term_grace: float = TERM_GRACE_S,
             progress=lambda message: None) -> RunStatus:
    """Stop a running run: SIGABRT to the trainer (it finishes the step and saves), then after
    `grace` seconds SIGTERM to every process of the run, then SIGKILL. Returns the final status."""
    run_dir = Path(run_dir).resolve()
    current = run_status(run_dir)
    if current.status != "running":
        raise RunError(f"{run_dir} is not running (status {current.status})")
    pid = current.pid
    assert pid is not None  # a running run has its pid
    state = read_state(run_dir)
    pgid = state.get("pgid") if state.get("pid") == pid else process_group(pid)
    write_state(run_dir, stop_requested=datetime.now().astimezone().isoformat(timespec="seconds"), stop_pid=pid,
                status="stopped")
    everything = run_processes(pid, pgid)
    trainers = training_processes(pid)
    if trainers:
        progress(f"asking the trainer to stop after this step (SIGABRT to {', '.join(map(str, trainers))})")
        signal_all(trainers, signal.SIGABRT)
        everything |= run_processes(pid, pgid)
        left = wait_gone(everything, grace)
    else:
        left = everything
    if left:
        left |= run_processes(pid, pgid)  # anything started meanwhile
        progress(f"still running after {grace:.0f}s: SIGTERM to {len(left)} process(es)")
        signal_all(left, signal.SIGTERM)
        left = wait_gone(left, term_grace)
    if left:
        progress(f"SIGKILL to {len(left)} process(es)")
        signal_all(left, signal.SIGKILL)
        wait_gone(left, 5)
    return run_status(run_dir)


def find_runs(runs_dir: Path) -> list[Path]:
    """Run directories under runs_dir (or runs_dir itself, when it is one), newest first."""
    runs_dir = Path(runs_dir)
    if (runs_dir / "run_sft.sh").is_file():
        return [runs_dir]
    found = [p for p in runs_dir.iterdir() if (p / "run_sft.sh").is_file()] if runs_dir.is_dir() else []
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)


def resumed_at_of(run_dir: Path) -> int | None:
    """The checkpoint step this run resumed from: run_sft.sh says so on train.log's first line."""
    from tui.runs.follower import resumed_at_in

    try:
        with open(run_dir / "train.log", encoding="utf-8", errors="replace") as log:
            return resumed_at_in([log.readline() for _ in range(3)])
    except OSError:
        return None
