"""The one dataset gate: whether a validated dataset may go into a bundle, given the user's
choice about rows with errors. `sft-tui export` and every way of leaving the wizard's dataset
step ask it, so a dataset with errors never reaches LLaMA-Factory unnoticed."""

from __future__ import annotations

SHOWN_PROBLEMS = 3  # the first problems named in a refusal; `sft-tui validate` lists them all


def dataset_refusal(report, drop_errors: bool, drop_hint: str = "--drop-errors") -> str | None:
    """None when the dataset may be used; else one sentence: what is wrong, where, and the fix.
    `drop_hint` names the user's way to drop the rows with errors (a flag, a checkbox)."""
    if report is None:
        return "validate the dataset first"
    if report.file_errors:
        return f"{report.file_errors[0]}: fix the path first"
    if not any(f.valid_rows for f in report.files):
        return "no readable rows in the dataset: fix the files first (sft-tui validate lists the problems)"
    if not report.has_errors:
        return None
    with_errors = [f for f in report.files if f.error_count]
    if drop_errors:  # JSONL and JSON arrays alike (tui.datasets.cleaning)
        return None
    count = sum(f.error_count for f in with_errors)
    first = [f"{f.path}:{p.line or '?'}: {p.message}" for f in with_errors for p in f.problems
             if p.severity == "error"][:SHOWN_PROBLEMS]
    rows = f"{count} error{'' if count == 1 else 's'}"
    return (f"the dataset has {rows} ({'; '.join(first)}): fix them (sft-tui validate lists them all), "
            f"or drop those rows with {drop_hint}")
