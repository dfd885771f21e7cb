"""A JSON array read row by row, tolerantly: what can be recovered from a `.json` dataset that
does not parse. LLaMA-Factory loads none of such a file; this reads it object by object, and where
an object does not parse, records where (line, column, why) and resyncs at the next row: the next
object that starts a line at the column the rows start at (a pretty-printed file), else the next
`{` after a comma (a one-line file) whose keys are a row's. Each row keeps its span of the text, so
a cleaned copy holds the rows' own text. Values are orjson's, as in the fast path."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

import orjson

_WHITESPACE = re.compile(r"[ \t\n\r]*")


_AFTER_COMMA = re.compile(r"[,\[][ \t\n\r]*(\{)")


# The json module's messages in a user's words.
_SAID = {
    "Invalid control character at": "a string cut off by a line break",
    "Unterminated string starting at": "a string that never ends",
    "Expecting ',' delimiter": "expected a comma",
    "Expecting ':' delimiter": "expected a colon after the key",
    "Expecting property name enclosed in double quotes": "expected a key in double quotes",
    "Expecting value": "expected a value",
}


def _no_constants(name: str):
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_constant=_no_constants)


@dataclass
class Break:
    """Where the array stops being JSON: the first one is where LLaMA-Factory fails."""

    line: int
    column: int
    message: str
    lost_row: bool  # text was skipped to resync (a row lost), not only a missing comma


@dataclass
class ArrayRead:
    rows: list = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # the line each row starts on
    spans: list[tuple[int, int]] = field(default_factory=list)  # each row's text: text[start:end]
    breaks: list[Break] = field(default_factory=list)
    text: str = ""

    @property
    def lost_rows(self) -> int:
        return sum(b.lost_row for b in self.breaks)


class _Reader:
    def __init__(self, text: str, limit: int | None):
        self.text, self.limit, self.out = text, limit, ArrayRead(text=text)
        self.line_at, self.line = 0, 1  # the line of position line_at, counted on as positions grow
        self.column = 0  # the column the rows start at
        self.row_start: re.Pattern | None = None  # an object starting a line at that column
        self.keys: set = set()  # the keys of rows read so far, to tell a row from an object inside one

    def line_of(self, pos: int) -> int:
        if pos < self.line_at:
            return self.text.count("\n", 0, pos) + 1
        self.line += self.text.count("\n", self.line_at, pos)
        self.line_at = pos
        return self.line

    def column_of(self, pos: int) -> int:
        return pos - (self.text.rfind("\n", 0, pos) + 1)

    def skip(self, pos: int) -> int:
        match = _WHITESPACE.match(self.text, pos)
        assert match is not None  # a \s* pattern matches everywhere, if only the empty text
        return match.end()

    def add_break(self, pos: int, message: str, lost_row: bool) -> None:
        self.out.breaks.append(Break(self.line_of(pos), self.column_of(pos) + 1, message, lost_row))

    def read(self) -> ArrayRead:
        text = self.text
        pos = self.skip(0)
        if text[pos:pos + 1] != "[":
            self.add_break(pos, "a .json dataset must be an array of rows", True)
            return self.out
        pos = self.skip(pos + 1)
        if text[pos:pos + 1] == "]":
            pos = self.skip(pos + 1)
            if pos < len(text):
                self.add_break(pos, "text after the end of the array", False)
            return self.out
        self.column = self.column_of(pos)
        while pos < len(text) and (self.limit is None or len(self.out.rows) < self.limit):
            start = pos
            try:
                row, end = self.element(pos)
            except ValueError as err:
                message, where = getattr(err, "msg", str(err)), getattr(err, "pos", pos)
                if message == "Invalid control character at" and text[where:where + 1] not in "\r\n":
                    message = "a control character inside a string (write it as an escape, such as \\t)"
                self.add_break(where, _SAID.get(message, message), True)
                pos = self.resync(max(where, start + 1))
                continue
            self.take(row, start, end)
            pos = self.skip(end)
            token = text[pos:pos + 1]
            if token == ",":
                pos = self.skip(pos + 1)
            elif token == "]":
                pos = self.skip(pos + 1)
                if pos < len(text):
                    self.add_break(pos, "text after the end of the array", False)
                    pos = self.resync(pos)
                else:
                    return self.out
            elif token == "":
                self.add_break(pos, "the file ends before the array does (no closing ])", False)
            elif token == "{":
                self.add_break(pos, "expected a comma between rows", False)
            else:
                self.add_break(pos, "expected a comma or the end of the array", True)
                pos = self.resync(pos)
        return self.out

    def element(self, pos: int):
        _, end = _DECODER.raw_decode(self.text, pos)
        try:
            return orjson.loads(self.text[pos:end]), end  # orjson's values, as the fast path has them
        except orjson.JSONDecodeError as err:
            raise ValueError(str(err)) from None

    def take(self, row, start: int, end: int) -> None:
        out = self.out
        out.rows.append(row)
        out.lines.append(self.line_of(start))
        out.spans.append((start, end))
        if type(row) is dict and len(self.keys) < 64:
            self.keys.update(row)

    def resync(self, pos: int) -> int:
        """The start of the next row after `pos`, or the end of the text: an object that starts a
        line at the rows' column, else one after a comma; one that parses must share a key with
        the rows read so far (an object inside a row does not), one that does not parse is taken:
        it is a break of its own."""
        if self.row_start is None:
            self.row_start = re.compile(rf"^[ \t,\[]{{{self.column}}}\{{", re.MULTILINE)
        back = pos  # a candidate's match begins before its brace: at its line's start, at its comma
        while back > 0 and self.text[back - 1] in " \t\n\r":
            back -= 1
        back = min(back - 1, self.text.rfind("\n", 0, pos) + 1) if back > 0 else 0
        for candidates in (self.row_start.finditer(self.text, back), _AFTER_COMMA.finditer(self.text, back)):
            for match in candidates:
                start = match.end() - 1
                if start < pos:
                    continue
                try:
                    row, _ = _DECODER.raw_decode(self.text, start)
                except ValueError:
                    return start
                if not self.keys or (type(row) is dict and not self.keys.isdisjoint(row)):
                    return start
        return len(self.text)


def read_array(text: str, limit: int | None = None) -> ArrayRead:
    """The rows of the JSON array `text` (at most `limit`), read object by object: every row that
    parses, with its line and span, and every place it does not (breaks)."""
    return _Reader(text, limit).read()


def array_text(text: str, spans: list[tuple[int, int]]) -> str:
    """A JSON array of the rows at `spans` of `text`, each in its own text, one row after another
    as json.dump(indent=2) writes them."""
    if not spans:
        return "[]\n"
    return "[\n  " + ",\n  ".join(text[start:end] for start, end in spans) + "\n]\n"
