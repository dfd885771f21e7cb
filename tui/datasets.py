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
multi-threaded itself.
"""

from __future__ import annotations

import gc
import heapq
import os
import pickle
import re
import subprocess
import sys
import tempfile
import threading
from array import array
from collections import deque
from dataclasses import dataclass, field, replace
from itertools import compress, count, repeat
from operator import add, and_, itemgetter, not_, or_
from pathlib import Path
from typing import Callable, Iterator

import orjson
from xxhash import xxh3_64_intdigest

from tui.lengths import LengthStats, TokenCounter, text_bytes
from tui.schemas import json_pointer, validator

FORMATS = ("alpaca", "sharegpt", "openai")
DATA_SUFFIXES = (".jsonl", ".json")
CHUNK_BYTES = 1 << 20  # JSONL lines read and checked as one batch
READ_BUFFER_BYTES = 1 << 20
ARRAY_BATCH = 10000  # rows of a .json array checked as one batch
SNIFF_BYTES = 64 << 10
DETECT_ROWS = 50  # rows read to detect a file's format
DEFAULT_MAX_LINE_BYTES = 1 << 20
DEFAULT_MAX_ERRORS = 100
# Workers take about 0.1 s to start: below 128 MiB (some 130k rows of 1 KB) they win too little.
PARALLEL_MIN_BYTES = 128 << 20
RANGE_BYTES = 16 << 20  # one worker task: small for steady progress, large next to its overhead
RESULT_BYTES = 1 << 20  # about the pickled result of one task: 24 bytes a row, some 16k rows
SPLIT_OF_STEM = {"train": "train", "val": "val", "valid": "val", "validation": "val", "dev": "val", "eval": "val", "test": "test"}
_LINE_MASK = (1 << 40) - 1  # a row's place: segment << 40 | line within the segment
_BOM = b"\xef\xbb\xbf"

# Every problem kind, its severity, and what LLaMA-Factory does with such a row.
PROBLEM_KINDS: dict[str, tuple[str, str]] = {
    "invalid_json": ("error", "LLaMA-Factory fails to load the whole file"),
    "invalid_utf8": ("error", "LLaMA-Factory fails to load the whole file (Invalid encoding)"),
    "not_an_object": ("error", "LLaMA-Factory fails to load the file"),
    "mixed_format": ("error", "a file has one format; LLaMA-Factory reads this row with the wrong columns"),
    "schema": ("error", "LLaMA-Factory drops the row or fails on it"),
    "role_order": ("error", "LLaMA-Factory drops the row (Invalid role tag)"),
    "message_count": ("error", "LLaMA-Factory drops the row (Invalid message count)"),
    "empty_response": ("warning", "trained on: teaches the model to answer with nothing"),
    "empty_prompt": ("warning", "trained on: an answer with no question"),
    "empty_row": ("warning", "trained on without a word: prompt and response are empty"),
    "duplicate": ("warning", "trained on twice as often as other rows"),
    "conflict": ("warning", "the same prompt teaches two different answers"),
    "line_too_long": ("warning", "an unusually large row; check it is meant to be one row"),
}


class DatasetFileError(Exception):
    """A file (or dataset_info entry) cannot be read at all: one sentence, exit status 2."""


@dataclass(frozen=True)
class FormatSpec:
    """How LLaMA-Factory reads a file: a dataset_info.json entry's formatting, columns, tags."""

    formatting: str
    columns: dict = field(hash=False)
    tags: dict = field(hash=False)

    def to_dataset_info(self) -> dict:
        entry = {"formatting": self.formatting, "columns": dict(self.columns)}
        if self.tags:
            entry["tags"] = dict(self.tags)
        return entry


_SHAREGPT_TAGS = {
    "role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
    "observation_tag": "observation", "function_tag": "function_call", "system_tag": "system",
}
# The spec of each format's standard keys: what sft-tui registers files with, and what a file
# validated without a dataset_info entry is assumed to use.
DEFAULT_SPECS = {
    "alpaca": FormatSpec(
        "alpaca",
        {"prompt": "instruction", "query": "input", "response": "output", "system": "system", "history": "history"},
        {},
    ),
    "sharegpt": FormatSpec("sharegpt", {"messages": "conversations", "system": "system", "tools": "tools"}, _SHAREGPT_TAGS),
    "openai": FormatSpec(
        "openai",
        {"messages": "messages", "system": "system", "tools": "tools"},
        {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
         "observation_tag": "tool", "function_tag": "function_call", "system_tag": "system"},
    ),
}

# Roles as sft-tui reasons about them, whatever a file calls them.
USER, ASSISTANT, OBSERVATION, FUNCTION, SYSTEM = "user", "assistant", "observation", "function", "system"
_ROLE_OF_TAG = {"user_tag": USER, "assistant_tag": ASSISTANT, "observation_tag": OBSERVATION, "function_tag": FUNCTION, "system_tag": SYSTEM}
_PROMPT_ROLES, _RESPONSE_ROLES = (USER, OBSERVATION), (ASSISTANT, FUNCTION)


def spec_from_entry(entry: dict) -> FormatSpec:
    """A dataset_info.json entry's spec, read as LLaMA-Factory 0.9.5 reads it (DatasetAttr.join):
    without `columns`, its defaults apply (instruction/input/output, or conversations); with
    `columns`, every column the entry leaves out is not read at all, and likewise `tags`
    replaces all tags (sharegpt's from/value/human/gpt/... also apply to the openai formatting)."""
    formatting = entry.get("formatting", "alpaca")
    if formatting not in FORMATS:
        raise DatasetFileError(f"formatting {formatting!r} is not one of {', '.join(FORMATS)}")
    if "columns" in entry:
        columns = {k: v for k, v in (entry["columns"] or {}).items() if v}
    elif formatting == "alpaca":
        columns = {"prompt": "instruction", "query": "input", "response": "output"}
    else:
        columns = {"messages": "conversations"}
    tags = {}
    if formatting != "alpaca":
        tags = {k: v for k, v in (entry["tags"] or {}).items() if v} if "tags" in entry else dict(_SHAREGPT_TAGS)
    return FormatSpec(formatting, columns, tags)


