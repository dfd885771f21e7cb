"""Length statistics of a dataset and the `cutoff_len` they recommend.

Lengths are exact token counts when a local tokenizer is given (the `tokenizers` library reads
its `tokenizer.json`), otherwise an approximation from UTF-8 bytes: about 3.5 bytes per token
holds for English, code and Chinese with the BPE vocabularies of Qwen and Llama 3 (a Chinese
character is 3 bytes and ~0.7 tokens), and errs towards more tokens, the safe side for memory.
Counts are kept as histograms (length -> rows), so percentiles are exact and memory stays flat
whatever the number of rows. Chat-template tokens (a dozen or so per turn) are not included.
"""

from __future__ import annotations

import math
import operator
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

BYTES_PER_TOKEN = 3.5  # LengthStats.add_bytes computes ceil(bytes / 3.5) as (2 * bytes + 6) // 7
CUTOFF_MULTIPLE = 256
LLAMAFACTORY_DEFAULT_CUTOFF = 2048  # LLaMA-Factory's own default cutoff_len
PERCENTILES = (50, 90, 95, 99)


def text_bytes(text: str) -> int:
    # str.isascii() is O(1) in CPython, so ASCII text (most rows) costs no encoding.
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


@dataclass
class Histogram:
    counts: Counter = field(default_factory=Counter)

    def add(self, value: int) -> None:
        self.counts[value] += 1

    @property
    def n(self) -> int:
        return sum(self.counts.values())

    def percentile(self, p: float) -> int:
        """Nearest rank: the smallest value with at least p % of rows at or below it."""
        rank = max(1, math.ceil(p / 100 * self.n))
        seen = 0
        for value in sorted(self.counts):
            seen += self.counts[value]
            if seen >= rank:
                return value
        return 0

    def above(self, limit: int) -> int:
        return sum(c for v, c in self.counts.items() if v > limit)

    def summary(self) -> dict:
        if not self.counts:
            return {"min": 0, **{f"p{p}": 0 for p in PERCENTILES}, "max": 0}
        return {
            "min": min(self.counts),
            **{f"p{p}": self.percentile(p) for p in PERCENTILES},
            "max": max(self.counts),
        }


class TokenCounter:
    """Exact token counts with a local tokenizer directory (its tokenizer.json)."""

    def __init__(self, tokenizer_dir: Path):
        try:
            from tokenizers import Tokenizer
        except ImportError:
            from tui.common.packages import pip_install_command

            raise ValueError(
                f"--tokenizer needs the `tokenizers` library: {pip_install_command('tokenizers')}"
            ) from None
        path = Path(tokenizer_dir)
        path = path / "tokenizer.json" if path.is_dir() else path
        if not path.is_file():
            raise ValueError(f"{tokenizer_dir}: no tokenizer.json there")
        try:
            self.tokenizer = Tokenizer.from_file(str(path))
        except Exception as err:
            raise ValueError(f"{path}: not a tokenizer the tokenizers library can read ({err})") from None
        self.path = path

    def count(self, texts: list[str]) -> list[int]:
        encoded = self.tokenizer.encode_batch_fast(texts, add_special_tokens=False)
        return [len(e.ids) for e in encoded]


class LengthStats:
    """Prompt, response and whole-row lengths of valid rows, in tokens (exact or approximate)."""

    BATCH = 2048

    def __init__(self, tokens: TokenCounter | None = None):
        self.tokens = tokens
        self._prompt, self._response, self._row = Histogram(), Histogram(), Histogram()
        self._pending: list[tuple[str, str]] = []  # texts waiting for the tokenizer (exact)
        self._prompt_bytes: list[int] = []  # byte lengths waiting to be counted (approximate)
        self._response_bytes: list[int] = []

    # Reading a histogram first counts what is pending, so no reader can see partial counts.
    @property
    def prompt(self) -> Histogram:
        self.flush()
        return self._prompt

    @property
    def response(self) -> Histogram:
        self.flush()
        return self._response

    @property
    def row(self) -> Histogram:
        self.flush()
        return self._row

    @property
    def exact(self) -> bool:
        return self.tokens is not None

    def add_bytes(self, prompt_bytes: int, response_bytes: int) -> None:
        # Called once per row: two appends; flush() counts a batch of rows at once in C.
        self._prompt_bytes.append(prompt_bytes)
        self._response_bytes.append(response_bytes)

    def add_byte_columns(self, prompt_bytes: list[int], response_bytes: list[int]) -> None:
        """add_bytes for a batch of rows."""
        self._prompt_bytes += prompt_bytes
        self._response_bytes += response_bytes

    def add_texts(self, prompt: str, response: str) -> None:
        self._pending.append((prompt, response))
        if len(self._pending) >= self.BATCH:
            self.flush()

    def flush(self) -> None:
        """Count what is pending. The validator calls it after each chunk of rows, so memory stays
        flat; readers of the histograms call it through the properties above."""
        if self._prompt_bytes:
            # ceil(bytes / 3.5) in integers
            prompts = [(2 * b + 6) // 7 for b in self._prompt_bytes]
            responses = [(2 * b + 6) // 7 for b in self._response_bytes]
            self._count(prompts, responses)
            self._prompt_bytes.clear()
            self._response_bytes.clear()
        if self._pending and self.tokens is not None:  # pending rows exist only with a tokenizer
            self._count(self.tokens.count([p for p, _ in self._pending]), self.tokens.count([r for _, r in self._pending]))
            self._pending.clear()

    def merge(self, other: LengthStats) -> None:
        """Add another's counts: a worker's share of a file."""
        for mine, theirs in ((self.prompt, other.prompt), (self.response, other.response), (self.row, other.row)):
            mine.counts.update(theirs.counts)

    def _count(self, prompts: list[int], responses: list[int]) -> None:
        self._prompt.counts.update(prompts)
        self._response.counts.update(responses)
        self._row.counts.update(map(operator.add, prompts, responses))

    def recommended_cutoff(self) -> dict:
        self.flush()
        p99 = self.row.percentile(99) if self.row.counts else 0
        cutoff = max(CUTOFF_MULTIPLE, math.ceil(p99 / CUTOFF_MULTIPLE) * CUTOFF_MULTIPLE)
        return {
            "cutoff_len": cutoff,
            "covers": "p99 of rows",
            "rows_truncated": self.row.above(cutoff),
            "rows_truncated_at_default_2048": self.row.above(LLAMAFACTORY_DEFAULT_CUTOFF),
        }

    def to_json(self) -> dict:
        self.flush()
        return {
            "unit": "tokens" if self.exact else "approx_tokens",
            "method": f"tokenizer {self.tokens.path}" if self.tokens is not None else f"UTF-8 bytes / {BYTES_PER_TOKEN}",
            "rows_measured": self.row.n,
            "prompt": self.prompt.summary(),
            "response": self.response.summary(),
            "row": self.row.summary(),
        }
