"""The analytic memory model calibrated on this model's own simulated steps.

The planner's search (batch, cutoff, checkpointing, quantization, levers) runs on the analytic
model, which is instant. Once the chosen plan's step is simulated (tui/plan/simulated.py), one more
step is simulated at half its length, and the analytic terms are fitted to the two peaks:

    alpha * F = S_fixed(L),    alpha * F + beta * D(l) = S(l)  for l = L, L/2 (least squares)

F is the fixed part (weights, trainable parameters, gradients, optimizer states: what does not
grow with the tokens), D the part that does (activations and logits, eager attention's quadratic
term included), S the simulated peak of live storages plus the caching allocator's reserve over it
(tui/plan/reserve.py), all without the context; the calibrated estimate's overhead is then the
context alone. S_fixed is what the simulation counts as weights, trainable parameters, gradients
and optimizer state at its peak. The fit needs both peaks in backward, which the analytic terms
describe; a peak in forward (before any gradient) or in the optimizer step gives one ratio, which
the search uses only to make a plan that does not fit smaller (tui/plan/simulated_search.py).
The search then runs again on the calibrated model (TrainingShape.calibration scales the terms); a plan of
another shape is simulated at exactly its shape and taken only where its own step fits. Where the
two points cannot tell the parts apart (a peak in the optimizer step does not grow with the
tokens), or a factor falls outside BOUNDS, one ratio S(L) / (F + D(L)) scales both.

Both simulations are cached by settings, so planning the same model again costs none.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

FIXED = ("weights", "trainable", "gradients", "optimizer")
GROWING = ("activations", "logits")
BOUNDS = (0.5, 2.0)  # a factor beyond these says the two points do not fit the model's form
MIN_HALF_TOKENS = 64  # the second point's length at least: shorter steps say little of the slope


@dataclass(frozen=True)
class Calibration:
    alpha: float  # the fixed part's factor
    beta: float  # the growing part's factor
    how: str  # "two points" or "one ratio" (and why)

    def factors(self) -> tuple[float, float]:
        return self.alpha, self.beta

    def to_json(self) -> dict:
        return {"fixed_factor": round(self.alpha, 4), "growing_factor": round(self.beta, 4), "how": self.how}


def parts(breakdown: dict[str, float]) -> tuple[float, float]:
    """(fixed, growing) of an analytic breakdown in GiB, the overhead left out."""
    return sum(breakdown.get(k, 0.0) for k in FIXED), sum(breakdown.get(k, 0.0) for k in GROWING)


def fit(fixed: float, growing: float, simulated: float, growing_half: float, simulated_half: float,
        simulated_fixed: float | None = None, phases: tuple[str, ...] = ()) -> Calibration:
    """The factors that make the analytic terms give both simulated figures (GiB). The fixed
    factor is measured where the simulation says what of its peak is fixed (`simulated_fixed`:
    weights, trainable, gradients and optimizer state live at the peak); the growing factor is
    then the least-squares fit of what is left at the two lengths. Without `simulated_fixed` both
    come from the two points, which is ill-conditioned where the fixed part is small."""
    ratio = simulated / (fixed + growing) if fixed + growing > 0 else 1.0
    one = Calibration(ratio, ratio, "one ratio")
    if growing - growing_half <= 1e-9 or fixed <= 0:
        return replace(one, how="one ratio: the two lengths change no analytic term")
    if any(phase != "backward" for phase in phases):
        # the analytic terms describe a backward peak; one in forward (no gradients yet) or in the
        # optimizer step (the states' temporaries) tells neither factor
        return replace(one, how=f"one ratio: the peaks fall in {' and '.join(phases)}, not both in backward")
    if simulated_fixed is not None:
        alpha = simulated_fixed / fixed
        beta = ((simulated - alpha * fixed) * growing + (simulated_half - alpha * fixed) * growing_half) / (
            growing**2 + growing_half**2)
    else:
        beta = (simulated - simulated_half) / (growing - growing_half)
        alpha = (simulated - beta * growing) / fixed
    if not all(BOUNDS[0] <= x <= BOUNDS[1] for x in (alpha, beta)):
        return replace(one, how=f"one ratio: two points gave {alpha:.2f} and {beta:.2f}, outside {BOUNDS}")
    return Calibration(alpha, beta, "two points")


def half_length(tokens: int) -> int | None:
    """The second point's length: half, on a multiple of 8; None when too short to tell a slope."""
    half = (tokens // 2) // 8 * 8
    return half if half >= MIN_HALF_TOKENS else None