def register_entry(report: "FileReport") -> dict:
    """The dataset_info.json entry (less file_name) that makes LLaMA-Factory read a validated
    file in its standard format as validated. Only columns that occur in the file are declared:
    LLaMA-Factory fails with KeyError on a declared column that no row has."""
    spec = DEFAULT_SPECS[report.format]
    entry = spec.to_dataset_info()
    present = set(report.columns_present)
    entry["columns"] = {column: key for column, key in spec.columns.items() if key in present}
    return entry


def row_format(row: dict) -> str | None:
    """The format a row's keys say it is in (standard key names), or None."""
    if "conversations" in row:
        return "sharegpt"
    if "messages" in row:
        return "openai"
    if "instruction" in row or "output" in row:
        return "alpaca"
    return None


# --- results ------------------------------------------------------------------------------------


@dataclass
class Problem:
    line: int | None
    field: str  # JSON pointer within the row ("" for the whole row)
    kind: str
    message: str

    @property
    def severity(self) -> str:
        return PROBLEM_KINDS[self.kind][0]

    def to_json(self) -> dict:
        return {"line": self.line, "field": self.field, "kind": self.kind, "severity": self.severity, "message": self.message}


@dataclass
class FileReport:
    path: Path
    format: str | None = None
    format_source: str = ""  # how the format was decided: detected, --format, dataset_info
    split: str | None = None
    rows: int = 0
    valid_rows: int = 0
    problems: list[Problem] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # problems by kind, all of them
    columns_present: list[str] = field(default_factory=list)  # standard keys seen in valid rows

    @property
    def problem_count(self) -> int:
        return sum(self.counts.values())

    @property
    def error_count(self) -> int:
        return sum(n for kind, n in self.counts.items() if PROBLEM_KINDS[kind][0] == "error")

    def to_json(self) -> dict:
        return {
            "path": str(self.path),
            "format": self.format,
            "format_source": self.format_source,
            "split": self.split,
            "rows": self.rows,
            "valid_rows": self.valid_rows,
            "problems": [p.to_json() for p in self.problems],
            "problem_count": self.problem_count,
            "problems_by_kind": dict(sorted(self.counts.items())),
            "columns_present": self.columns_present,
        }


@dataclass
class ValidationReport:
    files: list[FileReport]
    file_errors: list[str]
    lengths: LengthStats

    @property
    def has_errors(self) -> bool:
        return any(f.error_count for f in self.files)

    def to_json(self) -> dict:
        by_kind: dict[str, int] = {}
        for f in self.files:
            for kind, n in f.counts.items():
                by_kind[kind] = by_kind.get(kind, 0) + n
        splits = {f.split: f.valid_rows for f in self.files if f.split}
        cutoff = self.lengths.recommended_cutoff()
        return {
            "files": [f.to_json() for f in self.files],
            "file_errors": self.file_errors,
            "stats": {
                "rows": sum(f.rows for f in self.files),
                "valid_rows": sum(f.valid_rows for f in self.files),
                "problems_by_kind": dict(sorted(by_kind.items())),
                "splits": splits,
                "lengths": self.lengths.to_json(),
                "cutoff": cutoff,
            },
            "recommended_cutoff_len": cutoff["cutoff_len"],
        }


Progress = Callable[[int, int, int], None]  # rows done, bytes done, bytes total


# --- files ----------------------------------------------------------------------------------------


def expand_paths(paths: list[Path]) -> tuple[list[Path], list[str]]:
    """Data files named by `paths` (a directory means its .jsonl/.json files) and one sentence
    per path that cannot be used."""
    files, errors = [], []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in DATA_SUFFIXES and p.is_file())
            if found:
                files += found
            else:
                errors.append(f"{path}: no .jsonl or .json files in this directory")
        elif path.exists():
            files.append(path)
        else:
            errors.append(f"{path}: no such file or directory")
    return files, errors


def sniff(path: Path) -> str:
    """'jsonl' or 'json' (an array), or DatasetFileError saying why the file cannot be used."""
    try:
        with path.open("rb") as f:
            head = f.read(SNIFF_BYTES)
    except PermissionError:
        raise DatasetFileError(f"{path}: permission denied") from None
    except IsADirectoryError:
        raise DatasetFileError(f"{path}: is a directory") from None
    except OSError as err:
        raise DatasetFileError(f"{path}: cannot be read ({err.strerror})") from None
    if b"\x00" in head:
        raise DatasetFileError(f"{path}: is a binary file, not JSON or JSON lines")
    body = head[len(_BOM):] if head.startswith(_BOM) else head
    stripped = body.lstrip()
    if not stripped:
        if len(head) < SNIFF_BYTES:
            raise DatasetFileError(f"{path}: the file is empty")
        return "jsonl"
    if stripped[:1] == b"[":
        return "json"
    if stripped[:1] == b"{":
        return "jsonl"
    raise DatasetFileError(f"{path}: is not JSON lines or a JSON array (it starts with {stripped[:20]!r})")


def split_of(path: Path) -> str | None:
    return SPLIT_OF_STEM.get(path.stem.lower())


