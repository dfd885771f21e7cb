"""Plan settings the fake step does not run, put on its figures as stand-ins of the same memory.

DeepSpeed ZeRO (stage 2 shards gradients and optimizer states over the ranks; stage 3 the
weights and trainable parameters too, with the layers gathered around the one computing; offload
moves the states to CPU RAM) and Liger's fused linear cross-entropy (the logits computed a chunk
of tokens at a time, never whole) change how much of each term a rank holds, not which layers run.
So the step is simulated without them, as one GPU's, and each term of its breakdown at the peak is
scaled by the analytic model's per-rank fraction for that term (tui/plan/memory.py: the term with
the setting over the term without). The peak moves by what the scaled terms give up; the
allocator's reserve by the same share. Each is named in `estimate.simulated.stand_ins`.

This is a stand-in, not a simulation of the sharded step: ZeRO's communication buckets and the
timing of its gathers are the analytic model's, said as such.
"""

from __future__ import annotations

from dataclasses import replace

from tui.plan.memory import estimate

# The simulated kinds (tui/lf/simulate_tracker.py) the settings change, and the analytic terms
# whose per-rank fraction scales each.
TERM_OF_KIND = {"weights": "weights", "trainable": "trainable", "gradients": "gradients",
                "optimizer_state": "optimizer", "logits": "logits"}


def standin_names(shape) -> list[str]:
    names = []
    if shape.zero_stage and shape.n_gpus > 1:
        what = {2: "gradients and optimizer states", 3: "weights, gradients and optimizer states"}[shape.zero_stage]
        offload = ", optimizer states offloaded to CPU RAM" if shape.offload else ""
        names.append(f"DeepSpeed ZeRO-{shape.zero_stage} over {shape.n_gpus} GPUs: {what} as per-rank fractions of "
                     f"the simulated terms{offload}")
    if shape.liger:
        names.append("Liger's fused linear cross-entropy: the simulated logits scaled to its chunked logits")
    return names


def fractions(shape) -> dict[str, float]:
    """Each simulated kind's per-rank fraction under `shape`'s ZeRO and Liger settings ({} without)."""
    if not standin_names(shape):
        return {}
    shape = replace(shape, calibration=None)
    plain = replace(shape, n_gpus=1, zero_stage=0, offload=False, liger=False)
    with_it, without = estimate(shape).breakdown, estimate(plain).breakdown
    return {kind: (with_it[term] / without[term] if without[term] else 1.0) for kind, term in TERM_OF_KIND.items()}


def apply_standins(answer: dict, shape) -> dict:
    """`answer` (simulate_step.py's) with its terms at the peak scaled as `shape`'s settings hold
    them per rank; unchanged where they do not apply."""
    scale = fractions(shape) if shape is not None else {}
    if not scale:
        return answer
    breakdown = dict(answer["breakdown"])
    saved = 0.0
    for kind, factor in scale.items():
        if kind in breakdown:
            saved += breakdown[kind] * (1 - factor)
            breakdown[kind] *= factor
    peak = answer["peak_bytes"]
    new_peak = max(peak - saved, 0.0)
    share = new_peak / peak if peak else 1.0
    scaled = {**answer, "breakdown": breakdown, "peak_bytes": new_peak,
              "stand_ins": [*answer.get("stand_ins", []), *standin_names(shape)]}
    if answer.get("reserved_peak_bytes"):
        # the reserve over the peak shrinks with it: each mode's reserved figure, scaled by the same share
        scaled["reserved_peak_bytes"] = {mode: new_peak + (reserved - peak) * share
                                         for mode, reserved in answer["reserved_peak_bytes"].items()}
    return scaled
