"""Comparing runs: the settings that differ, and what each run measured (`sft-tui compare`).

Settings (tui.runs.run_settings) are what the run trained with: train.yaml (the user may have edited it) over plan.json's
settings, plus the plan's recipe and hardware. Keys every run has by construction a value of its own
for (output_dir, run_name, logging_dir) are left out, and an absent key equals a null one (LLaMA-
Factory's default either way).

Results come from LLaMA-Factory's own files, read the same way whether the run is running, ended,
or a directory copied from another machine:

    trainer_log.jsonl   steps, train loss, eval loss, vram_allocated/vram_reserved (peak GiB, with
                        RECORD_VRAM=1, which run_sft.sh sets), throughput (tokens/s, when
                        include_num_input_tokens_seen)
    all_results.json    (or train_results.json) train_runtime, train_samples_per_second, and
                        train_tokens_per_second (include_tokens_per_second) or effective_tokens_per_sec
                        (include_effective_tokens_per_second)
    train.log           the console: its "***** train metrics *****" block when the output directory
                        has no results file, and every metric line when it has no trainer_log.jsonl
    plan.json           the planned peak memory per device (estimate.per_device_gib)
    state.json          the tokens/s the monitor measured (estimate_vs_actual), else the monitor's reading
                        of the logs (tui.runs.speed), before trainer_log.jsonl's throughput
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tui.common.errors import SftTuiError
from tui.runs.lifecycle import (
    find_runs,
    output_dir_of,
    read_state,
    resumed_at_of,
    run_status,
)
from tui.runs.logfiles import duration_seconds, last_lines, read_trainer_log
from tui.runs.run_settings import differences, read_plan, run_settings

# Tokens per second, best source first: HF's (include_tokens_per_second), LLaMA-Factory's
# (include_effective_tokens_per_second); trainer_log.jsonl's `throughput` is the fallback.
TOKENS_PER_SECOND_KEYS = ("train_tokens_per_second", "effective_tokens_per_sec")


class CompareError(SftTuiError):
    """The runs cannot be compared as asked; one sentence."""


@dataclass
class RunResult:
    """What one run measured. None: not known (not logged, or not reached yet)."""

    name: str
    run_dir: str
    status: str
    detail: str = ""
    steps_done: int | None = None
    total_steps: int | None = None
    final_loss: float | None = None
    best_loss: float | None = None
    best_loss_step: int | None = None
    mean_train_loss: float | None = None  # LLaMA-Factory's train_loss: the average over the run
    # (of the steps trained since resuming, for a run that resumed: see read_run)
    resumed_at: int | None = None  # the checkpoint step it resumed from (--resume, or a retry's)
    final_eval_loss: float | None = None
    best_eval_loss: float | None = None
    best_eval_step: int | None = None
    train_seconds: float | None = None
    tokens_per_second: float | None = None
    samples_per_second: float | None = None
    peak_vram_allocated_gib: float | None = None
    peak_vram_reserved_gib: float | None = None
    planned_gib: float | None = None
    source: str = ""  # where the curve came from: trainer_log.jsonl, train.log, or nothing yet
    settings: dict = field(default_factory=dict, repr=False)
    # (step, value) of every logged train loss and eval loss: the app draws them (not in --json)
    loss_curve: list[tuple[float, float]] = field(default_factory=list, repr=False)
    eval_curve: list[tuple[float, float]] = field(default_factory=list, repr=False)

    def to_json(self) -> dict:
        data = asdict(self)
        for key in ("settings", "loss_curve", "eval_curve"):
            data.pop(key)
        return data


@dataclass
class Comparison:
    runs: list[RunResult]
    differences: dict[str, list]  # setting -> its value in each run, in the order of `runs`

    def to_json(self) -> dict:
        return {"runs": [run.to_json() for run in self.runs], "differences": self.differences}


def expand_run_dirs(paths: list[Path]) -> list[Path]:
    """Each path is a run directory, or a directory of them (every run in it, by name)."""
    found: list[Path] = []
    for path in map(Path, paths):
        if (path / "run_sft.sh").is_file():
            runs = [path]
        elif path.is_dir():
            runs = sorted(find_runs(path), key=lambda p: p.name)
            if not runs:
                raise CompareError(f"{path} is not a run directory (no run_sft.sh) and holds none")
        elif path.exists():
            raise CompareError(f"{path} is not a run directory (no run_sft.sh): give runs/<run-id> or runs/")
        else:
            raise CompareError(f"{path} does not exist")
        for run in runs:
            if run.resolve() not in {p.resolve() for p in found}:
                found.append(run)
    return found


def compare_runs(paths: list[Path]) -> Comparison:
    runs = expand_run_dirs(paths)
    if len(runs) < 2:
        which = f"only {runs[0]}" if runs else "none"
        raise CompareError(f"comparing needs at least 2 runs; found {which}")
    names = [run.name for run in runs]
    if len(set(names)) < len(names):  # two runs/ folders holding the same run-id
        names = [str(run) for run in runs]
    results = [read_run(run, name) for run, name in zip(runs, names)]
    return Comparison(results, differences([r.settings for r in results]))


def _results_file(output_dir: Path | None) -> dict:
    for name in ("all_results.json", "train_results.json"):
        try:
            data = json.loads((output_dir / name).read_text(encoding="utf-8")) if output_dir else None
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            return data
    return {}


def console_final_metrics(run_dir: Path) -> dict:
    """The '***** train metrics *****' and '***** eval metrics *****' blocks at the end of train.log."""
    from tui.runs.console import METRIC_ROW, METRICS_BLOCK

    try:
        lines = last_lines(run_dir / "train.log", 400)
    except OSError:
        return {}
    metrics, inside = {}, False
    for line in lines:
        if METRICS_BLOCK.search(line):
            inside = True
        elif inside and (row := METRIC_ROW.match(line)):
            metrics[row.group(1)] = _metric_value(row.group(1), row.group(2))
        else:
            inside = False
    return metrics


def _metric_value(key: str, text: str):
    if key.endswith("_runtime"):
        return duration_seconds(text) if ":" in text else _float(text)
    number = _float(text)
    return text if number is None else number


def _float(value) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _console_curve(run_dir: Path) -> tuple[list[dict], int, int | None]:
    """Loss rows from the console when there is no trainer_log.jsonl (a run directory copied
    without its output directory): the follower's reading of train.log, to its end."""
    from tui.runs.follower import Follower

    follower = Follower(run_dir, None)
    rows = []
    size = (run_dir / "train.log").stat().st_size if (run_dir / "train.log").is_file() else 0
    while True:
        events = follower.poll()
        # The console's metric lines carry no step (the follower's tqdm position lags them): no "best @step".
        rows += [{**e.data, "current_steps": None} for e in events if e.kind == "metrics" and not e.data.get("final")]
        if not events and follower.console.offset >= size:
            break
    # The curve places them by epoch: transformers' "Num Epochs = N" and the total steps give the
    # steps per epoch.
    epochs = _console_epochs(run_dir / "train.log")
    if epochs and follower.total_steps:
        for row in rows:
            if _float(row.get("epoch")) is not None:
                row["at_step"] = round(float(row["epoch"]) * follower.total_steps / epochs, 2)
    return rows, follower.step, follower.total_steps