def _jsonl_chunks(path: Path, progress: Progress | None, start: int = 0, end: int | None = None) -> Iterator[tuple[int, list[bytes]]]:
    """(number of the first line, lines) per chunk of the file, or of its bytes start..end with
    lines numbered from there: whole chunks, so the per-row loop runs without a generator switch
    per line. Lines keep their newline. A BOM at the start of the file is dropped.

    readlines(hint) rather than read() and split(): it makes each line straight from the
    buffer, with no chunk-sized copies in between; with a 1 MiB buffer rather than 8 KiB, a
    line costs a quarter of what read() and split() cost here (bench/validate_throughput.py)."""
    total = path.stat().st_size
    left = total - start if end is None else end - start
    done = lines_before = 0
    with path.open("rb", buffering=READ_BUFFER_BYTES) as f:
        f.seek(start)
        # readlines stops once it has read more than `hint` bytes: hint left - 1 stops at the
        # range's end; hint 1 may read past it, by whole lines, which are given back.
        while left > 0 and (lines := f.readlines(max(min(CHUNK_BYTES, left - 1), 1))):
            size = sum(map(len, lines))
            left -= size
            while left < 0:
                left += len(lines.pop())
            if done == 0 and start == 0 and lines[0].startswith(_BOM):
                lines[0] = lines[0][len(_BOM):]
            yield lines_before + 1, lines
            lines_before += len(lines)
            done += size
            if progress:
                progress(lines_before, min(done, total), total)


def _line_ranges(path: Path, size: int) -> list[tuple[int, int]]:
    """The file cut into byte ranges of about `size`, each ending just after a newline (or at
    the end of the file), so that every line lies in one range."""
    total = path.stat().st_size
    cuts = [0]
    with path.open("rb") as f:
        while cuts[-1] + size < total:
            f.seek(cuts[-1] + size)
            f.readline()  # on to the next line's start
            if f.tell() >= total:
                break
            cuts.append(f.tell())
    return list(zip(cuts, cuts[1:] + [total]))


_JSON_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}]|\n')


def _array_element_lines(data: bytes) -> list[int]:
    """The line each top-level array element starts on (objects and arrays; enough for rows)."""
    depth, line, starts = 0, 1, []
    for match in _JSON_TOKEN.finditer(data):
        token = match.group()
        if token == b"\n":
            line += 1
        elif token[:1] == b'"':
            if depth == 1:
                starts.append(line)
        elif token in (b"{", b"["):
            if depth == 1:
                starts.append(line)
            depth += 1
        else:
            depth -= 1
    return starts


# --- one file -------------------------------------------------------------------------------------


def text_key(texts, key: int = 0) -> int:
    """A 64-bit key of a sequence of texts, the same in every process (unlike hash()); each
    text's hash seeds the next one's, so ("ab", "") and ("a", "b") differ, and a key can be
    carried on with more texts. Rows come from orjson, whose strings are valid UTF-8 (it
    rejects lone surrogates), so encode() cannot fail."""
    for text in texts:
        key = xxh3_64_intdigest(text.encode(), key)
    return key


class _Seen:
    """Every valid row's prompt key, response key and place, in flat arrays (24 bytes a row,
    not a dict entry's ~110), split in buckets by key (_FileValidator appends). Duplicates (same
    prompt and response) and conflicts (same prompt, other response) are found bucket by bucket
    at the end, each bucket with a small dict, so memory stays flat whatever the file size.

    A place is segment << 40 | line, the line counted from the segment's start: a segment is a
    whole file, or one worker's range of it, whose line offset is known once the ranges before
    it are done."""

    BUCKETS = 256

    def __init__(self):
        self.files: list[Path] = []
        self.segments: list[list[int]] = []  # per segment: [file index, lines before it]
        # Per bucket, triples laid flat: prompt key, response key, place.
        self.buckets = [array("Q") for _ in range(self.BUCKETS)]

    def new_segment(self, file_index: int) -> int:
        self.segments.append([file_index, 0])
        return len(self.segments) - 1

    def merge(self, buckets: list[array]) -> None:
        for mine, theirs in zip(self.buckets, buckets):
            mine.extend(theirs)

    def _file_line(self, place: int) -> tuple[int, int]:
        file_index, lines_before = self.segments[place >> 40]
        return file_index, lines_before + (place & _LINE_MASK)

    def findings(self) -> Iterator[tuple[int, int, str, str]]:
        """(file index, line, kind, message) for every row that repeats an earlier prompt."""
        for bucket in self.buckets:
            prompts = bucket[0::3]
            if len(set(prompts)) == len(prompts):
                continue  # the common case, decided in C: no prompt repeats in this bucket
            responses, places = bucket[1::3], bucket[2::3]
            first: dict[int, int] = {}
            for i, prompt in enumerate(prompts):
                j = first.setdefault(prompt, i)
                if j == i:
                    continue
                file_index, line = self._file_line(places[i])
                where = self._where(places[j], file_index)
                if responses[j] == responses[i]:
                    yield file_index, line, "duplicate", f"same prompt and response as {where}"
                else:
                    yield file_index, line, "conflict", f"same prompt as {where} with a different response"

    def _where(self, place: int, file_index: int) -> str:
        first_file, first_line = self._file_line(place)
        return f"line {first_line}" if first_file == file_index else f"{self.files[first_file]}:{first_line}"


