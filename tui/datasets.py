"""Dataset validation: every row of a JSONL/JSON file against the JSON Schema of its format
(alpaca, sharegpt, openai), the checks a schema cannot express, and length statistics.

The rules follow LLaMA-Factory 0.9.5's own converters (llamafactory/data/converter.py), so an
*error* is a row LLaMA-Factory drops or fails on, and a *warning* a row it trains on that is
probably not what you meant. JSONL is streamed in chunks: memory stays flat whatever the file
size (duplicates are found by hashing, lengths kept as histograms). A `.json` array is parsed
whole, as LLaMA-Factory does.
"""

from __future__ import annotations

import heapq
import re
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import orjson

from tui.lengths import LengthStats, TokenCounter, text_bytes
from tui.schemas import json_pointer, validator

FORMATS = ("alpaca", "sharegpt", "openai")
DATA_SUFFIXES = (".jsonl", ".json")
CHUNK_BYTES = 4 << 20
SNIFF_BYTES = 64 << 10
DETECT_ROWS = 50  # rows read to detect a file's format
DEFAULT_MAX_LINE_BYTES = 1 << 20
DEFAULT_MAX_ERRORS = 100
SPLIT_OF_STEM = {"train": "train", "val": "val", "valid": "val", "validation": "val", "dev": "val", "eval": "val", "test": "test"}
_LINE_MASK = (1 << 40) - 1
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


def _jsonl_chunks(path: Path, progress: Progress | None) -> Iterator[tuple[int, list[bytes]]]:
    """(number of the first line, lines) per chunk of the file: whole chunks, so the per-row
    loop runs without a generator switch per line. A BOM at the start is dropped."""
    total = path.stat().st_size
    done = lines_before = 0
    tail = b""
    with path.open("rb") as f:
        first = True
        while chunk := f.read(CHUNK_BYTES):
            if first and chunk.startswith(_BOM):
                chunk = chunk[len(_BOM):]
            first = False
            lines = (tail + chunk).split(b"\n")
            tail = lines.pop()
            yield lines_before + 1, lines
            lines_before += len(lines)
            done += len(chunk)
            if progress:
                progress(lines_before, done, total)
    if tail:
        yield lines_before + 1, [tail]


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


class _Seen:
    """Every valid row's prompt hash, response hash and place, in flat arrays (24 bytes a row,
    not a dict entry's ~110), split in buckets by hash (_FileValidator._record appends). Duplicates (same prompt and
    response) and conflicts (same prompt, other response) are found bucket by bucket at the
    end, each bucket with a small dict, so memory stays flat whatever the file size."""

    BUCKETS = 256

    def __init__(self):
        self.files: list[Path] = []
        # Per bucket, triples laid flat: prompt hash, response hash, file << 40 | line.
        self.buckets = [array("q") for _ in range(self.BUCKETS)]

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
                file_index, line = places[i] >> 40, places[i] & _LINE_MASK
                where = self._where(places[j], file_index)
                if responses[j] == responses[i]:
                    yield file_index, line, "duplicate", f"same prompt and response as {where}"
                else:
                    yield file_index, line, "conflict", f"same prompt as {where} with a different response"

    def _where(self, place: int, file_index: int) -> str:
        first_file, first_line = place >> 40, place & _LINE_MASK
        return f"line {first_line}" if first_file == file_index else f"{self.files[first_file]}:{first_line}"


