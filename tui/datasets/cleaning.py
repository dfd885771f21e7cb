"""Cleaning: a copy of a JSONL file without the rows that have errors (the user's file is
never touched)."""

from __future__ import annotations

from pathlib import Path

from tui.datasets.formats import DatasetFileError
from tui.datasets.validate import validate_paths


def copy_without_error_rows(source: Path, target: Path) -> int:
    """Write `target`: the JSONL file `source` without the rows that have errors (the wizard's
    "drop the rows with errors", confirmed by the user). The source is never touched. Returns how
    many rows were left out (0: nothing written)."""
    report = validate_paths([source], max_errors=10**9)
    bad = {p.line for f in report.files for p in f.problems if p.severity == "error" and p.line}
    if not bad:
        return 0
    if source.suffix != ".jsonl":
        raise DatasetFileError(f"{source}: rows can only be dropped from JSONL files; fix the errors instead")
    from tui.common.files import atomic_write

    with open(source, encoding="utf-8", errors="replace") as f:
        kept = [line for number, line in enumerate(f, start=1) if number not in bad]
    atomic_write(target, "".join(kept))
    return len(bad)
