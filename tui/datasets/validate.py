"""Dataset validation: every row of a JSONL/JSON file against the JSON Schema of its format
(alpaca, sharegpt, openai), the checks a schema cannot express, and length statistics.

The rules follow LLaMA-Factory 0.9.5's own converters (llamafactory/data/converter.py), so an
*error* is a row LLaMA-Factory drops or fails on, and a *warning* a row it trains on that is
probably not what you meant. JSONL is streamed in chunks: memory stays flat whatever the file
size (duplicates are found by hashing, lengths kept as histograms). A `.json` array is parsed
whole, as LLaMA-Factory does; one that does not parse, which LLaMA-Factory loads none of, is read
row by row (tui.datasets.arrays), and the rows recovered are checked. A dataset_info.json or
preference data is refused with a sentence saying what it is (tui.datasets.kinds).

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
from tui.datasets.arrays import Break, read_array
from tui.datasets.checker import FileChecker
from tui.datasets.formats import DEFAULT_SPECS, DatasetFileError, FormatSpec
from tui.datasets.kinds import refuse_preference, refuse_registry
from tui.datasets.lengths import LengthStats, TokenCounter
from tui.datasets.parallel import RangeTask, validate_ranges
from tui.datasets.reading import (
    BOM,
    array_element_lines,
    expand_paths,
    format_of_rows,
    head_rows,
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
    refuse_registry(path, kind)
    head = head_rows(path, kind) if spec is None else []
    refuse_preference(path, head)  # with an entry, its "ranking" says (load_dataset_info_entry)
    seen = seen if seen is not None else Seen()
    lengths = lengths if lengths is not None else LengthStats()
    report = FileReport(path=path, split=split_of(path))
    if spec is not None:
        report.format, report.format_source = spec.formatting, "dataset_info entry"
    elif fmt != "auto":
        report.format, report.format_source = fmt, "--format"
        spec = DEFAULT_SPECS[fmt]
    else:
        detected = format_of_rows(head)
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
    breaks: list[Break] = []
    try:
        rows = orjson.loads(data)
    except orjson.JSONDecodeError as err:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as bad:
            checker.report.rows += 1
            line = data.count(b"\n", 0, bad.start) + 1
            checker.add(line, "", "invalid_utf8", "invalid UTF-8: LLaMA-Factory cannot load this file")
            return
        rows, lines, breaks = recover_rows(checker.report, text, err)
    else:
        if not isinstance(rows, list):
            checker.report.rows += 1
            checker.add(1, "", "not_an_object", "a .json dataset must be an array of row objects")
            return
        starts = array_element_lines(data)
        lines = starts if len(starts) == len(rows) else [None] * len(rows)
    for batch in range(0, max(len(rows), 1 if breaks else 0), ARRAY_BATCH):
        checker.begin_batch()
        last = batch + ARRAY_BATCH >= len(rows)
        while breaks and (last or breaks[0].line <= lines[batch + ARRAY_BATCH - 1]):  # in line order with the rows'
            broken = breaks.pop(0)
            checker.add(broken.line, "", "invalid_json", f"not valid JSON (column {broken.column}): {broken.message}; "
                        "LLaMA-Factory cannot load any of this file")
        for line, row in zip(lines[batch:batch + ARRAY_BATCH], rows[batch:batch + ARRAY_BATCH]):
            checker.check_row(line, row)
        checker.report.rows += len(rows[batch:batch + ARRAY_BATCH])
        checker.end_batch()
        if progress:
            progress(checker.report.rows, len(data), len(data))


def recover_rows(report: FileReport, text: str, err: orjson.JSONDecodeError) -> tuple[list, list, list]:
    """A .json array that does not parse, read tolerantly: its rows, their lines and its breaks.
    The report says LLaMA-Factory loads none of it, where it breaks, and what was recovered; a row
    lost at a break counts as a row (with an error), so the file has as many rows as it meant to."""
    read = read_array(text)
    if not read.breaks:  # orjson fails where the tolerant read does not (it should not happen)
        read.breaks.append(Break(err.lineno, err.colno, json_error_text(err), False))
    first = read.breaks[0]
    report.rows += read.lost_rows
    report.recovered_rows = len(read.rows)
    report.load_error = (f"LLaMA-Factory cannot load any of this file: it stops being JSON at line {first.line}, "
                         f"column {first.column} ({first.message}); a tolerant read recovers "
                         f"{len(read.rows)} row{'' if len(read.rows) == 1 else 's'}")
    return read.rows, read.lines, read.breaks


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