class _FileValidator:
    def __init__(self, report: FileReport, spec: FormatSpec, seen: _Seen, file_index: int,
                 lengths: LengthStats, max_errors: int, max_line_bytes: int, check_mixed: bool):
        self.report, self.spec, self.seen, self.file_index = report, spec, seen, file_index
        self.lengths, self.max_errors, self.max_line_bytes = lengths, max_errors, max_line_bytes
        self.check_mixed = check_mixed
        self.custom = spec != DEFAULT_SPECS[spec.formatting]
        self.plain_alpaca = spec.formatting == "alpaca" and not self.custom
        self.place_base = file_index << 40
        self.buckets = seen.buckets
        self.add_prompt_bytes, self.add_response_bytes = lengths.byte_sinks()
        # Standard keys not yet seen in a valid row; checked per row until all are found.
        self.unseen = set() if self.custom else set(spec.columns.values())
        schema_format = "sharegpt" if self.custom and spec.formatting != "alpaca" else spec.formatting
        self.validator = validator(f"dataset-{schema_format}")
        if spec.formatting != "alpaca":
            self.role_of = {spec.tags[t]: role for t, role in _ROLE_OF_TAG.items() if spec.tags.get(t)}
            self.messages_key = spec.columns["messages"]
            self.role_key, self.content_key = spec.tags["role_tag"], spec.tags["content_tag"]

    def _note_keys(self, row: dict) -> None:
        found = {key for key in self.unseen if key in row}
        if found:
            self.unseen -= found
            self.report.columns_present = sorted({*self.report.columns_present, *found})

    def add(self, line: int | None, pointer: str, kind: str, message: str) -> None:
        counts = self.report.counts
        counts[kind] = counts.get(kind, 0) + 1
        if len(self.report.problems) < self.max_errors:
            self.report.problems.append(Problem(line, pointer, kind, message))

    def check_lines(self, first_line: int, lines: list[bytes]) -> None:
        """A chunk of JSONL lines, numbered from `first_line`: the hot loop."""
        loads, decode_error = orjson.loads, orjson.JSONDecodeError
        report, max_line_bytes, plain_alpaca = self.report, self.max_line_bytes, self.plain_alpaca
        for line, raw in enumerate(lines, first_line):
            if not raw or raw.isspace():
                continue
            report.rows += 1
            if len(raw) > max_line_bytes:
                self.add(line, "", "line_too_long", f"line is {len(raw) / (1 << 20):.1f} MiB (limit {max_line_bytes / (1 << 20):.1f} MiB)")
            try:
                row = loads(raw)
            except decode_error as err:
                self._unparsable(line, raw, err)
                continue
            if plain_alpaca and type(row) is dict and "conversations" not in row and "messages" not in row:
                self._check_alpaca(line, row)  # what check_row would do, one call shorter
            else:
                self.check_row(line, row)
        self.lengths.flush()  # count this chunk's lengths in one go

    def _unparsable(self, line: int, raw: bytes, err: orjson.JSONDecodeError) -> None:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as bad:
            self.add(line, "", "invalid_utf8", f"invalid UTF-8 at byte {bad.start + 1} of the line")
            return
        self.add(line, "", "invalid_json", f"not valid JSON: {_json_error_text(err)}")

    def check_row(self, line: int | None, row) -> None:
        if type(row) is not dict:
            self.add(line, "", "not_an_object", f"a row must be a JSON object, not {_json_type(row)}")
            return
        if self.check_mixed:
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
        # The hot path of the common case: kept flat, one schema call when the row is valid.
        names = None
        if self.custom:
            row, names = _canonical_alpaca(row, self.spec)
        if not self.validator.is_valid(row):
            self._schema(line, row, names)
            return
        instruction, response = row["instruction"], row["output"]
        query, system, history = row.get("input", ""), row.get("system", ""), row.get("history")
        self.report.valid_rows += 1
        if self.unseen and not self.unseen.isdisjoint(row):
            self._note_keys(row)
        prompt_empty = (not instruction or instruction.isspace()) and (not query or query.isspace())
        if not response or response.isspace():
            if prompt_empty and not history:
                self.add(line, "", "empty_row", "instruction, input and output are all empty")
            else:
                self.add(line, names.pointer("/output") if names else "/output", "empty_response", "the response is empty")
        elif prompt_empty:
            self.add(line, names.pointer("/instruction") if names else "/instruction", "empty_prompt", "instruction and input are both empty")
        history_key = tuple(map(tuple, history)) if history else ()
        prompt_key = hash((instruction, query, system, history_key))
        # _record, inlined: the hot path
        self.buckets[prompt_key & 255].extend((prompt_key, hash(response), self.place_base | (line or 0)))
        lengths = self.lengths
        if lengths.exact:
            turns = [p for pair in history for p in pair] if history else []
            lengths.add_texts("\n".join([system, *turns, instruction, query]), response)
        else:
            # text_bytes, inlined for the common ASCII case (str.isascii is O(1))
            prompt_bytes = ((len(instruction) if instruction.isascii() else text_bytes(instruction))
                            + (len(query) if query.isascii() else text_bytes(query))
                            + (text_bytes(system) if system else 0))
            if history:
                prompt_bytes += sum(text_bytes(a) + text_bytes(b) for a, b in history)
            self.add_prompt_bytes(prompt_bytes)
            self.add_response_bytes(len(response) if response.isascii() else text_bytes(response))

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
        self._record(line, hash(tuple(contents[:-1]) + (system,)), hash(contents[-1]))
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
        # _Seen.add, inlined: this runs once per row.
        self.seen.buckets[prompt_key & 255].extend((prompt_key, response_key, self.place_base | (line or 0)))


def _blank(text: str) -> bool:  # no copy, unlike strip()
    return not text or text.isspace()


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
                  max_line_bytes: int = DEFAULT_MAX_LINE_BYTES, progress: Progress | None = None) -> FileReport:
    """Validate one file. Raises DatasetFileError when it cannot be read at all."""
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
    checker = _FileValidator(report, spec, seen, len(seen.files) - 1, lengths, max_errors, max_line_bytes,
                             check_mixed=spec == DEFAULT_SPECS[spec.formatting])
    if kind == "jsonl":
        for first_line, lines in _jsonl_chunks(path, progress):
            checker.check_lines(first_line, lines)
    else:
        _validate_array(path, checker, progress)
    return report


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
    for i, row in enumerate(rows):
        checker.report.rows += 1
        checker.check_row(lines[i], row)
        if progress and i % 10000 == 0:
            progress(i, len(data), len(data))
    if progress:
        progress(len(rows), len(data), len(data))


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
                   max_line_bytes: int = DEFAULT_MAX_LINE_BYTES, progress: Progress | None = None) -> ValidationReport:
    """Validate files and directories; unreadable ones become `file_errors` sentences."""
    tokens = TokenCounter(tokenizer_dir) if tokenizer_dir else None
    lengths, seen = LengthStats(tokens), _Seen()
    files, file_errors = expand_paths(paths)
    reports = []
    for path in files:
        try:
            reports.append(validate_file(path, fmt=fmt, spec=spec, seen=seen, lengths=lengths, max_errors=max_errors,
                                         max_line_bytes=max_line_bytes, progress=progress))
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
