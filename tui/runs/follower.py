"""Following a run's logs: typed events from train.log and LLaMA-Factory's trainer_log.jsonl.

Both files are read incrementally by byte offset (`LogTail`): a file that does not exist yet is
waited for, a partial last line is kept until its end arrives, tqdm's carriage returns end a line
like newlines do (so the progress bar is seen live), and a file that shrank (LLaMA-Factory's
`overwrite_output_dir`, or a restart that rewrote train.log) is read again from its start.

Numbers come from `<output_dir>/trainer_log.jsonl`, which LLaMA-Factory writes at every logging
step with real floats. The console's metric dicts (strings under transformers 5:
`{'loss': '6.111', ...}`) are the fallback, used when the output directory is not there (a run
directory copied elsewhere for a post-mortem); grad_norm, which only the console prints, is
taken from there in both cases.
"""

from __future__ import annotations

import re
from collections import deque
from pathlib import Path
from typing import Any

from tui.runs.console import (
    CHECKPOINT,
    DROPPED,
    EXCEPTION,
    FAILURE_WORDS,
    METRIC_DICT,
    METRIC_ROW,
    METRICS_BLOCK,
    NUM_EPOCHS,
    NUM_EXAMPLES,
    TOTAL_STEPS,
    TQDM,
    as_number,
    parse_metric_dict,
)
from tui.runs.diagnoses import (
    OOM_MARKERS,
    data_error_sentence,
    oom_details,
    setup_error_sentence,
)
from tui.runs.events import Event
from tui.runs.health import HealthCheck
from tui.runs.logfiles import (
    TRAINER_LOG,
    LogTail,
    duration_seconds,
    format_duration,
    is_nan,
    parse_row,
)
from tui.runs.resumes import Resumes, remaining_after, resumed_at_in, resumed_text
from tui.runs.speed import Speed

CONTEXT_LINES = 12  # lines kept before an exception for the failure event