class _FileValidator:
    def __init__(self, report: FileReport, spec: FormatSpec, seen: _Seen, segment: int,
                 lengths: LengthStats, max_errors: int, max_line_bytes: int):
        self.report, self.spec, self.seen = report, spec, seen
        self.lengths, self.max_errors, self.max_line_bytes = lengths, max_errors, max_line_bytes
        self.custom = spec != DEFAULT_SPECS[spec.formatting]
        self.plain_alpaca = spec.formatting == "alpaca" and not self.custom
        self.place_base = segment << 40
        self.buckets = seen.buckets
        # Valid alpaca rows waiting for _count_alpaca, and their lines; see begin_batch for the rest.
        self.alpaca_rows, self.alpaca_lines = [], []
        self.listing, self.batch_start = True, 0
        self.alpaca_names = _canonical_alpaca({}, spec)[1] if spec.formatting == "alpaca" else None
        # Standard keys not yet seen in a valid row; checked until all are found.
        self.unseen = set() if self.custom else set(spec.columns.values())
        schema_format = "sharegpt" if self.custom and spec.formatting != "alpaca" else spec.formatting
        self.validator = validator(f"dataset-{schema_format}")
        if spec.formatting != "alpaca":
            self.role_of = {spec.tags[t]: role for t, role in _ROLE_OF_TAG.items() if spec.tags.get(t)}
            self.messages_key = spec.columns["messages"]
            self.role_key, self.content_key = spec.tags["role_tag"], spec.tags["content_tag"]

    def _note_keys(self, keys) -> None:
        """Standard keys found in valid rows (a row, or a batch's keys) join columns_present."""
        found = {key for key in self.unseen if key in keys}
        if found:
            self.unseen -= found
            self.report.columns_present = sorted({*self.report.columns_present, *found})

    def add(self, line: int | None, pointer: str, kind: str, message: str) -> None:
        """Count a problem, and list it while the list had room when the batch began: a batch's
        problems are put in line order at its end (end_batch), and only then cut to max_errors."""
        counts = self.report.counts
        counts[kind] = counts.get(kind, 0) + 1
        if self.listing:
            self.report.problems.append(Problem(line, pointer, kind, message))

    def begin_batch(self) -> None:
        self.listing = len(self.report.problems) < self.max_errors
        self.batch_start = len(self.report.problems)

    def end_batch(self) -> None:
        """The batch's valid alpaca rows are counted (_count_alpaca), then its problems, found
        by row and by column, are put in line order and cut to max_errors."""
        if self.alpaca_rows:
            self._count_alpaca(self.alpaca_rows, self.alpaca_lines)
            self.alpaca_rows, self.alpaca_lines = [], []
        problems = self.report.problems
        if len(problems) > self.batch_start:
            problems[self.batch_start:] = sorted(problems[self.batch_start:], key=_problem_line)
            del problems[self.max_errors:]
        self.lengths.flush()  # count this batch's lengths in one go

    def check_lines(self, first_line: int, lines: list[bytes]) -> None:
        """A batch of JSONL lines (each may end with its newline), numbered from `first_line`:
        the hot loop. A valid row of plain alpaca is only parsed and schema-checked here."""
        loads, decode_error, is_valid = orjson.loads, orjson.JSONDecodeError, self.validator.is_valid
        max_line_bytes, plain_alpaca = self.max_line_bytes, self.plain_alpaca
        alpaca_rows, alpaca_lines = self.alpaca_rows, self.alpaca_lines
        self.begin_batch()
        rows = 0
        for line, raw in enumerate(lines, first_line):
            try:
                row = loads(raw)
            except decode_error as err:
                if raw.isspace() or not raw:
                    continue  # a blank line: LLaMA-Factory skips it too
                rows += 1
                self._long_line(line, raw)
                self._unparsable(line, raw, err)
                continue
            rows += 1
            if len(raw) > max_line_bytes:
                self._long_line(line, raw)
            if plain_alpaca and type(row) is dict and "conversations" not in row and "messages" not in row and is_valid(row):
                alpaca_rows.append(row)  # what check_row would do, one call shorter
                alpaca_lines.append(line)
            else:
                self.check_row(line, row)
        self.report.rows += rows
        self.end_batch()

    def _long_line(self, line: int, raw: bytes) -> None:
        size = len(raw.rstrip(b"\r\n"))
        if size > self.max_line_bytes:
            self.add(line, "", "line_too_long", f"line is {size / (1 << 20):.1f} MiB (limit {self.max_line_bytes / (1 << 20):.1f} MiB)")

    def _unparsable(self, line: int, raw: bytes, err: orjson.JSONDecodeError) -> None:
        raw = raw.rstrip(b"\r\n")  # else an error at the end of the line is put on the next one
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as bad:
            self.add(line, "", "invalid_utf8", f"invalid UTF-8 at byte {bad.start + 1} of the line")
            return
        try:
            orjson.loads(raw)
        except orjson.JSONDecodeError as without_newline:
            err = without_newline
        self.add(line, "", "invalid_json", f"not valid JSON: {_json_error_text(err)}")

    def check_row(self, line: int | None, row) -> None:
        if type(row) is not dict:
            self.add(line, "", "not_an_object", f"a row must be a JSON object, not {_json_type(row)}")
            return
        if not self.custom:  # row_format knows the standard key names only
            other = row_format(row)
            if other is not None and other != self.spec.formatting:
                self.add(line, "", "mixed_format", f"this row is {other} but the file is {self.spec.formatting}")
                return
        if self.spec.formatting == "alpaca":
            self._check_alpaca(line, row)
        else:
            self._check_messages(line, row)

    def _schema(self, line, instance, names: "_FileNames | None" = None) -> bool:
        """Report every schema violation, in the file's own key names; True when none."""
        if self.validator.is_valid(instance):
            return True
        for error in self.validator.iter_errors(instance):
            pointer, message = json_pointer(error.instance_path), error.message
            if names:
                pointer, message = names.pointer(pointer), names.message(message)
            self.add(line, pointer, "schema", message)
        return False

    def _check_alpaca(self, line, row) -> None:
        if self.custom:
            row, names = _canonical_alpaca(row, self.spec)
            if not self.validator.is_valid(row):
                self._schema(line, row, names)
                return
        elif not self.validator.is_valid(row):
            self._schema(line, row)
            return
        self.alpaca_rows.append(row)
        self.alpaca_lines.append(line)

    def _count_alpaca(self, rows: list[dict], lines: list) -> None:
        """Empty texts, duplicate keys and lengths of a batch of valid alpaca rows (standard
        keys), column by column: map() runs these loops in C, and only the few rows with an
        empty text, a system prompt or a history take a Python step of their own."""
        self.report.valid_rows += len(rows)
        keys = set().union(*rows)
        if self.unseen:
            self._note_keys(keys)
        instructions, responses = list(map(_INSTRUCTION, rows)), list(map(_OUTPUT, rows))
        queries = list(map(dict.get, rows, repeat("input"), repeat("")))
        # A text is blank when nothing is left of it after lstrip(), which copies only a text
        # with leading whitespace (rare), unlike strip().
        for i in sorted({*compress(count(), map(not_, map(str.lstrip, responses))),
                         *compress(count(), map(not_, map(str.lstrip, instructions)))}):
            self._empty_texts(lines[i], rows[i])
        instruction_bytes, query_bytes = list(map(str.encode, instructions)), list(map(str.encode, queries))
        response_bytes = list(map(str.encode, responses))
        # text_key, column by column: the instruction's key seeds the input's
        prompt_keys = list(map(xxh3_64_intdigest, query_bytes, map(xxh3_64_intdigest, instruction_bytes)))
        prompt_sizes = list(map(add, map(len, instruction_bytes), map(len, query_bytes)))
        more = {i for key in ("system", "history") if key in keys for i in compress(count(), map(dict.get, rows, repeat(key)))}
        for i in more:  # rows with a system prompt or a history: their texts join the prompt
            texts = _system_and_history(rows[i])
            prompt_keys[i] = text_key(texts, prompt_keys[i])
            prompt_sizes[i] += sum(map(text_bytes, texts))
        # _record, row by row in C: buckets[prompt_key & 255].extend((prompt_key, response_key, place))
        places = map(or_, repeat(self.place_base), lines if None not in lines else [line or 0 for line in lines])
        deque(map(array.extend, map(self.buckets.__getitem__, map(and_, prompt_keys, repeat(255))),
                  zip(prompt_keys, map(xxh3_64_intdigest, response_bytes), places)), maxlen=0)
        if self.lengths.exact:
            for row, instruction, query, response in zip(rows, instructions, queries, responses):
                self.lengths.add_texts("\n".join([*_system_and_history(row), instruction, query]), response)
        else:
            self.lengths.add_byte_columns(prompt_sizes, list(map(len, response_bytes)))

    def _empty_texts(self, line, row: dict) -> None:
        """The problems of a valid alpaca row with an empty instruction or response."""
        names = self.alpaca_names
        prompt_empty = _blank(row["instruction"]) and _blank(row.get("input", ""))
        if _blank(row["output"]):
            if prompt_empty and not row.get("history"):
                self.add(line, "", "empty_row", "instruction, input and output are all empty")
            else:
                self.add(line, names.pointer("/output"), "empty_response", "the response is empty")
        elif prompt_empty:
            self.add(line, names.pointer("/instruction"), "empty_prompt", "instruction and input are both empty")

    def _check_messages(self, line, row) -> None:
        messages_key = self.messages_key
        if self.custom:
            if not self._known_roles(line, row):
                return
            canonical, names = _canonical_messages(row, self.spec, self.role_of)
            if not self._schema(line, canonical, names):
                return
        elif not self._schema(line, row):
            return
        messages = row[messages_key]
        tags = [m[self.role_key] for m in messages]
        roles = [self.role_of[tag] for tag in tags]
        contents = [m[self.content_key] for m in messages]
        if not self._check_roles(line, roles, tags):
            return
        self.report.valid_rows += 1
        if self.unseen:
            self._note_keys(row)
        turns = list(zip(roles, contents, range(len(roles))))
        for role, content, i in turns:
            if role in _RESPONSE_ROLES and _blank(content):
                self.add(line, f"/{messages_key}/{i}/{self.content_key}", "empty_response", f"turn {i} ({messages[i][self.role_key]}) is empty")
        first_user = next((i for role, _, i in turns if role == USER), None)
        if first_user is not None and _blank(contents[first_user]):
            self.add(line, f"/{messages_key}/{first_user}/{self.content_key}", "empty_prompt", "the first user turn is empty")
        system = row.get(self.spec.columns.get("system"), "")
        system = system if isinstance(system, str) else ""
        prompt_parts = [system] + [c for r, c, _ in turns if r not in _RESPONSE_ROLES]
        response_parts = [c for r, c, _ in turns if r in _RESPONSE_ROLES]
        self._record(line, text_key([*contents[:-1], system]), text_key([contents[-1]]))
        if self.lengths.exact:
            self.lengths.add_texts("\n".join(prompt_parts), "\n".join(response_parts))
        else:
            self.lengths.add_bytes(sum(map(text_bytes, prompt_parts)), sum(map(text_bytes, response_parts)))

    def _known_roles(self, line, row) -> bool:
        """With a dataset_info entry's own tags: every role value must be one of them."""
        messages = row.get(self.messages_key)
        if not isinstance(messages, list):
            return True  # the schema says what is wrong
        ok = True
        for i, message in enumerate(messages):
            if isinstance(message, dict) and self.role_key in message and message[self.role_key] not in self.role_of:
                known = ", ".join(repr(tag) for tag in self.role_of)
                self.add(line, f"/{self.messages_key}/{i}/{self.role_key}", "schema",
                         f"{message[self.role_key]!r} is not one of the entry's role tags ({known})")
                ok = False
        return ok

    def _check_roles(self, line, roles: list[str], tags: list[str]) -> bool:
        """LLaMA-Factory's rule: an optional system turn first, then user/observation and
        assistant/function alternating (openai: consecutive tool turns merge), ending with the
        assistant. Reports the first violation as an error."""
        key, role_key = self.messages_key, self.role_key
        start = 1 if roles and roles[0] == SYSTEM else 0
        turn = 0
        for i in range(start, len(roles)):
            role = roles[i]
            if self.spec.formatting == "openai" and role == OBSERVATION and i > start and roles[i - 1] == OBSERVATION:
                continue  # merged into the previous tool turn
            expected = _PROMPT_ROLES if turn % 2 == 0 else _RESPONSE_ROLES
            if role not in expected:
                if role == SYSTEM:
                    why = "a system message is only allowed as the first turn"
                else:
                    why = f"expected {self._tag_names(expected)} here: turns must alternate, starting with the user"
                self.add(line, f"/{key}/{i}/{role_key}", "role_order", f"turn {i} is {tags[i]!r}; {why}")
                return False
            turn += 1
        if turn == 0:
            self.add(line, f"/{key}", "message_count", "no turns besides the system message")
            return False
        if turn % 2:
            self.add(line, f"/{key}", "message_count", "the conversation ends with a user turn, not an assistant answer")
            return False
        return True

    def _tag_names(self, roles) -> str:
        names = [tag for tag, role in self.role_of.items() if role in roles]
        return " or ".join(names)

    def _record(self, line, prompt_key: int, response_key: int) -> None:
        """One row's keys and place into its bucket (_count_alpaca does a batch at once)."""
        self.seen.buckets[prompt_key & 255].extend((prompt_key, response_key, self.place_base | (line or 0)))


