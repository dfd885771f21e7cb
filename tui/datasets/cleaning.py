"""Cleaning: a copy of a dataset file without the rows that have errors (the user's file is never
touched). A JSONL file loses its error lines; a JSON array becomes a JSON array of its valid rows,
each in its own text, also when the array does not parse: then its rows are the ones a tolerant
read recovers (tui.datasets.arrays), and what could not be read is left out too."""

from __future__ import annotations

from pathlib import Path

from tui.common.files import atomic_write
from tui.datasets.arrays import array_text, read_array
from tui.datasets.checker import FileChecker
from tui.datasets.formats import DEFAULT_SPECS, DatasetFileError
from tui.datasets.lengths import LengthStats
from tui.datasets.reading import BOM, DETECT_ROWS, format_of_rows, sniff
from tui.datasets.repeats import Seen
from tui.datasets.report import DEFAULT_MAX_LINE_BYTES, FileReport
from tui.datasets.validate import validate_paths


def copy_without_error_rows(source: Path, target: Path) -> int:
    """Write `target` atomically: `source` without the rows that have errors (`--drop-errors`,
    the wizard's "Drop the rows with errors"), in the same file format. The source is never
    touched. Returns how many rows were left out."""
    if sniff(source) == "json":
        return _copy_array(source, target)
    report = validate_paths([source], max_errors=10**9)
    bad = {p.line for f in report.files for p in f.problems if p.severity == "error" and p.line}
    with open(source, encoding="utf-8", errors="replace") as f:
        kept = [line for number, line in enumerate(f, start=1) if number not in bad]
    atomic_write(target, "".join(kept))
    return len(bad)


def _copy_array(source: Path, target: Path) -> int:
    """The JSON array's rows without errors, checked one by one as validate checks them (the
    format detected from the first rows the same way); rows lost at a break count as left out."""
    try:
        text = source.read_bytes().removeprefix(BOM).decode("utf-8")
    except UnicodeDecodeError as bad:
        raise DatasetFileError(f"{source}: invalid UTF-8 at byte {bad.start + 1}: fix the file's encoding first") from None
    read = read_array(text)
    report = FileReport(path=source)
    spec = DEFAULT_SPECS[format_of_rows(read.rows[:DETECT_ROWS]) or "alpaca"]
    checker = FileChecker(report, spec, Seen(), 0, LengthStats(), 0, DEFAULT_MAX_LINE_BYTES)
    kept = []
    for span, line, row in zip(read.spans, read.lines, read.rows):
        errors = report.error_count
        checker.check_row(line, row)  # a row's errors are counted at once (warnings may wait)
        if report.error_count == errors:
            kept.append(span)
    atomic_write(target, array_text(text, kept))
    return len(read.rows) - len(kept) + read.lost_rows
