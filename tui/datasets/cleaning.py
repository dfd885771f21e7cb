"""Cleaning: a copy of a JSONL file without the rows that have errors (the user's file is
never touched)."""

from __future__ import annotations

from pathlib import Path

from tui.common.files import atomic_write
from tui.datasets.formats import DatasetFileError
from tui.datasets.validate import validate_paths


def copy_without_error_rows(source: Path, target: Path) -> int:
    """Write `target` atomically: the JSONL file `source` without the rows that have errors
    (`--drop-errors`, the wizard's "Drop the rows with errors"). The source is never touched.
    Returns how many rows were left out."""
    if source.suffix != ".jsonl":
        raise DatasetFileError(f"{source}: rows can only be dropped from JSONL files; fix the errors instead")
    report = validate_paths([source], max_errors=10**9)
    bad = {p.line for f in report.files for p in f.problems if p.severity == "error" and p.line}
    with open(source, encoding="utf-8", errors="replace") as f:
        kept = [line for number, line in enumerate(f, start=1) if number not in bad]
    atomic_write(target, "".join(kept))
    return len(bad)
