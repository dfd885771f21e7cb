"""The planner's search run again on the analytic model calibrated on this model's simulated steps.

tui/plan/simulated.py judges the chosen plan on its simulated step. Here a second step, at half the
length, is simulated (cached like the first), the analytic terms are fitted to the two
(tui/plan/memory_calibration.py), and the search runs again on the calibrated model: in both
directions, a batch or cutoff that the analytic model thought too big where it overestimates (full
fine-tuning, long logits) as much as a smaller one where it underestimates (eager attention). The
plan it chooses is simulated at exactly its shape and taken only where that step fits.
"""

from __future__ import annotations

from dataclasses import replace

from tui.plan.memory import GIB, estimate
from tui.plan.memory_calibration import Calibration, fit, half_length, parts
from tui.plan.reserve import simulated_reserve_gib
from tui.plan.simulated_standins import apply_standins

# The simulated kinds (tui/lf/simulate_tracker.py) of the analytic model's fixed terms.
SIMULATED_FIXED = ("weights", "trainable", "gradients", "optimizer_state")
# The settings whose change makes another plan shape (what the second search may choose differently).
SHAPE_KEYS = ("per_device_train_batch_size", "gradient_accumulation_steps", "disable_gradient_checkpointing",
              "cutoff_len", "quantization_bit", "deepspeed", "finetuning_type")


def same_shape(a, b) -> bool:
    return all(a.settings.get(k) == b.settings.get(k) for k in SHAPE_KEYS)


def calibrate(plan, request, simulate_at) -> Calibration | None:
    """The calibration from `plan`'s simulated step and one more at half its length, or None
    where there is no second point (too short, the simulation failed). `simulate_at(plan,
    cutoff_len)` is that step's answer (tui/plan/simulated.py, cached) or None."""
    half = half_length(plan.seq_len)
    if half is None or plan.shape is None or not plan.simulated or plan.simulated.get("peak_gib") is None:
        return None
    answer = simulate_at(plan, half)
    if answer is None:
        return None
    answer = apply_standins(answer, replace(plan.shape, seq_len=half))  # as the first step's were
    uncalibrated = replace(plan.shape, calibration=None)
    fixed, growing = parts(estimate(uncalibrated).breakdown)
    _, growing_half = parts(estimate(replace(uncalibrated, seq_len=half)).breakdown)
    # the card's figures less the context: each peak with the allocator's reserve over it
    reserve_half = simulated_reserve_gib(request.devices[0].vendor, answer) or 0.0
    at_peak = plan.simulated.get("breakdown") or {}
    simulated_fixed = sum(at_peak.get(kind, 0.0) for kind in SIMULATED_FIXED)
    return fit(fixed, growing, plan.simulated["peak_gib"] + plan.simulated.get("reserve_gib", 0.0), growing_half,
               answer["peak_bytes"] / GIB + reserve_half, simulated_fixed or None,
               phases=(plan.simulated.get("phase", ""), answer.get("phase", "")))


def search_again(plan, request, judge, simulate_at):
    """The plan to use after `plan` was judged on its simulated step: the calibrated search's
    choice where it is of another shape, its own simulated step fits, and it uses more of the card
    than `plan` (or `plan` does not fit); else `plan`. `simulate_at` as calibrate's; `judge(p)`
    judges a plan on its simulated step and says whether it could."""
    from tui.plan.planner import plan as make_plan

    calibration = calibrate(plan, request, simulate_at)
    if calibration is None:
        return plan
    plan.simulated["calibration"] = calibration.to_json()
    if plan.fits and calibration.how != "two points":
        return plan  # one ratio only makes a plan that does not fit smaller, never one that fits bigger
    try:
        again = make_plan(replace(request, memory_calibration=calibration.factors()))
    except ValueError:
        return plan
    if same_shape(again, plan):
        return plan
    again.capacity_gib = plan.capacity_gib
    if not judge(again) or not again.fits:
        return plan
    if plan.fits and again.estimate.per_device_gib <= plan.estimate.per_device_gib:
        return plan  # a plan that fits is given up only for one that uses more of the card
    needs = plan.estimate.per_device_gib
    first = "did not fit" if not plan.fits else "fitted with room to spare"
    again.estimate.notes.append(
        f"memory: re-planned: the first plan's simulated step needed {needs:.1f} GiB against the analytic "
        f"{plan.simulated['analytic_gib']:.1f} GiB and {first}; the search ran again on the analytic model "
        f"calibrated on this model's simulated steps ({calibration.how}: fixed terms x{calibration.alpha:.2f}, "
        f"activations and logits x{calibration.beta:.2f}), and this plan's own simulated step fits")
    assert again.simulated is not None  # judged on its simulated step above
    again.simulated["calibration"] = calibration.to_json()
    again.simulated["replanned_from"] = {"settings": {k: plan.settings.get(k) for k in SHAPE_KEYS},
                                         "per_device_gib": round(needs, 3)}
    return again