class Follower:
    """Turns a run's files into events; call poll() as often as you like (it never blocks).

    `run_dir` holds train.log (run_sft.sh's console) and exit_code; `output_dir` is LLaMA-Factory's
    (trainer_log.jsonl, checkpoints). The run's status (tui.runs.lifecycle) decides when a run has ended;
    the follower reports what the logs say about it.
    """

    def __init__(self, run_dir: Path, output_dir: Path | None, train_log_offset: int = 0):
        self.run_dir = Path(run_dir)
        self.output_dir = Path(output_dir) if output_dir else None
        self.console = LogTail(self.run_dir / "train.log", train_log_offset)
        self.jsonl = LogTail(self.output_dir / TRAINER_LOG) if self.output_dir else None
        self.use_console_metrics = self.output_dir is None or not self.output_dir.is_dir()
        self.speed = Speed(self.run_dir)  # the plan's time estimate, against the measured rate
        self._reset_state()
        if train_log_offset:
            self.started = True  # opened at the tail of a long log: its banner is behind us
            try:
                with open(self.run_dir / "train.log", encoding="utf-8", errors="replace") as log:
                    self.resumes.console_at = resumed_at_in([log.readline() for _ in range(3)])
            except OSError:
                pass

    def _reset_state(self) -> None:
        self.total_steps: int | None = None
        self.step = 0
        self.started = False
        self.num_examples: int | None = None
        self.epochs: float | None = None
        self.last_metrics: dict = {}
        self.eta: float | None = None
        self.elapsed: float | None = None
        self.resumed_at: int | None = None  # the step the run being read resumed at: its clocks start there
        self.resumes = Resumes(self.output_dir)  # which run (first, resumed) the rows being read are of
        self.nan_step: int | None = None  # the first step whose loss or gradient norm was NaN
        self.final_metrics: dict = {}
        self._metrics_block: str | None = None
        self.recent: deque[str] = deque(maxlen=200)
        self.exception: str | None = None
        self.exception_context: list[str] = []
        self.oom: dict | None = None
        self.data_error: str | None = None
        self.dropped_rows = 0
        self._grad_norm_by_epoch: dict[float, float] = {}
        self.health = HealthCheck()  # diagnoses of the logged numbers (tui.runs.health), each once

    # The public surface: poll(), then the summary attributes above.

    def poll(self) -> list[Event]:
        # Both files are read before either is parsed, and trainer_log.jsonl's rows go first: the
        # console's summary lines (checkpoint saved, train metrics) come after the steps they close.
        # trainer_log.jsonl is read only once the console shows training started: until then the
        # file may be a previous run's, which LLaMA-Factory deletes before training begins.
        lines = self.console.read_lines()
        events: list[Event] = []
        if self.console.truncated:
            self._reset_state()
            events.append(Event("restarted", text="train.log was rewritten: the run was started again"))
        if not self.started:
            banner = next((i for i, line in enumerate(lines) if "Total optimization" in line and TOTAL_STEPS.search(line)), None)
            if banner is not None:
                before_rows, lines = lines[:banner + 1], lines[banner + 1:]
                for line in before_rows:
                    events.extend(self._console_line(line))
        read_jsonl = self.jsonl is not None and not self.use_console_metrics and self.started
        rows = self.jsonl.read_lines() if self.jsonl is not None and read_jsonl else []
        if self.jsonl is not None and self.jsonl.truncated:
            self.step, self.resumes.segment = 0, None
        if rows:  # grad_norm and the resume step are only on the console: harvest them before the rows need them
            for line in lines:
                if line.lstrip().startswith("{'") and "grad_norm" in line:  # the console pads it with spaces
                    self._console_metrics(line.strip())
                elif "esum" in line or "Continuing" in line:
                    self._resume_line(line)
        for row in rows:
            events.extend(self._jsonl_row(row))
        for line in lines:
            events.extend(self._console_line(line))
        return events

    def _console_line(self, line: str) -> list[Event]:
        # Substring tests guard every regular expression: a log that grows by thousands of lines a
        # second is mostly lines none of them match (see bench/follow_log.py).
        events = []
        if "%|" in line and (match := TQDM.match(line)):
            events.extend(self._tqdm(match))
            line = line[match.end():]
            if not line.strip():
                return events
        self.recent.append(line)
        events.append(Event("line", {"line": line}, line))
        if self._metrics_block:
            row = METRIC_ROW.match(line)
            if row:
                self.final_metrics[row.group(1)] = as_number(row.group(2))
                return events
            if self._metrics_block == "train":
                events.append(Event("metrics", {"final": True, **self.final_metrics}, "train metrics: " + ", ".join(
                    f"{k} {v}" for k, v in self.final_metrics.items())))
            self._metrics_block = None
        if " = " in line:
            events.extend(self._training_banner(line))
        elif "Saving model checkpoint" in line and (match := CHECKPOINT.search(line)):
            path = match.group(1)
            step = re.search(r"checkpoint-(\d+)$", path)
            events.append(Event("checkpoint", {"path": path, "step": int(step.group(1)) if step else None},
                                f"checkpoint saved: {path}" if step else f"final model saved: {path}"))
        elif "*****" in line and (match := METRICS_BLOCK.search(line)):
            self._metrics_block = match.group(1)
        elif line.lstrip().startswith("{'") and (match := METRIC_DICT.match(line)):
            events.extend(self._console_metrics(match.group(1)))
        elif "esum" in line or "Continuing" in line:
            events.extend(self._resume_line(line))
        elif "Dropped invalid" in line and (match := DROPPED.search(line)):
            self.dropped_rows += 1
            if self.dropped_rows == 1:
                events.append(Event("data_warning", {"example": match.group(1)},
                                    "LLaMA-Factory dropped a row it considers invalid (more may follow): "
                                    "run `sft-tui validate` on the dataset to see every one"))
        if any(word in line for word in FAILURE_WORDS):
            events.extend(self._failure_signs(line))
        return events

    def _training_banner(self, line: str) -> list[Event]:
        """The Trainer's "***** Running training *****" block: examples, epochs, total steps."""
        if match := TOTAL_STEPS.search(line):
            self.total_steps = int(match.group(1).replace(",", ""))
            if not self.started:
                self.started = True
                return [Event("started", {"total_steps": self.total_steps, "num_examples": self.num_examples,
                                          "epochs": self.epochs},
                              f"training started: {self.total_steps} steps"
                              + (f", {self.num_examples} examples" if self.num_examples else ""))]
        elif match := NUM_EXAMPLES.search(line):
            self.num_examples = int(match.group(1).replace(",", ""))
        elif match := NUM_EPOCHS.search(line):
            self.epochs = as_number(match.group(1).replace(",", ""))
        return []

    def _resume_line(self, line: str) -> list[Event]:
        at = self.resumes.console_line(line)
        if at is not None and self.use_console_metrics and self.resumed_at != at:  # the console's steps are the resumed run's
            self.resumed_at = at
            return [Event("resumed", {"step": at}, resumed_text(at, at))]
        return []

    def _jsonl_segment(self, step: int, elapsed: float | None) -> list[Event]:
        """A row that begins a resumed run (tui.runs.resumes): its steps count from the resume."""
        began = self.resumes.jsonl_row(step, elapsed)
        if began is None:
            return []
        at, text = began
        # without a known checkpoint the rate counts from this row (a little slow, never absurd)
        self.resumed_at, self.step, self.elapsed = (step, step - 1, None) if at is None else (at, at, None)
        return [Event("resumed", {"step": at}, text)]

    def _failure_signs(self, line: str) -> list[Event]:
        if line.startswith((" ", "\t")):
            return []  # a traceback's source lines quote the messages with their {placeholders}
        events = []
        sentence = data_error_sentence(line)
        if sentence and self.data_error is None:
            self.data_error = sentence
            events.append(Event("data_error", {"line": line.strip()}, sentence))
        if self.oom is None and "Error" in line and any(marker in line for marker in OOM_MARKERS):
            self.oom = {"line": line.strip(), **oom_details(line)}
            events.append(Event("oom", self.oom, "out of GPU memory" + (
                f" (tried to allocate {self.oom['tried_to_allocate']})" if "tried_to_allocate" in self.oom else "")))
        if EXCEPTION.match(line.strip()):
            self.exception = line.strip()
            self.exception_context = list(self.recent)[-CONTEXT_LINES - 1:-1]
        return events

    def _tqdm(self, match: re.Match) -> list[Event]:
        # The training bar has no description and counts optimizer steps; dataset bars and the
        # evaluation bar (a different total) are not progress of training.
        if match.group("desc").strip() or self.total_steps is None or int(match.group("total")) != self.total_steps:
            return []
        step = int(match.group("n"))
        elapsed, _, remaining = match.group("times").partition("<")
        remaining = remaining.split(",")[0]
        return self._progress(step, duration_seconds(elapsed), duration_seconds(remaining))

    def _progress(self, step: int, elapsed: float | None, remaining: float | None) -> list[Event]:
        if step <= self.step:
            return []
        self.step = step
        self.elapsed, self.eta = elapsed, remaining_after(step, self.total_steps, elapsed, remaining, self.resumed_at)
        return [Event("progress", self._position(), f"step {step}/{self.total_steps or '?'}"
                      + (f" ETA {format_duration(remaining)}" if remaining is not None else ""))]

    def _position(self) -> dict:
        """Where training is, carried by every progress and metrics event so each stands alone."""
        total = self.total_steps or 0
        position: dict[str, Any] = {"current_steps": self.step, "total_steps": total,
                    "percentage": round(self.step / total * 100, 2) if total else None,
                    "elapsed": self.elapsed, "remaining": self.eta}
        for key in ("loss", "lr"):
            if key in self.last_metrics:
                position[key] = self.last_metrics[key]
        if speed := self.speed.now(self):
            position["speed"] = speed
        return position

    def _console_metrics(self, text: str) -> list[Event]:
        values = parse_metric_dict(text)
        if not values:
            return []
        if "grad_norm" in values and isinstance(values.get("epoch"), float):
            self._grad_norm_by_epoch[round(values["epoch"], 2)] = values["grad_norm"]
        if is_nan(values.get("grad_norm")):
            self.health.saw_nan()
        if not self.use_console_metrics or "train_runtime" in values:
            return []
        metrics = {"loss": values.get("loss"), "eval_loss": values.get("eval_loss"), "lr": values.get("learning_rate"),
                   "epoch": values.get("epoch"), "grad_norm": values.get("grad_norm")}
        return self._metrics_event({k: v for k, v in metrics.items() if v is not None})

    def _jsonl_row(self, text: str) -> list[Event]:
        row = parse_row(text)
        if not isinstance(row, dict):
            return []
        events = []
        if row.get("total_steps"):
            self.total_steps = int(row["total_steps"])
        has_metrics = "loss" in row or "eval_loss" in row
        if "current_steps" in row:
            step, elapsed = int(row["current_steps"]), duration_seconds(str(row.get("elapsed_time", "")))
            events += self._jsonl_segment(step, elapsed)
            progress = self._progress(step, elapsed, duration_seconds(str(row.get("remaining_time", ""))))
            if not has_metrics:  # a row with a loss is reported once, as metrics
                events += progress
        if has_metrics:
            metrics: dict[str, Any] = {"current_steps": int(row.get("current_steps") or self.step)}
            for key in ("loss", "eval_loss", "lr", "epoch", "throughput", "vram_allocated", "vram_reserved"):
                if row.get(key) is not None:
                    metrics[key] = row[key]
            if isinstance(row.get("epoch"), (int, float)):
                grad_norm = self._grad_norm_by_epoch.get(round(float(row["epoch"]), 2))
                if grad_norm is not None:
                    metrics["grad_norm"] = grad_norm
            events.extend(self._metrics_event(metrics))
        return events

    def _metrics_event(self, metrics: dict) -> list[Event]:
        """The metrics event, then the health events its numbers give (tui.runs.health)."""
        # with logging_nan_inf_filter (transformers' default) a NaN loss is logged as the last good
        # value or 0, and only the gradient norm shows NaN
        if self.nan_step is None and (is_nan(metrics.get("loss")) or is_nan(metrics.get("grad_norm"))):
            self.nan_step = metrics.get("current_steps") or self.step
        if "loss" in metrics:
            self.last_metrics["loss"] = metrics["loss"]
        if "lr" in metrics:
            self.last_metrics["lr"] = metrics["lr"]
        self.last_metrics.update({k: v for k, v in metrics.items() if k not in ("loss", "lr")})
        parts = [f"{k} {_short(metrics[k])}" for k in ("loss", "eval_loss", "lr", "grad_norm") if k in metrics]
        data = {**self._position(), **metrics}
        if data["total_steps"]:
            data["percentage"] = round(data["current_steps"] / data["total_steps"] * 100, 2)
        events = [Event("metrics", data, ", ".join(parts))]
        for _name, found, sentence in self.health.observe({**metrics, "current_steps": data["current_steps"]},
                                                          self.total_steps):
            events.append(Event("health", found, sentence))
        return events

    # --- how it ended ----------------------------------------------------------------------------

    def failure(self, exit_code: int) -> Event:
        """The event for a run that exited non-zero: OOM, a data error, or the exception line."""
        if self.oom:
            details = []
            if "tried_to_allocate" in self.oom:
                details.append(f"tried to allocate {self.oom['tried_to_allocate']}")
            if "capacity" in self.oom:
                details.append(f"GPU {self.oom['gpu']} had {self.oom['free']} free of {self.oom['capacity']}")
            return Event("failed", {"exit_code": exit_code, "cause": "oom", **self.oom},
                         f"out of GPU memory (exit {exit_code})" + (": " + "; ".join(details) if details else ""))
        context = self.exception_context or list(self.recent)[-CONTEXT_LINES:]
        missing = re.match(r"KeyError: '(.+)'$", self.exception or "")
        if missing and self.data_error is None and any("llamafactory/data/" in line for line in self.recent):
            self.data_error = (f"dataset_info.json declares the column {missing.group(1)!r}, which the dataset's rows "
                               "do not have: fix `columns` in the run's dataset_info.json, or export the bundle again")
        if self.data_error:
            return Event("failed", {"exit_code": exit_code, "cause": "data", "exception": self.exception,
                                    "context": context}, self.data_error)
        setup = setup_error_sentence(self.exception)
        if setup:
            return Event("failed", {"exit_code": exit_code, "cause": "setup", "exception": self.exception,
                                    "context": context}, setup)
        if self.exception:
            return Event("failed", {"exit_code": exit_code, "cause": "exception", "exception": self.exception,
                                    "context": context}, f"{self.exception} (exit {exit_code})")
        return Event("failed", {"exit_code": exit_code, "cause": "unknown", "context": context},
                     f"exited with status {exit_code}; last line: {context[-1] if context else '(empty log)'}")


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"
    return str(value)
