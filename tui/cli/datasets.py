"""`sft-tui validate`."""

from __future__ import annotations

import sys

from tui.cli.common import (
    EXIT_OK,
    EXIT_PROBLEMS,
    EXIT_USAGE,
    UserError,
    plural,
    print_json,
)


def print_validation(report) -> None:
    from tui.datasets.report import PROBLEM_KINDS

    for f in report.files:
        for p in f.problems:
            where = f"{f.path}:{p.line}" if p.line is not None else str(f.path)
            field = f"{p.field}: " if p.field else ""
            print(f"{where}: {field}{p.severity} ({p.kind}): {p.message}")
        if f.problem_count > len(f.problems):
            print(f"{f.path}: ... {f.problem_count - len(f.problems)} more problems not listed (--max-errors)")
    for error in report.file_errors:
        print(f"sft-tui: {error}", file=sys.stderr)
    if not report.files:
        return
    print()
    for f in report.files:
        errors = f.error_count
        split = f" [{f.split}]" if f.split else ""
        rows = f"{f.load_error}" if f.load_error else plural(f.rows, "row")
        print(f"{f.path}{split}: {f.format} ({f.format_source}); {rows}, {f.valid_rows} valid; "
              f"{plural(errors, 'error')}, {plural(f.problem_count - errors, 'warning')}")
        if f.load_error and f.valid_rows:
            print(f"  the statistics below are of the recovered rows; dropping the rows with errors "
                  f"(export --drop-errors) trains on the {plural(f.valid_rows, 'valid row')} in a cleaned copy")
        if f.media_rows:
            print("  rows with media: " + ", ".join(f"{kind} {n}" for kind, n in sorted(f.media_rows.items())))
    data = report.to_json()
    stats = data["stats"]
    if stats["splits"]:
        print("Splits: " + ", ".join(f"{k} {v}" for k, v in stats["splits"].items()))
    if stats["problems_by_kind"]:
        print("Problems by kind: " + ", ".join(
            f"{kind} {n} ({PROBLEM_KINDS[kind][0]})" for kind, n in stats["problems_by_kind"].items()))
    lengths = stats["lengths"]
    unit = "tokens" if lengths["unit"] == "tokens" else "approximate tokens"
    print(f"\nLengths of valid rows in {unit} ({lengths['method']}"
          + ("" if lengths["unit"] == "tokens" else "; --tokenizer DIR for exact counts") + "):")
    columns = ("min", "p50", "p90", "p95", "p99", "max")
    print(f"  {'':<9}" + "".join(f"{c:>8}" for c in columns))
    for part in ("prompt", "response", "row"):
        print(f"  {part:<9}" + "".join(f"{lengths[part][c]:>8}" for c in columns))
    cutoff = stats["cutoff"]
    print(f"\nRecommended cutoff_len: {cutoff['cutoff_len']} (smallest multiple of 256 covering p99 of rows; "
          f"truncates {plural(cutoff['rows_truncated'], 'row')}). "
          f"LLaMA-Factory's default 2048 truncates {cutoff['rows_truncated_at_default_2048']}.")


def cmd_validate(args) -> int:
    from pathlib import Path

    from tui.datasets.reading import load_dataset_info_entry
    from tui.datasets.validate import validate_paths

    spec, paths = None, [Path(p) for p in args.paths]
    if args.dataset_info or args.name:
        if not (args.dataset_info and args.name):
            raise UserError("--dataset-info and --name go together")
        if args.format != "auto":
            raise UserError("--format cannot be combined with --dataset-info: the entry says the format")
        spec, entry_paths = load_dataset_info_entry(Path(args.dataset_info), args.name)
        paths = paths or entry_paths
    if not paths:
        raise UserError("name at least one dataset file or directory (or --dataset-info PATH --name NAME)")
    tokenizer = tokenizer_path(args.tokenizer) if args.tokenizer else None
    try:
        report = validate_paths(paths, fmt=args.format, spec=spec, tokenizer_dir=tokenizer,
                                max_errors=args.max_errors, jobs=args.jobs)
    except ValueError as err:  # an unusable --tokenizer
        raise UserError(str(err)) from None
    if args.json:
        print_json(report.to_json())
        for error in report.file_errors:
            print(f"sft-tui: {error}", file=sys.stderr)
    else:
        print_validation(report)
    if report.file_errors:
        return EXIT_USAGE
    return EXIT_PROBLEMS if report.has_errors else EXIT_OK


def tokenizer_path(text: str):
    """--tokenizer as given: a local path, or a hub id whose tokenizer.json is fetched (only that file)."""
    from pathlib import Path

    from tui.models.hub import hub_tokenizer, looks_like_hub_id

    if Path(text).expanduser().exists() or not looks_like_hub_id(text):
        return Path(text).expanduser()
    return hub_tokenizer(text)


def add_dataset_parsers(sub) -> None:
    p = sub.add_parser("validate", help="check dataset files row by row and print training statistics",
                       description="Check JSONL/JSON dataset files against LLaMA-Factory's formats. Exit status: "
                       "0 no errors (warnings allowed), 1 errors found, 2 a file could not be read.")
    p.add_argument("paths", nargs="*", metavar="PATH", help="dataset files, or directories of .jsonl/.json files")
    p.add_argument("--format", default="auto", choices=["auto", "alpaca", "sharegpt", "openai"])
    p.add_argument("--tokenizer", metavar="DIR|HUB_ID", help="a tokenizer for exact token counts: a local directory "
                   "(tokenizer.json), or a model's hub id (its tokenizer.json from the HF cache, else the hub)")
    p.add_argument("--dataset-info", metavar="PATH", help="a dataset_info.json whose entry --name says the columns and tags")
    p.add_argument("--name", metavar="NAME", help="the dataset_info.json entry to validate")
    p.add_argument("--max-errors", type=int, default=100, metavar="N", help="problems listed per file (all are counted)")
    p.add_argument("--jobs", type=int, default=0, metavar="N",
                   help="processes for a large JSONL file (default 0: one per usable core)")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_validate)
