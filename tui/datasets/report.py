"""What validation finds: every problem kind with its severity and what LLaMA-Factory does
with such a row, a problem (line, field, message), a file's report and the report of several files
with their statistics."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tui.datasets.lengths import LengthStats

DEFAULT_MAX_LINE_BYTES = 1 << 20


DEFAULT_MAX_ERRORS = 100


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
    "missing_media": ("warning", "LLaMA-Factory cannot open it when it loads the row (looked for in media_dir, "
                      "the dataset file's folder by default, then as given)"),
    "line_too_long": ("warning", "an unusually large row; check it is meant to be one row"),
}


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
    media_rows: dict[str, int] = field(default_factory=dict)  # valid rows with images/videos/audios
    # A .json array that does not parse: LLaMA-Factory loads none of it. The sentence saying so,
    # where it breaks and how many rows a tolerant read recovers (the rows then counted and checked).
    load_error: str | None = None
    recovered_rows: int | None = None

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
            "media_rows": dict(sorted(self.media_rows.items())),
            "load_error": self.load_error,
            "recovered_rows": self.recovered_rows,
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
