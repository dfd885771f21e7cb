"""The analytic memory model fitted to two simulated steps (tui/plan/memory_calibration.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tui.common.profiles import load_profiles
from tui.models.architecture import Architecture
from tui.plan.memory import TrainingShape, estimate
from tui.plan.memory_calibration import BOUNDS, fit, half_length, parts

PROFILES = {p.name: p.data for p in load_profiles().of("models")}


def shape(tokens: int, **changes) -> TrainingShape:
    arch = Architecture.from_config(PROFILES["qwen2.5-7b"]["architecture"])
    return TrainingShape(arch=arch, seq_len=tokens, **changes)


def test_two_points_recover_the_factors_of_a_model_that_follows_the_analytic_form():
    fixed, growing = parts(estimate(shape(2048)).breakdown)
    _, growing_half = parts(estimate(shape(1024)).breakdown)
    # a "simulation" that is the analytic model with its fixed part 10 % heavier, its growing part 30 % lighter
    calibration = fit(fixed, growing, 1.1 * fixed + 0.7 * growing, growing_half, 1.1 * fixed + 0.7 * growing_half)
    assert calibration.how == "two points"
    measured = fit(fixed, growing, 1.1 * fixed + 0.7 * growing, growing_half, 1.1 * fixed + 0.7 * growing_half,
                   simulated_fixed=1.1 * fixed)
    assert measured.alpha == pytest.approx(1.1) and measured.beta == pytest.approx(0.7)
    assert calibration.alpha == pytest.approx(1.1) and calibration.beta == pytest.approx(0.7)


def test_the_calibrated_shape_gives_the_simulated_figure_at_a_third_shape():
    fixed, growing = parts(estimate(shape(2048)).breakdown)
    _, growing_half = parts(estimate(shape(1024)).breakdown)
    calibration = fit(fixed, growing, 1.1 * fixed + 0.7 * growing, growing_half, 1.1 * fixed + 0.7 * growing_half)
    four = estimate(shape(2048, micro_batch=4))
    calibrated = estimate(shape(2048, micro_batch=4, calibration=calibration.factors()))
    f4, g4 = parts(four.breakdown)
    assert sum(parts(calibrated.breakdown)) == pytest.approx(1.1 * f4 + 0.7 * g4)
    assert calibrated.breakdown["overhead"] == pytest.approx(0.5)  # the context: the reserve is in the calibrated terms
    assert any(note.startswith("calibrated on this model's simulated steps") for note in calibrated.notes)


def test_a_peak_that_does_not_grow_with_the_tokens_falls_back_to_one_ratio():
    fixed, growing = parts(estimate(shape(2048)).breakdown)
    _, growing_half = parts(estimate(shape(1024)).breakdown)
    peak = fixed + growing  # the optimizer step's peak: the same at both lengths
    calibration = fit(fixed, growing, peak * 0.9, growing_half, peak * 0.9)
    assert calibration.how.startswith("one ratio") and str(BOUNDS) in calibration.how
    assert calibration.alpha == calibration.beta == pytest.approx(0.9)


def test_no_change_in_the_growing_part_is_one_ratio_too():
    calibration = fit(10.0, 2.0, 13.0, 2.0, 13.0)
    assert calibration.how == "one ratio: the two lengths change no analytic term"
    assert calibration.alpha == pytest.approx(13 / 12)


@pytest.mark.parametrize("tokens, half", [(2048, 1024), (1000, 496), (130, 64), (100, None)])
def test_the_second_point_is_half_the_length_on_a_multiple_of_8(tokens, half):
    assert half_length(tokens) == half


def test_factors_of_one_keep_every_term_and_leave_the_reserve_to_them():
    plain, ones = estimate(shape(1024)), estimate(replace(shape(1024), calibration=(1.0, 1.0)))
    assert parts(ones.breakdown) == pytest.approx(parts(plain.breakdown))
    assert ones.breakdown["overhead"] == pytest.approx(0.5) and plain.breakdown["overhead"] > 0.5


def test_peaks_outside_backward_give_one_ratio():
    fixed, growing = parts(estimate(shape(2048, finetuning_type="full")).breakdown)
    _, growing_half = parts(estimate(shape(1024, finetuning_type="full")).breakdown)
    calibration = fit(fixed, growing, 0.9 * fixed, growing_half, 0.9 * fixed, simulated_fixed=0.9 * fixed,
                      phases=("optimizer", "backward"))
    assert calibration.how == "one ratio: the peaks fall in optimizer and backward, not both in backward"
    assert calibration.alpha == calibration.beta
