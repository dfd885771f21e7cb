"""LLaMA-Factory's console (train.log), as patterns: tqdm's bar, the Trainer's header lines, its
metric dicts and metrics blocks, checkpoints, exceptions and dropped examples. tui.runs.follower
reads the console with them; tui.runs.compare reads a console's final metrics."""

from __future__ import annotations

import ast
import re

# tqdm's bar, possibly followed on the same line by a log record (stderr has no newline between).
TQDM = re.compile(r"^(?P<desc>[^|]*?)\s*(?P<pct>\d{1,3})%\|[^|]*\|\s*(?P<n>\d+)/(?P<total>\d+)\s*\[(?P<times>[^\]]*)\]")


TOTAL_STEPS = re.compile(r"Total optimization steps\s*=\s*([\d,]+)")


NUM_EXAMPLES = re.compile(r"Num examples\s*=\s*([\d,]+)")


NUM_EPOCHS = re.compile(r"Num Epochs\s*=\s*([\d,.]+)")


CHECKPOINT = re.compile(r"Saving model checkpoint to (\S+)")


METRIC_DICT = re.compile(r"^\s*(\{'(?:loss|eval_loss|train_runtime)'.*\})\s*$")


METRICS_BLOCK = re.compile(r"\*{5} (train|eval) metrics \*{5}")


METRIC_ROW = re.compile(r"^\s{2}(\w+)\s*=\s*(.+?)\s*$")


EXCEPTION = re.compile(r"^(?:[A-Za-z_][\w.]*\.)?([A-Z]\w*(?:Error|Exception|Exit|Interrupt))(?::\s*(.*))?$")


DROPPED = re.compile(r"Dropped invalid example: (.*)")


# A line without any of these cannot be an exception, an OOM or a data error.
FAILURE_WORDS = ("Error", "Exception", "Interrupt", "Exit", "memory", "dataset", "samples", "not found", "Cannot open")


def as_number(value):
    if isinstance(value, (int, float)):
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def parse_metric_dict(text: str) -> dict | None:
    """The Trainer's console metrics `{'loss': '6.111', ...}` with numbers as numbers."""
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return None
    return {k: as_number(v) for k, v in value.items()} if isinstance(value, dict) else None