_NUM_EPOCHS = re.compile(r"Num Epochs = ([\d,]+)")


def _console_epochs(log: Path) -> int | None:
    """transformers' "Num Epochs = N" near the start of the log (the last one: a restart says it again)."""
    try:
        with log.open("rb") as f:
            head = f.read(1 << 20).decode("utf-8", "replace")
    except OSError:
        return None
    found = _NUM_EPOCHS.findall(head)
    return int(found[-1].replace(",", "")) or None if found else None


def _best(rows: list[dict], key: str) -> tuple[float | None, float | None, int | None]:
    """(final, best, step of best) of one metric over the logged rows."""
    points = [(float(r[key]), r.get("current_steps")) for r in rows if _float(r.get(key)) is not None]
    if not points:
        return None, None, None
    best = min(points, key=lambda p: p[0])
    return points[-1][0], best[0], best[1]


def curve(rows: list[dict], key: str) -> list[tuple[float, float]]:
    """(step, value) of one metric. A console row has no step: it is placed by its epoch
    (`at_step`), else by its position."""
    points: list[tuple[float, float]] = []
    for row in rows:
        value = _float(row.get(key))
        if value is None:
            continue
        step = _float(row.get("current_steps"))
        step = step if step is not None else _float(row.get("at_step"))
        points.append((step if step is not None else float(len(points) + 1), value))
    return points