def _blank(text: str) -> bool:  # no copy, unlike strip()
    return not text or text.isspace()


_INSTRUCTION, _OUTPUT = itemgetter("instruction"), itemgetter("output")


def _problem_line(problem: Problem) -> int:
    return problem.line or 0


def _system_and_history(row: dict) -> list[str]:
    """An alpaca row's prompt texts besides instruction and input (empty for most rows)."""
    history = row.get("history") or ()
    return [row.get("system", ""), *(text for pair in history for text in pair)] if row.get("system") or history else []


def _json_type(value) -> str:
    return {list: "an array", str: "a string", int: "a number", float: "a number", bool: "a boolean"}.get(type(value), "null")


def _json_error_text(err: orjson.JSONDecodeError) -> str:
    text = str(err)
    return re.sub(r": line \d+ column \d+ \(char \d+\)$", f" (column {err.colno})", text)


class _FileNames:
    """Maps sft-tui's standard key names back to a dataset_info entry's own, so that problems
    name the file's fields: pointers by their first segments, messages by quoted key names."""

    def __init__(self, top: dict[str, str], inner: dict[str, str] | None = None):
        self.top, self.inner = top, inner or {}

    def pointer(self, pointer: str) -> str:
        parts = pointer.split("/")
        if len(parts) > 1:
            parts[1] = self.top.get(parts[1], parts[1])
        if len(parts) > 3:
            parts[3] = self.inner.get(parts[3], parts[3])
        return "/".join(parts)

    def message(self, message: str) -> str:
        for standard, own in {**self.top, **self.inner}.items():
            message = message.replace(f'"{standard}"', f'"{own}"')
        return message


