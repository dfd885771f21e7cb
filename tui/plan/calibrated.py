"""The plan's time estimate corrected by the user's own runs (tui.history.calibration): on a device the
run history has seen, the datasheet estimate is scaled by the speed those runs measured against theirs,
and a device with no datasheet peak (a CPU) gets a time at the FLOP/s its runs achieved. The estimate's
`calibration` says so, with the sentence the plan prints; `--no-history` plans without it. The memory
verdict learns from the same runs (what they peaked at over their estimate, the median): one run is a
note, two or more judge fits / tight / does not fit on the corrected figure (`estimate.history`).

The history is read, never written, here; a history that cannot be read leaves the estimate as it was.
"""

from __future__ import annotations

from dataclasses import replace

from tui.history.calibration import Alike, memory_calibration, time_calibration
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
    elif t.seconds is None and t.tokens_per_second and t.seconds_per_1000_rows and cal["speed_ratio"]:
        ratio = cal["speed_ratio"]  # no dataset: no total, but the speed and the time per 1,000 rows
        text = f"{of}: speed {_percent(ratio)}"
        calibration = {"text": text, "device": device, "method": cal["method"], "runs": n, "run_ids": cal["run_ids"],
                       "speed_ratio": ratio, "uncalibrated_seconds": None,
                       "uncalibrated_tokens_per_second": round(t.tokens_per_second, 1)}
        return replace(t, tokens_per_second=t.tokens_per_second * ratio, seconds_per_1000_rows=t.seconds_per_1000_rows / ratio,
                       assumptions=[text] + t.assumptions, calibration=calibration)
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


MIN_RUNS_TO_CORRECT = 2  # one run notes its ratio; from two on, the verdict is judged on the corrected figure
MEMORY_WARNINGS = ("does not fit:", "tight:")


def _drop_memory_judgement(plan) -> None:
    """Forget a memory judgement from the history made earlier on this plan, and its note."""
    if plan.memory_history is not None and plan.memory_history["text"] in plan.estimate.notes:
        plan.estimate.notes.remove(plan.memory_history["text"])
    plan.memory_history = None


def correct_memory(plan, cal: dict, device: str) -> None:
    """The memory verdict from what this device's runs peaked at against their estimates (tui.history.calibration):
    the note always; from MIN_RUNS_TO_CORRECT runs on, fits / tight / does not fit judged on the estimate times
    their median ratio (that figure and no lower), the memory warnings and suggestions with it. The estimate, its
    breakdown and the settings stay as the planner chose them; `estimate.history` in the JSON says all of it."""
    from tui.plan.values import SAFETY_MARGIN

    _drop_memory_judgement(plan)  # judged again (its simulated step came): one note
    n, ratio, estimated = cal["runs"], cal["ratio"], plan.estimate.per_device_gib
    runs = f"your {n} run{'s' if n != 1 else ''}"
    of = "of this model" if cal["same_model"] == n else "like this one"
    text = f"{runs} {of} on {device} peaked at {ratio:.2f}x the estimate" + (" (median)" if n > 1 else "")
    corrected = estimated * ratio
    applied = n >= MIN_RUNS_TO_CORRECT
    if applied:
        text += f": judged on {corrected:.1f} GiB per device"
    else:
        text += f"; one run is not enough to judge by ({MIN_RUNS_TO_CORRECT} are), so the verdict is the estimate's"
    plan.estimate.notes.append(text)
    plan.memory_history = {"text": text, "device": device, "method": cal["method"], "runs": n, "run_ids": cal["run_ids"],
                           "same_model": cal["same_model"], "ratio": ratio, "estimated_gib": round(estimated, 3),
                           "corrected_gib": round(corrected, 3) if applied else None, "applied": applied,
                           "fits_uncorrected": plan.fits}
    if not applied:
        return
    was_fit, usable = plan.fits, plan.usable_gib
    plan.fits = corrected <= usable
    fresh = []
    if not plan.fits:
        fresh.append(f"does not fit: needs {corrected:.1f} GiB per device by your runs' peaks "
                     f"(the estimate {estimated:.1f} GiB), {usable:.1f} GiB usable")
    elif corrected > plan.capacity_gib * (1 - 2 * SAFETY_MARGIN):
        fresh.append(f"tight: {corrected:.1f} of {usable:.1f} usable GiB by your runs' peaks, within the safety margin "
                     "of the limit")
    plan.warnings = fresh + [w for w in plan.warnings if not w.startswith(MEMORY_WARNINGS) and "no longer fits" not in w]
    if plan.fits and not was_fit:
        plan.suggestions = []
    elif was_fit and not plan.fits:
        plan.suggestions = ["a smaller per_device_train_batch_size, with more gradient_accumulation_steps",
                            f"a shorter cutoff_len than {plan.settings.get('cutoff_len')}"]


def apply_history(plan, request, enabled: bool = True):
    """The plan with its time estimate calibrated, and its memory judged, from the run history, when enabled
    and the history has runs like it. Applied again to the same plan (the wizard's, once its simulated step
    answers) it calibrates the time once and judges the memory anew, with one note."""
    if not enabled or not request.devices:
        return plan
    alike = alike_of(plan, request)
    try:
        cal = time_calibration(alike) if plan.time_estimate is not None else None
        source = "simulated" if (plan.simulated or {}).get("peak_gib") is not None else "analytic"
        memory = memory_calibration(alike, source=source)
    except HistoryProblem:
        return plan
    if cal is not None and plan.time_estimate.calibration is None:  # once: a plan judged again keeps it
        calibrated = calibrated_time(plan.time_estimate, cal, alike.device)
        if calibrated is not None:
            plan.time_estimate = calibrated
    if memory is not None:
        correct_memory(plan, memory, alike.device)
    else:  # a judgement before from runs of the other source is not this estimate's
        _drop_memory_judgement(plan)
    return plan
