"""The row checker: each row of one file (or one byte range of it) against the JSON
Schema of its format and the checks a schema cannot express (role order, message count, empty
prompts and responses), counting lengths and recording each valid row's keys for repeats.
The rules follow LLaMA-Factory 0.9.5's own converters (llamafactory/data/converter.py)."""

from __future__ import annotations

from array import array
from collections import deque
from itertools import compress, count, repeat
from operator import add, and_, itemgetter, not_, or_

import orjson
from xxhash import xxh3_64_intdigest

from tui.common.schemas import json_pointer, validator
from tui.datasets.formats import (
    DEFAULT_SPECS,
    MEDIA_COLUMNS,
    OBSERVATION,
    PROMPT_ROLES,
    RESPONSE_ROLES,
    ROLE_OF_TAG,
    SYSTEM,
    USER,
    FileNames,
    FormatSpec,
    canonical_alpaca,
    canonical_messages,
    row_format,
)
from tui.datasets.lengths import LengthStats, text_bytes
from tui.datasets.reading import json_error_text
from tui.datasets.repeats import Seen, text_key
from tui.datasets.report import FileReport, Problem


class FileChecker:
    def __init__(self, report: FileReport, spec: FormatSpec, seen: Seen, segment: int,
                 lengths: LengthStats, max_errors: int, max_line_bytes: int):
        self.report, self.spec, self.seen = report, spec, seen
        self.lengths, self.max_errors, self.max_line_bytes = lengths, max_errors, max_line_bytes
        self.custom = spec != DEFAULT_SPECS[spec.formatting]
        self.plain_alpaca = spec.formatting == "alpaca" and not self.custom
        self.place_base = segment << 40
        self.buckets = seen.buckets
        # Valid alpaca rows waiting for _count_alpaca, and their lines; see begin_batch for the rest.
        self.alpaca_rows: list[dict] = []
        self.alpaca_lines: list[int | None] = []
        self.listing, self.batch_start = True, 0
        self.alpaca_names = canonical_alpaca({}, spec)[1] if spec.formatting == "alpaca" else None
        # Standard keys not yet seen in a valid row; checked until all are found.
        self.unseen = set() if self.custom else set(spec.columns.values())
        # Media columns LLaMA-Factory reads (an entry's own names; the standard ones without an entry),
        # and the folder relative paths are looked for in (media_dir defaults to the dataset's folder).
        # (A custom alpaca row is checked under the standard names: canonical_alpaca carries them.)
        standard = not self.custom or spec.formatting == "alpaca"
        self.media_keys = {kind: kind if standard else spec.columns.get(kind) for kind in MEDIA_COLUMNS
                           if not self.custom or spec.columns.get(kind)}
        self.media_dir = report.path.resolve().parent
        schema_format = "sharegpt" if self.custom and spec.formatting != "alpaca" else spec.formatting
        self.validator = validator(f"dataset-{schema_format}")
        if spec.formatting != "alpaca":
            self.role_of = {spec.tags[t]: role for t, role in ROLE_OF_TAG.items() if spec.tags.get(t)}
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
        self.add(line, "", "invalid_json", f"not valid JSON: {json_error_text(err)}")

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

    def _schema(self, line, instance, names: "FileNames | None" = None) -> bool:
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
            row, names = canonical_alpaca(row, self.spec)
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
        if not keys.isdisjoint(self.media_keys.values()):
            for row, line in zip(rows, lines):
                self._media(line, row)
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
        assert names is not None  # set for every alpaca file
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
            canonical, names = canonical_messages(row, self.spec, self.role_of)
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
        if self.media_keys:
            self._media(line, row)
        turns = list(zip(roles, contents, range(len(roles))))
        for role, content, i in turns:
            if role in RESPONSE_ROLES and _blank(content):
                self.add(line, f"/{messages_key}/{i}/{self.content_key}", "empty_response", f"turn {i} ({messages[i][self.role_key]}) is empty")
        first_user = next((i for role, _, i in turns if role == USER), None)
        if first_user is not None and _blank(contents[first_user]):
            self.add(line, f"/{messages_key}/{first_user}/{self.content_key}", "empty_prompt", "the first user turn is empty")
        system = row.get(self.spec.columns.get("system"), "")
        system = system if isinstance(system, str) else ""
        prompt_parts = [system] + [c for r, c, _ in turns if r not in RESPONSE_ROLES]
        response_parts = [c for r, c, _ in turns if r in RESPONSE_ROLES]
        self._record(line, text_key([*contents[:-1], system]), text_key([contents[-1]]))
        if self.lengths.exact:
            self.lengths.add_texts("\n".join(prompt_parts), "\n".join(response_parts))
        else:
            self.lengths.add_bytes(sum(map(text_bytes, prompt_parts)), sum(map(text_bytes, response_parts)))

    def _media(self, line, row: dict) -> None:
        """Count a valid row's images/videos/audios, and warn of a local file that is not there
        (LLaMA-Factory joins media_dir and the path, else takes the path as given)."""
        for kind, key in self.media_keys.items():
            media = row.get(key)
            if not media:
                continue
            self.report.media_rows[kind] = self.report.media_rows.get(kind, 0) + 1
            items = [media] if isinstance(media, str) else media
            for i, item in enumerate(items):
                for path in ([item] if isinstance(item, str) else item):
                    if "://" in path or path.startswith("data:"):
                        continue  # a URL: fetched when the row is loaded
                    where = self.media_dir / path
                    if not where.is_file():  # an absolute path replaces the folder
                        own = self.spec.columns.get(kind, kind)  # the file's own name in the problem
                        pointer = f"/{own}" if isinstance(media, str) else f"/{own}/{i}"
                        self.add(line, pointer, "missing_media",
                                 f"{kind[:-1]} {path!r} not found (looked for in {self.media_dir})")

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
            expected = PROMPT_ROLES if turn % 2 == 0 else RESPONSE_ROLES
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