_ALPACA_STANDARD_KEY = {"prompt": "instruction", "query": "input", "response": "output", "system": "system", "history": "history"}


def _canonical_alpaca(row: dict, spec: FormatSpec) -> tuple[dict, _FileNames]:
    """The row under alpaca's standard keys, and the way back to the file's names."""
    canonical, file_key = {}, {}
    for column, standard in _ALPACA_STANDARD_KEY.items():
        key = spec.columns.get(column)
        if key:
            file_key[standard] = key
            if key in row:
                canonical[standard] = row[key]
    return canonical, _FileNames(file_key)


def _canonical_messages(row: dict, spec: FormatSpec, role_of: dict) -> tuple[dict, _FileNames]:
    """The row as a standard sharegpt conversation, and the way back to the file's names."""
    key, role_key, content_key = spec.columns["messages"], spec.tags["role_tag"], spec.tags["content_tag"]
    sharegpt_role = {USER: "human", ASSISTANT: "gpt", OBSERVATION: "observation", FUNCTION: "function_call", SYSTEM: "system"}
    canonical = {}
    if key in row:
        messages = row[key]
        if isinstance(messages, list):
            canonical["conversations"] = [_canonical_message(m, role_key, content_key, role_of, sharegpt_role) for m in messages]
        else:
            canonical["conversations"] = messages
    return canonical, _FileNames({"conversations": key}, {"from": role_key, "value": content_key})


def _canonical_message(message, role_key, content_key, role_of, sharegpt_role):
    if not isinstance(message, dict):
        return message
    out = {}
    if role_key in message:
        out["from"] = sharegpt_role[role_of[message[role_key]]]  # _known_roles ran first
    if content_key in message:
        out["value"] = message[content_key]
    return out


def detect_format(path: Path, kind: str) -> str | None:
    """The format most of the file's first rows are in (standard key names), or None."""
    votes: dict[str, int] = {}
    for row in _head_rows(path, kind):
        fmt = row_format(row) if isinstance(row, dict) else None
        if fmt:
            votes[fmt] = votes.get(fmt, 0) + 1
    return max(votes, key=votes.get) if votes else None


def _head_rows(path: Path, kind: str) -> list:
    if kind == "json":
        try:
            data = orjson.loads(path.read_bytes().removeprefix(_BOM))
        except orjson.JSONDecodeError:
            return []
        return data[:DETECT_ROWS] if isinstance(data, list) else []
    rows = []
    for _, lines in _jsonl_chunks(path, None):
        for raw in lines:
            try:
                rows.append(orjson.loads(raw))
            except orjson.JSONDecodeError:
                continue
            if len(rows) >= DETECT_ROWS:
                return rows
    return rows


def validate_file(path: Path, *, fmt: str = "auto", spec: FormatSpec | None = None, seen: _Seen | None = None,
                  lengths: LengthStats | None = None, max_errors: int = DEFAULT_MAX_ERRORS,
                  max_line_bytes: int = DEFAULT_MAX_LINE_BYTES, progress: Progress | None = None,
                  jobs: int = 0) -> FileReport:
    """Validate one file, a large JSONL file in `jobs` processes (0: one per usable core).
    Raises DatasetFileError when it cannot be read at all."""
    kind = sniff(path)
    seen = seen if seen is not None else _Seen()
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
        from tui.hardware import usable_cpus  # here, not at the top: workers import this module

        jobs = usable_cpus()
    if kind == "jsonl" and jobs > 1 and not lengths.exact and path.stat().st_size >= PARALLEL_MIN_BYTES:
        tasks = [_RangeTask(path, start, end, spec, seen.new_segment(file_index), max_errors, max_line_bytes)
                 for start, end in _line_ranges(path, RANGE_BYTES)]
        _validate_ranges(tasks, jobs, report, seen, lengths, progress)
        return report
    checker = _FileValidator(report, spec, seen, seen.new_segment(file_index), lengths, max_errors, max_line_bytes)
    if kind == "jsonl":
        for first_line, lines in _jsonl_chunks(path, progress):
            checker.check_lines(first_line, lines)
    else:
        _validate_array(path, checker, progress)
    return report


