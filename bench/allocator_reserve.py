"""What the CUDA caching allocator reserves beyond what a training step allocates, on the
simulated step of many configurations (the rows of bench/memory_simulated.py). Prints figures;
asserts nothing.

    python bench/allocator_reserve.py                # every row (minutes)
    python bench/allocator_reserve.py --only 7b      # rows whose model or setting contains the text

The simulated step's allocations and frees are replayed through a model of the caching allocator
(tui/lf/simulate_allocator.py) in its default mode and with expandable_segments:True. Columns:
`alloc` the step's peak of live storages (GiB), `default` / `expand` the peak reserved in each
mode, and each mode's reserve as a share of the peak (`+%`) and of the short-lived bytes at the
peak (activations, backward temporaries, logits, optimizer-step temporaries: `/act`), the figure
the analytic estimate's fragmentation term (tui/plan/memory.py) is taken from.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from memory_simulated import ROWS, label, model_folder, next_answer, settings_of, start_simulations  # noqa: E402

from tui.common.profiles import load_profiles  # noqa: E402
from tui.plan.memory import GIB  # noqa: E402

SHORT_LIVED = ("activations", "backward", "logits", "optimizer_step", "inputs")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="rows whose model name and setting contain this")
    parser.add_argument("--limit", type=int, help="the first N rows only")
    parser.add_argument("--python", default=sys.executable, help="the training environment's python")
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args(argv)
    profiles = {p.name: p.data for p in load_profiles().of("models")}
    rows = [r for r in ROWS if not args.only or args.only in f"{r[0]} {label(r[1], r[2], settings_of(*r[1:]))}"]
    rows = rows[:args.limit]
    results = []
    with tempfile.TemporaryDirectory(prefix="sft-tui-bench-reserve-") as tmp:
        requests = []
        for i, (model, method, extra, batch, tokens) in enumerate(rows):
            folder = model_folder(tmp, i, model, profiles)
            requests.append({"model": folder, "settings": settings_of(method, extra, batch, tokens)})
        proc = start_simulations(args.python, requests)
        header = (f"{'model':<16} {'method':<34} {'bs x L':>9} {'alloc':>7} {'default':>8} {'+%':>6} {'/act':>6} "
                  f"{'expand':>8} {'+%':>6} {'/act':>6}")
        print(header)
        print("-" * len(header))
        for (model, method, extra, batch, tokens), request in zip(rows, requests, strict=True):
            answer = next_answer(proc)
            name = label(method, extra, request["settings"])
            if "error" in answer or "reserved_peak_bytes" not in answer:
                print(f"{model:<16} {name:<34} {batch:>4}x{tokens:<4} error: {answer.get('error', '?')[:70]}", flush=True)
                continue
            peak = answer["peak_bytes"]
            short = sum(answer["breakdown"].get(kind, 0) for kind in SHORT_LIVED)
            row = {"model": model, "method": name, "batch": batch, "tokens": tokens, "alloc_gib": round(peak / GIB, 3),
                   "short_lived_gib": round(short / GIB, 3)}
            cells = []
            for mode in ("default", "expandable_segments"):
                reserved = answer["reserved_peak_bytes"][mode]
                reserve = reserved - peak
                row[mode] = {"reserved_gib": round(reserved / GIB, 3), "of_peak": round(reserve / peak, 4),
                             "of_short_lived": round(reserve / short, 4) if short else None}
                per_short = f"{reserve / short:>6.2f}" if short else f"{'-':>6}"
                cells.append(f"{reserved / GIB:>8.2f} {reserve / peak:>+6.1%} {per_short}")
            results.append(row)
            print(f"{model:<16} {name:<34} {batch:>4}x{tokens:<4} {peak / GIB:>7.2f} {cells[0]} {cells[1]}", flush=True)
        proc.wait()
    for mode in ("default", "expandable_segments"):
        if results:
            of_peak = [r[mode]["of_peak"] for r in results]
            of_short = [r[mode]["of_short_lived"] for r in results if r[mode]["of_short_lived"] is not None]
            print(f"{mode}: reserve median {statistics.median(of_peak):+.1%} of the peak (from {min(of_peak):+.1%} "
                  f"to {max(of_peak):+.1%}); median {statistics.median(of_short):.2f} x the short-lived bytes "
                  f"(max {max(of_short):.2f})")
    if args.json:
        Path(args.json).write_text(json.dumps({"rows": results}, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
