"""LLaMA-Factory's log files as files: a growing log read from where it was left, its last
lines, trainer_log.jsonl, and the durations LLaMA-Factory writes ("0:01:02")."""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

import orjson

TRAINER_LOG = "trainer_log.jsonl"


READ_CHUNK = 1 << 20


class LogTail:
    """New complete lines of a growing file, by byte offset. `\\r` ends a line as `\\n` does."""

    def __init__(self, path: Path, offset: int = 0):
        self.path = Path(path)
        self.offset = offset
        self._partial = b""
        self.truncated = False  # set by read_lines when the file shrank since the last read

    def read_lines(self, limit: int = 64 * READ_CHUNK) -> list[str]:
        self.truncated = False
        try:
            with open(self.path, "rb") as f:
                size = os.fstat(f.fileno()).st_size
                if size < self.offset:
                    self.offset, self._partial, self.truncated = 0, b"", True
                if size == self.offset:
                    return []
                f.seek(self.offset)
                data = f.read(min(size - self.offset, limit))
        except FileNotFoundError:
            return []
        self.offset += len(data)
        data = self._partial + data
        pieces = re.split(rb"\r\n|\n|\r", data)
        self._partial = pieces.pop()
        return [p.decode("utf-8", "replace") for p in pieces if p.strip()]


def tail_offset(path: Path, count: int, block: int = 64 * 1024) -> int:
    """The byte offset where the last `count` lines of a file begin, found by reading backwards
    from the end: for a 1 GB log this costs a few blocks, never the whole file."""
    with open(path, "rb") as f:
        size = f.seek(0, os.SEEK_END)
        position, data = size, b""
        while position > 0:
            step = min(block, position)
            position -= step
            f.seek(position)
            data = f.read(step) + data
            ends = [m.end() for m in re.finditer(rb"\r\n|\n|\r", data.rstrip(b"\r\n"))]
            if len(ends) >= count:
                return position + ends[-count]
    return 0


def last_lines(path: Path, count: int) -> list[str]:
    tail = LogTail(path, tail_offset(path, count))
    lines = tail.read_lines()
    return lines + ([tail._partial.decode("utf-8", "replace")] if tail._partial.strip() else [])


def duration_seconds(text: str) -> float | None:
    """'1:02:03', '02:03', '1 day, 2:00:00' -> seconds; '?' and the like -> None."""
    days = 0
    match = re.match(r"(\d+) days?, (.*)", text.strip())
    if match:
        days, text = int(match.group(1)), match.group(2)
    parts = text.strip().split(":")
    try:
        numbers = [float(p) for p in parts]
    except ValueError:
        return None
    seconds = 0.0
    for number in numbers:
        seconds = seconds * 60 + number
    return days * 86400 + seconds


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


def parse_row(line: str | bytes):
    """One trainer_log.jsonl row, or None for a line being written. Python's json.dumps writes a
    NaN loss as `NaN`, which is not JSON: orjson refuses it, the json module reads it."""
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        if "NaN" not in (line if isinstance(line, str) else line.decode("utf-8", "replace")) and "Infinity" not in str(line):
            return None
    try:
        return json.loads(line)
    except ValueError:
        return None


def is_nan(value) -> bool:
    return isinstance(value, float) and math.isnan(value)


def read_trainer_log(output_dir: Path) -> list[dict]:
    """Every row of trainer_log.jsonl (for status tables and post-mortems); [] when absent."""
    rows = []
    try:
        with open(Path(output_dir) / TRAINER_LOG, "rb") as f:
            for line in f:
                row = parse_row(line)
                if isinstance(row, dict):
                    rows.append(row)
    except OSError:
        pass
    return rows
