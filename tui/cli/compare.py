"""The compare sub-command: settings that differ and what each run measured (see tui.runs.compare)."""

from __future__ import annotations

from pathlib import Path

from tui.cli.common import EXIT_OK, UserError, print_json

DETAIL_WIDTH = 40  # a failure's sentence is cut to this in the table; --json has it whole


def _loss(value, step=None) -> str:
    if value is None:
        return "-"
    return f"{value:.4f}" + (f" @{step}" if step is not None else "")


def _seconds(seconds) -> str:
    from tui.runs.logfiles import format_duration

    if seconds is None:
        return "-"
    return f"{seconds:.1f} s" if seconds < 60 else format_duration(seconds)


def _gib(value) -> str:
    if value is None:
        return "-"
    return f"{value:.1f} GiB" if value >= 1 else f"{value:.2g} GiB"


def _rate(value) -> str:
    return "-" if value is None else (f"{value:,.0f}" if value >= 100 else f"{value:.3g}")


def _status(run) -> str:
    if not run.detail:
        return run.status
    detail = run.detail if len(run.detail) <= DETAIL_WIDTH else run.detail[:DETAIL_WIDTH - 3] + "..."
    return f"{run.status}: {detail}"


def _steps(run) -> str:
    if not (run.steps_done or run.total_steps):
        return "-"
    return f"{run.steps_done or 0}/{run.total_steps or '?'}" + (f" (from {run.resumed_at})" if run.resumed_at else "")


def result_rows(runs) -> list[tuple[str, list[str]]]:
    return [
        ("status", [_status(r) for r in runs]),
        ("steps", [_steps(r) for r in runs]),
        ("train loss, final", [_loss(r.final_loss) for r in runs]),
        ("train loss, best @step", [_loss(r.best_loss, r.best_loss_step) for r in runs]),
        ("train loss, run mean", [_loss(r.mean_train_loss) for r in runs]),
        ("eval loss, final", [_loss(r.final_eval_loss) for r in runs]),
        ("eval loss, best @step", [_loss(r.best_eval_loss, r.best_eval_step) for r in runs]),
        ("train time", [_seconds(r.train_seconds) for r in runs]),
        ("tokens/s", [_rate(r.tokens_per_second) for r in runs]),
        ("samples/s", [_rate(r.samples_per_second) for r in runs]),
        ("peak memory, measured", [_gib(r.peak_vram_reserved_gib or r.peak_vram_allocated_gib) for r in runs]),
        ("peak memory, planned", [_gib(r.planned_gib) for r in runs]),
    ]


def table(header: list[str], rows: list[tuple[str, list[str]]]) -> list[str]:
    cells = [header] + [[name, *values] for name, values in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    return ["  " + "  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in cells]


def cmd_compare(args) -> int:
    from tui.runs.compare import compare_runs
    from tui.runs.run_settings import shown_value

    comparison = compare_runs([Path(p) for p in args.run_dirs])
    if args.app:
        if args.json:
            raise UserError("--app and --json: choose one (--json prints, --app opens the chart)")
        from tui.app.compare import run_compare_app

        return run_compare_app([Path(run.run_dir) for run in comparison.runs])
    if args.json:
        print_json(comparison.to_json())
        return EXIT_OK
    names = [run.name for run in comparison.runs]
    if comparison.differences:
        print(f"Settings that differ ({len(comparison.differences)}):")
        diff_rows = [(key, [shown_value(v) for v in values]) for key, values in comparison.differences.items()]
        print("\n".join(table(["setting", *names], diff_rows)))
    else:
        print("No setting differs between these runs.")
    print()
    print("Results:")
    print("\n".join(table(["", *names], result_rows(comparison.runs))))
    if any(r.peak_vram_reserved_gib is None and r.peak_vram_allocated_gib is None for r in comparison.runs):
        print("  measured memory: trainer_log.jsonl's peak vram_reserved (RECORD_VRAM=1, set by run_sft.sh); "
              "'-': not logged, or a CPU run")
    return EXIT_OK


def add_compare_parsers(sub) -> None:
    p = sub.add_parser("compare", help="runs side by side: the settings that differ, losses, time, speed, memory",
                       description="Compares run directories (or every run in a runs/ directory): the settings that "
                       "differ (train.yaml over plan.json), and per run its status, steps, final and best train and "
                       "eval loss, train time, tokens/s, and peak GPU memory measured against the plan's estimate.")
    p.add_argument("run_dirs", nargs="+", metavar="RUN_DIR", help="run directories, or a runs/ directory (all of its runs)")
    p.add_argument("--json", action="store_true", help="print {differences, runs} as JSON")
    p.add_argument("--app", action="store_true",
                   help="open them in the app: every run's loss curve on one chart, the settings that differ beside it")
    p.set_defaults(func=cmd_compare)
