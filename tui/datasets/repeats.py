"""Duplicates and conflicts across every file: each valid row's prompt and response keys
(xxh3, the same in every process, unlike hash()) kept in flat arrays by bucket, and compared
bucket by bucket at the end, so memory stays flat whatever the file size."""

from __future__ import annotations

import heapq
from array import array
from pathlib import Path
from typing import Iterator

from xxhash import xxh3_64_intdigest

from tui.datasets.report import FileReport, Problem

LINE_MASK = (1 << 40) - 1  # a row's place: segment << 40 | line within the segment


def text_key(texts, key: int = 0) -> int:
    """A 64-bit key of a sequence of texts, the same in every process (unlike hash()); each
    text's hash seeds the next one's, so ("ab", "") and ("a", "b") differ, and a key can be
    carried on with more texts. Rows come from orjson, whose strings are valid UTF-8 (it
    rejects lone surrogates), so encode() cannot fail."""
    for text in texts:
        key = xxh3_64_intdigest(text.encode(), key)
    return key


class Seen:
    """Every valid row's prompt key, response key and place, in flat arrays (24 bytes a row,
    not a dict entry's ~110), split in buckets by key (FileChecker appends). Duplicates (same
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
        return file_index, lines_before + (place & LINE_MASK)

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


def add_repeats(reports: list[FileReport], seen: Seen, max_errors: int) -> None:
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
