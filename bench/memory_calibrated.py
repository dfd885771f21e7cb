"""The analytic memory model calibrated on two simulated steps, against a third simulated step.
Prints figures; asserts nothing.

    python bench/memory_calibrated.py --only 7b     # rows of bench/memory_simulated.py whose name has the text

For each row (b rows x L tokens): the steps at (b, L) and (b, L/2) are simulated and the analytic
terms fitted to them as the planner does (tui/plan/memory_calibration.py: the fixed factor from the
simulation's fixed kinds at its peak, the growing factor by least squares; each figure the peak
plus the allocator's reserve with expandable segments). Then the step at (2b, L), the shape the
search moves to when memory is left, is simulated and predicted: `analytic` and `calibrated` are
each model's error there against the simulation (context left out of all three).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from memory_simulated import ROWS, architecture, label, model_folder, next_answer, settings_of, start_simulations  # noqa: E402

from tui.common.profiles import load_profiles  # noqa: E402
from tui.plan.memory import GIB, TrainingShape, estimate  # noqa: E402
from tui.plan.memory_calibration import fit, half_length, parts  # noqa: E402

FIXED_KINDS = ("weights", "trainable", "gradients", "optimizer_state")


def shape_of(arch, s: dict, batch: int, tokens: int) -> TrainingShape:
    return TrainingShape(
        arch=arch, finetuning_type=s["finetuning_type"], compute_bytes=2, pure_bf16=bool(s.get("pure_bf16")),
        micro_batch=batch, seq_len=tokens, gradient_checkpointing=s["gradient_checkpointing"],
        attention={"disabled": "eager", "fa2": "fa2"}.get(s["flash_attn"], "sdpa"),
        quantization_bit=s.get("quantization_bit"), optim=s.get("optim") or "adamw_torch")


def card(answer: dict) -> float:
    """The simulated figure less the context: the peak plus the reserve with expandable segments."""
    return answer["reserved_peak_bytes"]["expandable_segments"] / GIB


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="rows whose model name and setting contain this")
    parser.add_argument("--python", default=sys.executable, help="the training environment's python")
    args = parser.parse_args(argv)
    profiles = {p.name: p.data for p in load_profiles().of("models")}
    rows = [r for r in ROWS if not args.only or args.only in f"{r[0]} {label(r[1], r[2], settings_of(*r[1:]))}"]
    rows = [r for r in rows if half_length(r[4])]
    results = []
    with tempfile.TemporaryDirectory(prefix="sft-tui-bench-cal-") as tmp:
        requests = []
        for i, (model, method, extra, batch, tokens) in enumerate(rows):
            folder = model_folder(tmp, i, model, profiles)
            for b, t in ((batch, tokens), (batch, half_length(tokens)), (2 * batch, tokens)):
                requests.append({"model": folder, "settings": settings_of(method, extra, b, t)})
        proc = start_simulations(args.python, requests)
        header = f"{'model':<16} {'method':<34} {'bs x L':>9} {'-> 2bs':>7} {'sim':>7} {'analytic':>9} {'calibrated':>10}  how"
        print(header)
        print("-" * len(header))
        for model, method, extra, batch, tokens in rows:
            answers = [next_answer(proc) for _ in range(3)]
            s = settings_of(method, extra, batch, tokens)
            name = label(method, extra, s)
            if any("error" in a for a in answers):
                print(f"{model:<16} {name:<34} {batch:>4}x{tokens:<4} error", flush=True)
                continue
            arch = architecture(model, profiles)
            fixed, growing = parts(estimate(shape_of(arch, s, batch, tokens)).breakdown)
            _, growing_half = parts(estimate(shape_of(arch, s, batch, half_length(tokens))).breakdown)
            at_peak = answers[0]["breakdown"]
            calibration = fit(fixed, growing, card(answers[0]), growing_half, card(answers[1]),
                              sum(at_peak.get(k, 0) for k in FIXED_KINDS) / GIB or None,
                              phases=(answers[0]["phase"], answers[1]["phase"]))
            target = shape_of(arch, s, 2 * batch, tokens)
            plain = estimate(target)
            analytic = sum(parts(plain.breakdown)) + plain.breakdown["overhead"] - 0.5  # its reserve, not its context
            f2, g2 = parts(plain.breakdown)
            calibrated = calibration.alpha * f2 + calibration.beta * g2
            truth = card(answers[2])
            row = {"model": model, "method": name, "batch": batch, "tokens": tokens, "simulated_gib": round(truth, 3),
                   "analytic_diff": round(analytic / truth - 1, 4), "calibrated_diff": round(calibrated / truth - 1, 4),
                   "calibration": calibration.to_json()}
            results.append(row)
            print(f"{model:<16} {name:<34} {batch:>4}x{tokens:<4} {2 * batch:>7} {truth:>7.2f} {analytic / truth - 1:>+9.1%} "
                  f"{calibrated / truth - 1:>+10.1%}  {answers[0]['phase']}/{answers[2]['phase']} {calibration.how[:40]}", flush=True)
        proc.wait()
    if results:
        for key in ("analytic_diff", "calibrated_diff"):
            diffs = [abs(r[key]) for r in results]
            print(f"{key.split('_')[0]}: median |error| {statistics.median(diffs):.1%}, max {max(diffs):.1%}, "
                  f"within 3 %: {sum(d <= 0.03 for d in diffs)} of {len(diffs)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
