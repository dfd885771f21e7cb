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

A memory figure the same way: measured peak reserved over the estimated per-device peak (runs that
recorded vram, RECORD_VRAM=1 on a GPU), for the plan's memory judgement to read.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

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


def memory_calibration(plan: Alike, history: History | None = None) -> dict | None:
    """{device, method, runs, ratio}: measured peak reserved over the estimated peak, from this device's runs
    with this method that recorded vram (a CPU records 0: not counted); None without one."""
    own = history is None
    history = history or History()
    try:
        rows = [r for r in _runs(history, plan) if (r["peak_reserved_gib"] or 0) > 0 and (r["est_per_device_gib"] or 0) > 0]
    finally:
        if own:
            history.close()
    if not rows:
        return None
    pairs = [(likeness(plan, r), r["peak_reserved_gib"] / r["est_per_device_gib"]) for r in rows]
    return {"device": plan.device, "method": plan.method, "runs": len(rows), "ratio": round(_weighted_geomean(pairs), 4)}