def _peak(rows: list[dict], key: str) -> float | None:
    values = [float(r[key]) for r in rows if _float(r.get(key)) is not None]
    # A CPU run with RECORD_VRAM=1 logs 0.0 (and -0.0): nothing was measured.
    return max(values) if values and max(values) > 0 else None


def read_run(run_dir: Path, name: str | None = None) -> RunResult:
    run_dir = Path(run_dir)
    output_dir = output_dir_of(run_dir)
    status = run_status(run_dir, output_dir)
    plan = read_plan(run_dir)
    result = RunResult(name or run_dir.name, str(run_dir), status.status, status.detail,
                       settings=run_settings(run_dir, plan))
    estimate = (plan.get("plan") or {}).get("estimate") if isinstance(plan.get("plan"), dict) else None
    if isinstance(estimate, dict):
        result.planned_gib = _float(estimate.get("per_device_gib"))

    rows = read_trainer_log(output_dir) if output_dir else []
    if rows:
        result.source = "trainer_log.jsonl"
        steps = [int(r["current_steps"]) for r in rows if _float(r.get("current_steps")) is not None]
        totals = [int(r["total_steps"]) for r in rows if _float(r.get("total_steps"))]
        result.steps_done = max(steps) if steps else None
        result.total_steps = totals[-1] if totals else None
        elapsed = [duration_seconds(str(r["elapsed_time"])) for r in rows if r.get("elapsed_time")]
        elapsed = [e for e in elapsed if e is not None]
        throughput = [float(r["throughput"]) for r in rows if _float(r.get("throughput"))]
    elif (run_dir / "train.log").is_file():
        rows, step, total = _console_curve(run_dir)
        result.source = "train.log" if rows or step else ""
        result.steps_done, result.total_steps = (step or None), total
        elapsed = [r["elapsed"] for r in rows if r.get("elapsed") is not None]
        throughput = []
    else:
        elapsed, throughput = [], []
    result.final_loss, result.best_loss, result.best_loss_step = _best(rows, "loss")
    result.loss_curve = curve(rows, "loss")
    result.eval_curve = curve(rows, "eval_loss")
    result.final_eval_loss, result.best_eval_loss, result.best_eval_step = _best(rows, "eval_loss")
    result.peak_vram_allocated_gib = _peak(rows, "vram_allocated")
    result.peak_vram_reserved_gib = _peak(rows, "vram_reserved")

    final = _results_file(output_dir) or console_final_metrics(run_dir)
    result.mean_train_loss = _float(final.get("train_loss"))
    result.resumed_at = resumed_at_of(run_dir)
    if result.mean_train_loss is not None and result.resumed_at and result.steps_done \
            and result.steps_done > result.resumed_at:
        # transformers divides the loss summed over this session's steps by the global step, counted
        # from 0: a run that resumed at step N reports it (steps - N) / steps too low.
        result.mean_train_loss *= result.steps_done / (result.steps_done - result.resumed_at)
    if result.final_eval_loss is None and _float(final.get("eval_loss")) is not None:
        result.final_eval_loss = result.best_eval_loss = _float(final["eval_loss"])
    runtime = _float(final.get("train_runtime"))
    result.train_seconds = runtime if runtime is not None else (elapsed[-1] if elapsed else None)
    result.samples_per_second = _float(final.get("train_samples_per_second"))
    tokens = [_float(final.get(key)) for key in TOKENS_PER_SECOND_KEYS]
    result.tokens_per_second = next((t for t in tokens if t), None) or measured_tokens_per_second(run_dir, output_dir) \
        or (throughput[-1] if throughput else None)
    return result


def measured_tokens_per_second(run_dir: Path, output_dir: Path | None) -> float | None:
    """The tokens/s the monitor measured (tui.runs.speed): state.json's estimate_vs_actual once a monitor
    recorded it, else the same reading of the logs now (the run's end, or where it is)."""
    from tui.runs.follower import Follower

    versus = read_state(run_dir).get("estimate_vs_actual")
    if isinstance(versus, dict) and _float(versus.get("measured_tokens_per_second")):
        return _float(versus["measured_tokens_per_second"])
    if not (run_dir / "train.log").is_file():
        return None
    follower = Follower(run_dir, output_dir)
    while follower.poll():
        pass
    if follower.final_metrics:
        return follower.speed.at_end(follower)["measured_tokens_per_second"]
    speed = follower.speed.now(follower)
    return speed["measured_tokens_per_second"] if speed else None
