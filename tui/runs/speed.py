"""Estimated against measured speed, live: the plan's time estimate (plan.json's plan.time_estimate,
tui.plan.timing) beside what the run does.

The measured tokens/s is LLaMA-Factory's own `throughput` (trainer_log.jsonl, when the Trainer counts
input tokens), else the steps per second since the run (or its resume) began times the plan's tokens
per step (its tokens over the run's steps). The time left is the tokens or steps still to do at that
rate. At the end, both sides are kept in state.json's `estimate_vs_actual` for calibration.
"""

from __future__ import annotations

import json
from pathlib import Path

from tui.plan.timing import human_duration
from tui.runs.logfiles import duration_seconds


def plan_time_estimate(run_dir: Path) -> dict:
    try:
        estimate = json.loads((Path(run_dir) / "plan.json").read_text(encoding="utf-8"))["plan"]["time_estimate"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return estimate if isinstance(estimate, dict) else {}


def _number(value) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else None


class Speed:
    """Reads a follower's position (tui.runs.follower.Follower) against the plan's estimate."""

    def __init__(self, run_dir: Path):
        estimate = plan_time_estimate(run_dir)
        self.estimated_seconds = _number(estimate.get("seconds"))
        self.estimated_tps = _number(estimate.get("tokens_per_second"))
        self.planned_tokens = _number(estimate.get("tokens"))

    def tokens_per_step(self, follower) -> float | None:
        return self.planned_tokens / follower.total_steps if self.planned_tokens and follower.total_steps else None

    def _steps_per_second(self, follower) -> float | None:
        done = follower.step - (follower.resumed_at or 0)
        return done / follower.elapsed if done > 0 and follower.elapsed else None

    def now(self, follower) -> dict | None:
        """{measured_tokens_per_second, estimated_tokens_per_second, remaining_s}, or None before
        anything is measured (or with nothing to compare a rate with)."""
        measured = _number(follower.last_metrics.get("throughput"))
        per_step, steps_per_s = self.tokens_per_step(follower), self._steps_per_second(follower)
        if measured is None and per_step and steps_per_s:
            measured = per_step * steps_per_s
        if measured is None:
            return None
        total, remaining = follower.total_steps, None
        if total and per_step:
            remaining = max(0, total - follower.step) * per_step / measured
        elif total and steps_per_s:
            remaining = max(0, total - follower.step) / steps_per_s
        return {"measured_tokens_per_second": round(measured, 1), "estimated_tokens_per_second": self.estimated_tps,
                "remaining_s": None if remaining is None else round(remaining, 1)}

    def at_end(self, follower) -> dict:
        """state.json's estimate_vs_actual for a finished run."""
        measured_s = duration_seconds(str(follower.final_metrics.get("train_runtime", ""))) or follower.elapsed
        measured_tps = _number(follower.last_metrics.get("throughput"))
        done = follower.step - (follower.resumed_at or 0)
        per_step = self.tokens_per_step(follower)
        if measured_tps is None and per_step and measured_s and done > 0:
            measured_tps = per_step * done / measured_s
        return {"estimated_seconds": self.estimated_seconds, "measured_seconds": measured_s,
                "estimated_tokens_per_second": self.estimated_tps,
                "measured_tokens_per_second": None if measured_tps is None else round(measured_tps, 1)}


def speed_text(speed: dict | None) -> str:
    """'1,950 tok/s measured, 2,100 estimated; 12 min left'."""
    if not speed:
        return ""
    text = f"{speed['measured_tokens_per_second']:,.0f} tok/s measured"
    if speed.get("estimated_tokens_per_second"):
        text += f", {speed['estimated_tokens_per_second']:,.0f} estimated"
    if speed.get("remaining_s") is not None:
        left = speed["remaining_s"]
        text += f"; {human_duration(left) if left >= 0.5 else '0 s'} left"  # the last step has nothing left
    return text