@dataclass(frozen=True)
class _RangeTask:
    """One worker's share of a JSONL file: the lines in bytes start..end."""

    path: Path
    start: int
    end: int
    spec: FormatSpec
    segment: int
    max_errors: int
    max_line_bytes: int


def _validate_range(task: _RangeTask) -> tuple[int, FileReport, LengthStats, list[array]]:
    """In a worker: (lines in the range, its report with lines counted from the range's start,
    its lengths, its seen-buckets)."""
    report, seen, lengths = FileReport(path=task.path), _Seen(), LengthStats()
    checker = _FileValidator(report, task.spec, seen, task.segment, lengths, task.max_errors, task.max_line_bytes)
    lines = 0
    for first_line, chunk in _jsonl_chunks(task.path, None, task.start, task.end):
        checker.check_lines(first_line, chunk)
        lines = first_line + len(chunk) - 1
    return lines, report, lengths, seen.buckets


def _validate_ranges(tasks: list[_RangeTask], jobs: int, report: FileReport, seen: _Seen,
                     lengths: LengthStats, progress: Progress | None) -> None:
    """The ranges of one file, checked by _Workers and merged in file order: the first
    `max_errors` problems are the first ones of the file, as in one process."""
    total = tasks[-1].end
    lines_before = 0
    # _Workers first: zip asks it for one more result at the end, so that it ends (and cleans up)
    for (lines, part, part_lengths, buckets), task in zip(_Workers(tasks, jobs), tasks):
        seen.segments[task.segment][1] = lines_before
        report.rows += part.rows
        report.valid_rows += part.valid_rows
        for kind, n in part.counts.items():
            report.counts[kind] = report.counts.get(kind, 0) + n
        room = task.max_errors - len(report.problems)
        report.problems += [replace(p, line=p.line + lines_before) for p in part.problems[:max(room, 0)]]
        if part.columns_present:
            report.columns_present = sorted({*report.columns_present, *part.columns_present})
        lengths.merge(part_lengths)
        seen.merge(buckets)
        lines_before += lines
        if progress:
            progress(report.rows, task.end, total)


_WORKER_CODE = "from tui.datasets import _worker_main; _worker_main()"


class _Workers:
    """_validate_range of each task, yielded in task order, by this process and `jobs - 1`
    worker processes, each taking the next task when it is ready for one: a slow worker does
    fewer tasks, and this process works while the workers start (about 0.1 s each).

    Plain `python -c` subprocesses rather than multiprocessing: its spawn and forkserver modes
    run the caller's main script again in every worker (a script without an
    `if __name__ == "__main__"` guard makes it start workers forever), and fork is unsafe in the
    TUI, which validates from a thread. A thread per worker feeds it pickled tasks on stdin,
    two ahead so that it never waits, and reads its pickled results from stdout."""

    AHEAD = 2

    def __init__(self, tasks: list[_RangeTask], jobs: int):
        self.tasks, self.jobs = tasks, jobs
        self.next_task = 0
        self.results: dict[int, tuple] = {}
        self.failure: str | None = None
        self.changed = threading.Condition(threading.RLock())

    def _claim(self) -> int | None:
        with self.changed:  # _result holds it already: the lock is reentrant
            if self.next_task == len(self.tasks) or self.failure:
                return None
            self.next_task += 1
            return self.next_task - 1

    def _feed(self, worker: subprocess.Popen, errors) -> None:
        waiting: deque[int] = deque()
        try:
            while True:
                while len(waiting) < self.AHEAD and (index := self._claim()) is not None:
                    pickle.dump(self.tasks[index], worker.stdin, protocol=pickle.HIGHEST_PROTOCOL)
                    worker.stdin.flush()
                    waiting.append(index)
                if not waiting:
                    break
                result = pickle.load(worker.stdout)
                with self.changed:
                    self.results[waiting.popleft()] = result
                    self.changed.notify_all()
        except Exception as err:  # whatever it is, _result must hear of it, or it waits forever
            if isinstance(err, (EOFError, OSError)):  # the worker died: its last words say why
                worker.wait()
                errors.seek(0)
                tail = errors.read().decode(errors="replace").strip().splitlines()[-1:] or [f"exit status {worker.returncode}"]
                why = tail[0]
            else:
                why = repr(err)
            with self.changed:
                self.failure = self.failure or f"a validation worker failed: {why}"
                self.changed.notify_all()
        finally:
            try:
                worker.stdin.close()
            except OSError:  # a dead worker's pipe
                pass

    def __iter__(self) -> Iterator[tuple]:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH")]))}
        workers, feeders = [], []
        try:
            for _ in range(min(self.jobs, len(self.tasks)) - 1):
                errors = tempfile.TemporaryFile()
                worker = subprocess.Popen([sys.executable, "-c", _WORKER_CODE], stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, stderr=errors, env=env)
                workers.append((worker, errors))
                _widen_pipe(worker.stdout)
                feeders.append(threading.Thread(target=self._feed, args=(worker, errors), daemon=True))
                feeders[-1].start()
            for index in range(len(self.tasks)):
                yield self._result(index)
        finally:
            with self.changed:
                self.failure = self.failure or "stopped"  # no more tasks for the feeders
            for worker, _ in workers:
                worker.kill()
                worker.wait()
            for feeder in feeders:
                feeder.join()
            for worker, errors in workers:
                worker.stdout.close()
                errors.close()

    def _result(self, index: int) -> tuple:
        """Task `index`'s result; while it is not there, this process does the next free task."""
        while True:
            with self.changed:
                if index in self.results:
                    return self.results.pop(index)
                if self.failure:
                    raise RuntimeError(self.failure)
                mine = self._claim()
                if mine is None:
                    self.changed.wait()
                    continue
            was_enabled = gc.isenabled()
            gc.disable()  # as in the workers (_worker_main); for this task only
            try:
                result = _validate_range(self.tasks[mine])
            finally:
                if was_enabled:
                    gc.enable()
            with self.changed:
                self.results[mine] = result


