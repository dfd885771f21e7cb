"""Reading dataset files: which files a path names, what a file is (JSON lines or a JSON
array), JSONL in whole chunks of lines (or one byte range of the file), the line each element of a
JSON array starts on, the format the first rows are in, and orjson's errors in a user's words."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import orjson

from tui.datasets.arrays import read_array
from tui.datasets.formats import (
    DatasetFileError,
    FormatSpec,
    row_format,
    spec_from_entry,
)
from tui.datasets.kinds import REGISTRY_NAME, refuse_ranking_entry
from tui.datasets.report import Progress

DATA_SUFFIXES = (".jsonl", ".json")


CHUNK_BYTES = 1 << 20  # JSONL lines read and checked as one batch


READ_BUFFER_BYTES = 1 << 20


SNIFF_BYTES = 64 << 10


DETECT_ROWS = 50  # rows read to detect a file's format


SPLIT_OF_STEM = {"train": "train", "val": "val", "valid": "val", "validation": "val", "dev": "val", "eval": "val", "test": "test"}


BOM = b"\xef\xbb\xbf"


def expand_paths(paths: list[Path]) -> tuple[list[Path], list[str]]:
    """Data files named by `paths` (a directory means its .jsonl/.json files) and one sentence
    per path that cannot be used. A directory's dataset_info.json (LLaMA-Factory's registry) is
    not data: it is named only when the directory holds nothing else, to say what it is."""
    files, errors = [], []
    for path in paths:
        if path.is_dir():
            found = sorted(p for p in path.iterdir() if p.suffix in DATA_SUFFIXES and p.is_file())
            found = [p for p in found if p.name != REGISTRY_NAME] or found
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
    body = head.removeprefix(BOM)
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


def jsonl_chunks(path: Path, progress: Progress | None, start: int = 0, end: int | None = None) -> Iterator[tuple[int, list[bytes]]]:
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
            if done == 0 and start == 0 and lines[0].startswith(BOM):
                lines[0] = lines[0][len(BOM):]
            yield lines_before + 1, lines
            lines_before += len(lines)
            done += size
            if progress:
                progress(lines_before, min(done, total), total)


def line_ranges(path: Path, size: int) -> list[tuple[int, int]]:
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


def array_element_lines(data: bytes) -> list[int]:
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


def json_error_text(err: orjson.JSONDecodeError) -> str:
    text = str(err)
    return re.sub(r": line \d+ column \d+ \(char \d+\)$", f" (column {err.colno})", text)


def detect_format(path: Path, kind: str) -> str | None:
    """The format most of the file's first rows are in (standard key names), or None."""
    return format_of_rows(head_rows(path, kind))


def format_of_rows(rows: list) -> str | None:
    """The format most of `rows` are in (standard key names), or None."""
    votes: dict[str, int] = {}
    for row in rows:
        fmt = row_format(row) if isinstance(row, dict) else None
        if fmt:
            votes[fmt] = votes.get(fmt, 0) + 1
    return max(votes, key=votes.__getitem__) if votes else None


def head_rows(path: Path, kind: str) -> list:
    if kind == "json":
        data = path.read_bytes().removeprefix(BOM)
        try:
            rows = orjson.loads(data)
        except orjson.JSONDecodeError:  # broken: the rows a tolerant read recovers
            try:
                return read_array(data.decode("utf-8"), limit=DETECT_ROWS).rows
            except UnicodeDecodeError:
                return []
        return rows[:DETECT_ROWS] if isinstance(rows, list) else []
    rows = []
    for _, lines in jsonl_chunks(path, None):
        for raw in lines:
            try:
                rows.append(orjson.loads(raw))
            except orjson.JSONDecodeError:
                continue
            if len(rows) >= DETECT_ROWS:
                return rows
    return rows


def load_dataset_info_entry(info_path: Path, name: str) -> tuple[FormatSpec, list[Path]]:
    """The format spec and files of entry `name` in a dataset_info.json (read-only)."""
    try:
        info = orjson.loads(info_path.read_bytes())
    except FileNotFoundError:
        raise DatasetFileError(f"{info_path}: no such file") from None
    except PermissionError:
        raise DatasetFileError(f"{info_path}: permission denied") from None
    except orjson.JSONDecodeError as err:
        raise DatasetFileError(f"{info_path}:{err.lineno}: not valid JSON ({json_error_text(err)})") from None
    if not isinstance(info, dict):
        raise DatasetFileError(f"{info_path}: must be a JSON object of dataset entries")
    if name not in info:
        known = ", ".join(sorted(info)[:20]) or "none"
        raise DatasetFileError(f"{info_path}: no dataset named {name!r} (it has: {known})")
    entry = info[name]
    if not isinstance(entry, dict) or "file_name" not in entry:
        raise DatasetFileError(f"{info_path}: entry {name!r} has no file_name; sft-tui validates local files only")
    refuse_ranking_entry(info_path, name, entry)
    names = entry["file_name"] if isinstance(entry["file_name"], list) else [entry["file_name"]]
    return spec_from_entry(entry), [info_path.parent / n for n in names]
