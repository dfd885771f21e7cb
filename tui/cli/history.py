"""`sft-tui history`: every run the history knows (tui.history), its estimated against its measured memory
and time, each with its error; and `record_in_history`, which the other commands call to record what
they saw (one stderr sentence when the history cannot be used, never a failed command)."""

from __future__ import annotations

import sys
from pathlib import Path

from tui.cli.common import EXIT_OK, print_json


def record_in_history(run_dirs) -> None:
    """Record these run directories; a problem with the history file is one sentence on stderr."""
    try:
        from tui.runs.recording import record_runs

        note = record_runs(list(run_dirs))
    except Exception as err:  # recording rides on other commands: it never breaks them  # noqa: BLE001
        note = f"the run history could not be written ({type(err).__name__})"
    if note:
        print(f"sft-tui: {note}", file=sys.stderr)


def _gib(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def _seconds(value) -> str:
    if value is None:
        return "-"
    from tui.plan.timing import human_duration

    return f"{value:.1f} s" if value < 59.5 else human_duration(value)


def _error(value) -> str:
    return "" if value is None else f" ({value:+.0f} %)"


def history_rows(args) -> tuple[list[dict], str | None]:
    from tui.history.record import compared
    from tui.history.store import History, HistoryProblem
    from tui.runs.lifecycle import ENDED, find_runs

    seen = [Path(args.runs_dir)] if args.runs_dir else ([Path("runs")] if Path("runs").is_dir() else [])
    fresh = [run for path in seen for run in (find_runs(path) or find_runs(path / "runs"))]
    try:
        with History() as history:
            note = history.notes[0] if history.notes else None
            # runs the history saw before they ended: read again from their files, wherever they are
            fresh += [Path(r["run_dir"]) for r in history.runs() if r["outcome"] not in ENDED
                      and Path(r["run_dir"], "run_sft.sh").is_file()]
    except HistoryProblem as problem:
        return [], str(problem)
    from tui.runs.recording import record_runs

    note = record_runs(dict.fromkeys(fresh)) or note
    try:
        with History() as history:
            rows = history.runs(model=args.model, hardware=args.hardware)
    except HistoryProblem as problem:
        return [], str(problem)
    return [compared(row) for row in rows], note


def cmd_history(args) -> int:
    if getattr(args, "app", False):
        from tui.cli.common import UserError

        if args.json:
            raise UserError("--app and --json: choose one (--json prints, --app opens the table)")
        from tui.app.history import run_history_app

        runs_dir = Path(args.runs_dir) if args.runs_dir else (Path("runs") if Path("runs").is_dir() else None)
        return run_history_app(runs_dir, args.model, args.hardware)
    rows, note = history_rows(args)
    if note:
        print(f"sft-tui: {note}", file=sys.stderr)
    if args.json:
        print_json(rows)
        return EXIT_OK
    if not rows:
        print("no runs in the history yet (`sft-tui export`, `run`, `status` and `monitor` record the runs they see)")
        return EXIT_OK
    header = ("RUN", "OUTCOME", "DEVICE", "METHOD", "MEMORY GiB est/measured", "TIME est/measured", "TOK/S est/measured")
    table = [header]
    for r in rows:
        m, t = r["memory"], r["time"]
        measured = m["measured_gib"] if m["measured_gib"] is not None else (  # NVML's, else RECORD_VRAM's (a CPU's 0)
        m["measured_reserved_gib"] if m["measured_reserved_gib"] is not None else m["measured_allocated_gib"])
        table.append((
            r["run_id"], r["outcome"] or "-", r["device"] or "-", r["method"] or "-",
            f"{_gib(m['estimated_gib'])} / {_gib(measured)}{_error(m['error_pct'])}",
            f"{_seconds(t['estimated_seconds'])} / {_seconds(t['measured_seconds'])}{_error(t['error_pct'])}",
            f"{_rate(t['estimated_tokens_per_second'])} / {_rate(t['measured_tokens_per_second'])}"))
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header))]
    for row, record in zip(table, [None, *rows]):
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip())
        if record and record["outcome"] in ("failed", "vanished") and record["outcome_reason"]:
            print(f"  {record['outcome']}: {record['outcome_reason']}")
    return EXIT_OK


def _rate(value) -> str:
    return "-" if value is None else f"{value:,.0f}"


def add_history_parsers(sub) -> None:
    p = sub.add_parser("history", help="every run seen: estimated against measured memory and time, with the error",
                       description="The run history (a SQLite file in the user data directory, or $SFT_TUI_HISTORY): "
                       "one row per run that export, run, status or monitor saw. The runs in RUNS_DIR (default: "
                       "./runs) and those not ended when last seen are read again from their files first.")
    p.add_argument("runs_dir", nargs="?", metavar="RUNS_DIR", help="also record the runs in this folder (default: ./runs)")
    p.add_argument("--model", metavar="M", help="only runs whose model name contains M")
    p.add_argument("--hardware", metavar="H", help="only runs on a device whose name (or vendor) contains H")
    p.add_argument("--json", action="store_true", help="print a JSON list, one object per run")
    p.add_argument("--app", action="store_true", help="open the History screen: enter opens a run's monitor, "
                   "space marks runs and c compares them")
    p.set_defaults(func=cmd_history)
