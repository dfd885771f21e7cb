"""Runs into the run history (tui.history.store): the plan a run directory holds, how the run ended and
what its own files measured, so a run nobody watched is recorded the first time anything sees it.

Measured from the files: peak memory from trainer_log.jsonl's vram_allocated/vram_reserved (GiB; written
by LLaMA-Factory with RECORD_VRAM=1, which run_sft.sh sets: torch's max_memory_allocated/reserved on rank 0),
the per-GPU peak of the run's processes and the host RAM of its tree from peaks.json (tui.runs.peaks), tokens/s and runtime from the follower's
reading of the logs (tui.runs.speed), seconds per step, the final train and eval loss.

Recording never stops a command: every problem with the history file becomes one sentence the caller
prints (`record_runs` returns it), and a run whose files did not change since it was recorded at its end
is not read again.
"""

from __future__ import annotations

import json
from pathlib import Path

from tui.history.record import plan_values
from tui.history.store import History, HistoryProblem
from tui.runs.lifecycle import ENDED, RunError, output_dir_of, run_status
from tui.runs.logfiles import TRAINER_LOG, read_trainer_log, tail_offset
from tui.runs.peaks import PEAKS_FILE, peak_columns

OPEN_AT_TAIL_BYTES, TAIL_LINES = 4 * 1024 * 1024, 200  # tui.runs.watch's: a long train.log is read from its tail
SIGNATURE_FILES = ("train.log", "exit_code", "run.pid", "state.json", "plan.json", PEAKS_FILE)


def files_signature(run_dir: Path, output_dir: Path | None) -> str:
    parts = []
    for path in [run_dir / name for name in SIGNATURE_FILES] + ([output_dir / TRAINER_LOG] if output_dir else []):
        try:
            stat = path.stat()
            parts.append(f"{path.name}:{stat.st_size}:{stat.st_mtime_ns}")
        except OSError:
            parts.append(f"{path.name}:-")
    return "|".join(parts)


def _peak(rows: list[dict], key: str) -> float | None:
    values = [r[key] for r in rows if isinstance(r.get(key), (int, float)) and not isinstance(r.get(key), bool)]
    return round(max(values), 3) if values else None


def measure_run(run_dir: Path) -> dict:
    """The history's columns for one run directory, read from its files (plan.json, the logs, exit code)."""
    from tui.runs.follower import Follower  # the watcher's follower and status (tui.runs.watch records through here)

    run_dir = Path(run_dir).absolute()
    values: dict = {}
    try:
        values |= plan_values(json.loads((run_dir / "plan.json").read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError, AttributeError):
        pass
    status = run_status(run_dir)
    output_dir = Path(status.output_dir) if status.output_dir else None
    log, offset = run_dir / "train.log", 0
    if log.is_file() and log.stat().st_size > OPEN_AT_TAIL_BYTES:  # as the watcher does: numbers are in trainer_log.jsonl
        offset = tail_offset(log, TAIL_LINES)
    follower = Follower(run_dir, output_dir, offset)
    while follower.poll():
        pass
    values["outcome"] = "planned" if status.status == "new" else status.status
    reason = ""
    if status.status == "failed":  # the monitor's sentence (tui.runs.watch.RunWatcher.end_event)
        reason = status.exit_reason or follower.failure(status.exit_code if status.exit_code is not None else 1).text
    elif status.status in ("vanished", "stopped"):
        reason = status.detail
    values["outcome_reason"] = reason
    rows = read_trainer_log(output_dir) if output_dir else []
    values["peak_allocated_gib"] = _peak(rows, "vram_allocated")
    values["peak_reserved_gib"] = _peak(rows, "vram_reserved")
    values |= peak_columns(run_dir)  # what NVML and /proc measured while a monitor followed it (tui.runs.peaks)
    done = follower.step - (follower.resumed_at or 0)
    values["steps_done"] = follower.step or None
    if status.status in ENDED or status.status == "running":
        versus = follower.speed.at_end(follower)
        runtime = versus["measured_seconds"]
        values["runtime_s"] = round(runtime, 3) if runtime else None
        values["tokens_per_second"] = versus["measured_tokens_per_second"]
        values["seconds_per_step"] = round(runtime / done, 4) if runtime and done > 0 else None
    losses = [r["loss"] for r in rows if isinstance(r.get("loss"), (int, float))]
    evals = [r["eval_loss"] for r in rows if isinstance(r.get("eval_loss"), (int, float))]
    train_loss = follower.final_metrics.get("train_loss")
    values["train_loss"] = train_loss if isinstance(train_loss, (int, float)) else (losses[-1] if losses else None)
    eval_loss = follower.final_metrics.get("eval_loss")
    values["eval_loss"] = eval_loss if isinstance(eval_loss, (int, float)) else (evals[-1] if evals else None)
    values["signature"] = files_signature(run_dir, output_dir)
    return values


def run_key(run_dir: Path) -> tuple[str, str]:
    run_dir = Path(run_dir).absolute()
    try:
        run_id = json.loads((run_dir / "plan.json").read_text(encoding="utf-8")).get("run_id") or run_dir.name
    except (OSError, ValueError, AttributeError):
        run_id = run_dir.name
    return str(run_dir), str(run_id)


def record_into(history: History, run_dir: Path) -> None:
    """Record one run (re-reading its files unless it ended and they are as they were)."""
    run_dir = Path(run_dir).absolute()
    key = run_key(run_dir)
    known = history.get(*key)
    if known and known.get("outcome") in ENDED and known.get("signature") == files_signature(run_dir, output_dir_of(run_dir)):
        return
    history.record(*key, measure_run(run_dir))


def record_runs(run_dirs, path: Path | None = None) -> str | None:
    """Record each run directory into the history; returns one sentence when the history (or a run's
    files) could not be used, for the caller to print on stderr, else None. Never raises."""
    notes: list[str] = []
    try:
        with History(path) as history:
            notes += history.notes
            for run_dir in run_dirs:
                try:
                    record_into(history, Path(run_dir))
                except RunError:
                    continue  # not a run directory: nothing to record
                except (OSError, ValueError) as err:
                    notes.append(f"{run_dir} was not recorded in the run history ({err})")
    except HistoryProblem as problem:
        notes.append(str(problem))
    except Exception as err:  # a history write must never break the command it rides on  # noqa: BLE001
        notes.append(f"the run history could not be written ({type(err).__name__}: {err})")
    return notes[0] if notes else None
