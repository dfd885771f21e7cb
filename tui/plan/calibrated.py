"""The plan's time estimate corrected by the user's own runs (tui.history.calibration): on a device the
run history has seen, the datasheet estimate is scaled by the speed those runs measured against theirs,
and a device with no datasheet peak (a CPU) gets a time at the FLOP/s its runs achieved. The estimate's
`calibration` says so, with the sentence the plan prints; `--no-history` plans without it.

The history is read, never written, here; a history that cannot be read leaves the estimate as it was.
"""

from __future__ import annotations

from dataclasses import replace

from tui.history.calibration import Alike, time_calibration
from tui.history.record import attention_of, method_of
from tui.history.store import HistoryProblem
from tui.plan.timing import TimeEstimate


def alike_of(plan, request) -> Alike:
    s = plan.settings
    return Alike(device=request.devices[0].name, method=method_of(s), model_params=getattr(request.model, "params", None),
                 attention=attention_of(s), cutoff_len=s.get("cutoff_len"), micro_batch=s.get("per_device_train_batch_size"))


def _percent(ratio: float) -> str:
    change = round((ratio - 1) * 100)
    return f"{change:+d} %".replace("+0 %", "0 %")


def calibrated_time(t: TimeEstimate, cal: dict, device: str) -> TimeEstimate | None:
    """The estimate at the measured speed, or None when neither figure applies to it."""
    n = cal["runs"]
    of = f"calibrated from {n} of your runs on {device}"
    if t.seconds and t.tokens_per_second and cal["speed_ratio"]:
        ratio = cal["speed_ratio"]
        seconds, rate = t.seconds / ratio, t.tokens_per_second * ratio
        text = f"{of}: speed {_percent(ratio)}"
        figure = {"speed_ratio": ratio, "uncalibrated_seconds": round(t.seconds),
                  "uncalibrated_tokens_per_second": round(t.tokens_per_second, 1)}
    elif t.tokens and t.flops_per_token and cal["flops_per_second"]:
        rate = cal["flops_per_second"] / t.flops_per_token
        seconds = t.tokens / rate
        text = f"{of}: {cal['flops_per_second'] / 1e9:,.1f} GFLOP/s measured (no datasheet speed)"
        figure = {"flops_per_second": round(cal["flops_per_second"]), "uncalibrated_seconds": None,
                  "uncalibrated_tokens_per_second": None}
    else:
        return None
    gpu_hours = None if t.gpu_hours is None else t.gpu_hours * seconds / t.seconds if t.seconds else None
    if gpu_hours is None:
        gpu_hours = seconds / 3600  # one device (a CPU, or a card whose estimate had no time)
    cost = None if t.price_per_gpu_hour is None else gpu_hours * t.price_per_gpu_hour
    calibration = {"text": text, "device": device, "method": cal["method"], "runs": n, "run_ids": cal["run_ids"],
                   **figure}
    return replace(t, seconds=seconds, tokens_per_second=rate, gpu_hours=gpu_hours, cost=cost,
                   assumptions=[text] + t.assumptions, calibration=calibration)


def apply_history(plan, request, enabled: bool = True):
    """The plan with its time estimate calibrated from the run history, when enabled and it applies."""
    if not enabled or plan.time_estimate is None or not request.devices:
        return plan
    alike = alike_of(plan, request)
    try:
        cal = time_calibration(alike)
    except HistoryProblem:
        return plan
    if cal is None:
        return plan
    calibrated = calibrated_time(plan.time_estimate, cal, alike.device)
    if calibrated is not None:
        plan.time_estimate = calibrated
    return plan
