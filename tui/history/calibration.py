"""The calibration the planner reads from the run history: how fast this hardware really trains, from
the user's own runs on the same device (the same GPU model, or this CPU) with the same method.

Two figures, from the runs that measured their tokens/s:

    speed ratio         measured tokens/s over the run's own datasheet estimate (its plan.json's
                        time_estimate, before any calibration): the next estimate on this device is
                        scaled by it
    FLOP/s achieved     measured tokens/s times the run's FLOPs a token: for a device with no datasheet
                        peak (a CPU, an unlisted card), the next run's time is its FLOPs at that rate

Each run weighs by how alike it is to the plan (the same model, attention, length and micro-batch count
most), and the figures are weighted geometric means: one odd run moves them less than the alike ones.

A memory figure from the same runs: the measured peak (NVML's per-process figure a monitor sampled, else
RECORD_VRAM=1's peak reserved) over the per-device estimate the run was planned with, a weighted median,
for the plan's memory verdict (tui.plan.calibrated).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from tui.history.record import measured_peak_gib
from tui.history.store import History

USABLE_OUTCOMES = ("finished", "stopped")
MIN_STEPS = 2  # a run that measured fewer steps than this says little about its speed


@dataclass(frozen=True)
class Alike:
    """What a planned run is compared by."""

    device: str
    method: str
    model_params: int | None = None
    attention: str | None = None
    cutoff_len: int | None = None
    micro_batch: int | None = None


def likeness(plan: Alike, row: dict) -> float:
    """1 for a run like the plan in every way, less for each difference (never 0: it is still this device)."""
    weight = 1.0
    if plan.model_params and row.get("model_params") and plan.model_params != row["model_params"]:
        weight *= 0.25 * math.exp(-abs(math.log(plan.model_params / row["model_params"])) / 4)
    if plan.attention and row.get("attention") and plan.attention != row["attention"]:
        weight *= 0.5
    for key in ("cutoff_len", "micro_batch"):
        mine, theirs = getattr(plan, key), row.get(key)
        if mine and theirs and mine != theirs:
            weight *= math.exp(-abs(math.log(mine / theirs)))
    return max(weight, 1e-3)


def _weighted_geomean(pairs: list[tuple[float, float]]) -> float:
    total = sum(w for w, _ in pairs)
    return math.exp(sum(w * math.log(v) for w, v in pairs) / total)


def _runs(history: History, plan: Alike) -> list[dict]:
    return [r for r in history.runs(device=plan.device) if r["method"] == plan.method
            and r["outcome"] in USABLE_OUTCOMES and (r["steps_done"] or 0) >= MIN_STEPS]


def time_calibration(plan: Alike, history: History | None = None) -> dict | None:
    """{device, method, runs, run_ids, speed_ratio, flops_per_second, weights} from the runs on this device
    with this method that measured their speed; None when there is none."""
    own = history is None
    history = history or History()
    try:
        rows = [r for r in _runs(history, plan) if r["tokens_per_second"]]
    finally:
        if own:
            history.close()
    ratios = [(likeness(plan, r), r["tokens_per_second"] / r["est_datasheet_tokens_per_second"])
              for r in rows if r["est_datasheet_tokens_per_second"]]
    rates = [(likeness(plan, r), r["tokens_per_second"] * r["est_flops_per_token"])
             for r in rows if r["est_flops_per_token"]]
    if not ratios and not rates:
        return None
    return {"device": plan.device, "method": plan.method, "runs": len(rows), "run_ids": [r["run_id"] for r in rows],
            "speed_ratio": round(_weighted_geomean(ratios), 4) if ratios else None,
            "flops_per_second": _weighted_geomean(rates) if rates else None,
            "runs_with_ratio": len(ratios), "runs_with_rate": len(rates)}


def _weighted_median(pairs: list[tuple[float, float]]) -> float:
    pairs = sorted(pairs, key=lambda p: p[1])
    total, seen = sum(w for w, _ in pairs), 0.0
    for i, (w, value) in enumerate(pairs):
        seen += w
        if seen > total / 2:
            return value
        if seen == total / 2:  # on the middle between two: their mean
            return (value + pairs[i + 1][1]) / 2
    return pairs[-1][1]


def memory_calibration(plan: Alike, history: History | None = None, source: str | None = None) -> dict | None:
    """{device, method, runs, run_ids, same_model, ratio}: the measured peak (measured_peak_gib) over the per-device
    estimate each run was planned with, the likeness-weighted median over this device's runs with this method (the
    time calibration's runs, `_runs`), counting only estimates of `source` (analytic or simulated) when given;
    None without one."""
    own = history is None
    history = history or History()
    try:
        rows = [r for r in _runs(history, plan) if measured_peak_gib(r) and (r["est_per_device_gib"] or 0) > 0
                and (source is None or (r["est_source"] or "analytic") == source)]
    finally:
        if own:
            history.close()
    if not rows:
        return None
    pairs = [(likeness(plan, r), measured_peak_gib(r) / r["est_per_device_gib"]) for r in rows]
    same = sum(1 for r in rows if plan.model_params and r["model_params"] == plan.model_params)
    return {"device": plan.device, "method": plan.method, "runs": len(rows), "run_ids": [r["run_id"] for r in rows],
            "same_model": same, "ratio": round(_weighted_median(pairs), 4)}