def _widen_pipe(pipe) -> None:
    """Room in a worker's result pipe for a few results (Linux; elsewhere it stays as it is).
    With the 64 KiB default, a worker waits on every result until the feeder thread has read it
    all, and the feeder reads a chunk at a time between this process's own work (it needs the
    GIL for each), so the worker idled for a fifth of the time."""
    try:
        import fcntl

        with open("/proc/sys/fs/pipe-max-size") as f:
            fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, min(int(f.read()), 4 * RESULT_BYTES))
    except (ImportError, AttributeError, OSError, ValueError):
        pass


def _worker_main() -> None:
    """The worker process of _Workers. It makes no reference cycles and lives for one file, so
    the cyclic garbage collector, which walks every row kept for a batch, is off."""
    gc.disable()
    tasks, out = sys.stdin.buffer, sys.stdout.buffer
    while True:
        try:
            task = pickle.load(tasks)
        except EOFError:
            return
        pickle.dump(_validate_range(task), out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()


def _validate_array(path: Path, checker: _FileValidator, progress: Progress | None) -> None:
    data = path.read_bytes().removeprefix(_BOM)
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
        checker.add(err.lineno, "", "invalid_json", f"not valid JSON: {_json_error_text(err)}")
        return
    if not isinstance(rows, list):
        checker.report.rows += 1
        checker.add(1, "", "not_an_object", "a .json dataset must be an array of row objects")
        return
    starts = _array_element_lines(data)
    lines = starts if len(starts) == len(rows) else [None] * len(rows)
    for batch in range(0, len(rows), ARRAY_BATCH):
        checker.begin_batch()
        for line, row in zip(lines[batch:batch + ARRAY_BATCH], rows[batch:batch + ARRAY_BATCH]):
            checker.check_row(line, row)
        checker.report.rows += len(rows[batch:batch + ARRAY_BATCH])
        checker.end_batch()
        if progress:
            progress(checker.report.rows, len(data), len(data))


# --- several files --------------------------------------------------------------------------------


def load_dataset_info_entry(info_path: Path, name: str) -> tuple[FormatSpec, list[Path]]:
    """The format spec and files of entry `name` in a dataset_info.json (read-only)."""
    try:
        info = orjson.loads(info_path.read_bytes())
    except FileNotFoundError:
        raise DatasetFileError(f"{info_path}: no such file") from None
    except PermissionError:
        raise DatasetFileError(f"{info_path}: permission denied") from None
    except orjson.JSONDecodeError as err:
        raise DatasetFileError(f"{info_path}:{err.lineno}: not valid JSON ({_json_error_text(err)})") from None
    if not isinstance(info, dict):
        raise DatasetFileError(f"{info_path}: must be a JSON object of dataset entries")
    if name not in info:
        known = ", ".join(sorted(info)[:20]) or "none"
        raise DatasetFileError(f"{info_path}: no dataset named {name!r} (it has: {known})")
    entry = info[name]
    if not isinstance(entry, dict) or "file_name" not in entry:
        raise DatasetFileError(f"{info_path}: entry {name!r} has no file_name; sft-tui validates local files only")
    names = entry["file_name"] if isinstance(entry["file_name"], list) else [entry["file_name"]]
    return spec_from_entry(entry), [info_path.parent / n for n in names]


def validate_paths(paths: list[Path], *, fmt: str = "auto", spec: FormatSpec | None = None,
                   tokenizer_dir: Path | None = None, max_errors: int = DEFAULT_MAX_ERRORS,
                   max_line_bytes: int = DEFAULT_MAX_LINE_BYTES, progress: Progress | None = None,
                   jobs: int = 0) -> ValidationReport:
    """Validate files and directories; unreadable ones become `file_errors` sentences. `jobs`:
    processes for a large JSONL file (0: one per usable core)."""
    tokens = TokenCounter(tokenizer_dir) if tokenizer_dir else None
    lengths, seen = LengthStats(tokens), _Seen()
    files, file_errors = expand_paths(paths)
    reports = []
    for path in files:
        try:
            reports.append(validate_file(path, fmt=fmt, spec=spec, seen=seen, lengths=lengths, max_errors=max_errors,
                                         max_line_bytes=max_line_bytes, progress=progress, jobs=jobs))
        except DatasetFileError as err:
            file_errors.append(str(err))
    _add_repeats(reports, seen, max_errors)
    return ValidationReport(reports, file_errors, lengths)


def _add_repeats(reports: list[FileReport], seen: _Seen, max_errors: int) -> None:
    """Duplicates and conflicts join each file's problems, which stay the first `max_errors`
    by line: the listed stream problems are the first ones, so merging keeps that true."""
    earliest: dict[int, list] = {}  # per file, a max-heap (by -line) of its first repeats
    for file_index, line, kind, message in seen.findings():
        counts = reports[file_index].counts
        counts[kind] = counts.get(kind, 0) + 1
        heap = earliest.setdefault(file_index, [])
        if len(heap) < max_errors:
            heapq.heappush(heap, (-line, kind, message))
        elif -line > heap[0][0]:
            heapq.heapreplace(heap, (-line, kind, message))
    for file_index, heap in earliest.items():
        report = reports[file_index]
        found = [Problem(-neg_line, "", kind, message) for neg_line, kind, message in heap]
        report.problems = sorted(report.problems + found, key=lambda p: p.line or 0)[:max_errors]


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
    from tui.bundle import atomic_write

    with open(source, encoding="utf-8", errors="replace") as f:
        kept = [line for number, line in enumerate(f, start=1) if number not in bad]
    atomic_write(target, "".join(kept))
    return len(bad)
