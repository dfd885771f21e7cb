"""Dataset validation: every row of a JSONL/JSON file against the JSON Schema of its format
(alpaca, sharegpt, openai), the checks a schema cannot express, and length statistics.

The rules follow LLaMA-Factory 0.9.5's own converters (llamafactory/data/converter.py), so an
*error* is a row LLaMA-Factory drops or fails on, and a *warning* a row it trains on that is
probably not what you meant. JSONL is streamed in chunks: memory stays flat whatever the file
size (duplicates are found by hashing, lengths kept as histograms). A `.json` array is parsed
whole, as LLaMA-Factory does.

A large JSONL file (PARALLEL_MIN_BYTES and up) is cut into byte ranges at line ends, checked
by this process and worker processes, one process per usable core unless `jobs` says
otherwise; the parts are merged in file order, so the report is the one a single process
makes. Hence the prompt and response keys come from xxh3, not hash(): str hashes differ
between processes. Exact token counts (a tokenizer) stay in one process: the tokenizer is
multi-threaded itself."""

from __future__ import annotations

from pathlib import Path

import orjson

from tui.datasets import parallel  # its sizes read at call time: tests shrink them
from tui.datasets.checker import FileChecker
from tui.datasets.formats import DEFAULT_SPECS, DatasetFileError, FormatSpec
from tui.datasets.lengths import LengthStats, TokenCounter
from tui.datasets.parallel import RangeTask, validate_ranges
from tui.datasets.reading import (
    BOM,
    array_element_lines,
    detect_format,
    expand_paths,
    json_error_text,
    jsonl_chunks,
    line_ranges,
    sniff,
    split_of,
)
from tui.datasets.repeats import Seen, add_repeats
from tui.datasets.report import (
    DEFAULT_MAX_ERRORS,
    DEFAULT_MAX_LINE_BYTES,
    FileReport,
    Progress,
    ValidationReport,
)

ARRAY_BATCH = 10000  # rows of a .json array checked as one batch


def validate_file(path: Path, *, fmt: str = "auto", spec: FormatSpec | None = None, seen: Seen | None = None,
                  lengths: LengthStats | None = None, max_errors: int = DEFAULT_MAX_ERRORS,
                  max_line_bytes: int = DEFAULT_MAX_LINE_BYTES, progress: Progress | None = None,
                  jobs: int = 0) -> FileReport:
    """Validate one file, a large JSONL file in `jobs` processes (0: one per usable core).
    Raises DatasetFileError when it cannot be read at all."""
    kind = sniff(path)
    seen = seen if seen is not None else Seen()
    lengths = lengths if lengths is not None else LengthStats()
    report = FileReport(path=path, split=split_of(path))
    if spec is not None:
        report.format, report.format_source = spec.formatting, "dataset_info entry"
    elif fmt != "auto":
        report.format, report.format_source = fmt, "--format"
        spec = DEFAULT_SPECS[fmt]
    else:
        detected = detect_format(path, kind)
        report.format, report.format_source = detected or "alpaca", ("detected from the first rows" if detected else "assumed: no row has a known format's keys")
        spec = DEFAULT_SPECS[report.format]
    seen.files.append(path)
    file_index = len(seen.files) - 1
    if not jobs:
        from tui.hardware.cpu import (
            usable_cpus,  # here, not at the top: workers import this module
        )

        jobs = usable_cpus()
    if kind == "jsonl" and jobs > 1 and not lengths.exact and path.stat().st_size >= parallel.PARALLEL_MIN_BYTES:
        tasks = [RangeTask(path, start, end, spec, seen.new_segment(file_index), max_errors, max_line_bytes)
                 for start, end in line_ranges(path, parallel.RANGE_BYTES)]
        validate_ranges(tasks, jobs, report, seen, lengths, progress)
        return report
    checker = FileChecker(report, spec, seen, seen.new_segment(file_index), lengths, max_errors, max_line_bytes)
    if kind == "jsonl":
        for first_line, lines in jsonl_chunks(path, progress):
            checker.check_lines(first_line, lines)
    else:
        validate_array(path, checker, progress)
    return report


def validate_array(path: Path, checker: FileChecker, progress: Progress | None) -> None:
    data = path.read_bytes().removeprefix(BOM)
    try:
        rows = orjson.loads(data)
    except orjson.JSONDecodeError as err:
        checker.report.rows += 1
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as bad:
            line = data.count(b"\n", 0, bad.start) + 1
            checker.add(line, "", "invalid_utf8", "invalid UTF-8: LLaMA-Factory cannot load this file")
            return
        checker.add(err.lineno, "", "invalid_json", f"not valid JSON: {json_error_text(err)}")
        return
    if not isinstance(rows, list):
        checker.report.rows += 1
        checker.add(1, "", "not_an_object", "a .json dataset must be an array of row objects")
        return
    starts = array_element_lines(data)
    lines = starts if len(starts) == len(rows) else [None] * len(rows)
    for batch in range(0, len(rows), ARRAY_BATCH):
        checker.begin_batch()
        for line, row in zip(lines[batch:batch + ARRAY_BATCH], rows[batch:batch + ARRAY_BATCH]):
            checker.check_row(line, row)
        checker.report.rows += len(rows[batch:batch + ARRAY_BATCH])
        checker.end_batch()
        if progress:
            progress(checker.report.rows, len(data), len(data))


def validate_paths(paths: list[Path], *, fmt: str = "auto", spec: FormatSpec | None = None,
                   tokenizer_dir: Path | None = None, max_errors: int = DEFAULT_MAX_ERRORS,
                   max_line_bytes: int = DEFAULT_MAX_LINE_BYTES, progress: Progress | None = None,
                   jobs: int = 0) -> ValidationReport:
    """Validate files and directories; unreadable ones become `file_errors` sentences. `jobs`:
    processes for a large JSONL file (0: one per usable core)."""
    tokens = TokenCounter(tokenizer_dir) if tokenizer_dir else None
    lengths, seen = LengthStats(tokens), Seen()
    files, file_errors = expand_paths(paths)
    reports = []
    for path in files:
        try:
            reports.append(validate_file(path, fmt=fmt, spec=spec, seen=seen, lengths=lengths, max_errors=max_errors,
                                         max_line_bytes=max_line_bytes, progress=progress, jobs=jobs))
        except DatasetFileError as err:
            file_errors.append(str(err))
    add_repeats(reports, seen, max_errors)
    return ValidationReport(reports, file_errors, lengths)
