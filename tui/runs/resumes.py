"""Where a run resumed (`sft-tui run --resume`, or a retry from a checkpoint), for the follower.

train.log holds the latest run's console only (run_sft.sh rewrites it, and says "Resuming from
.../checkpoint-N" on its first line); trainer_log.jsonl keeps the rows of every run into the output
directory. A row whose step or elapsed time goes back begins a resumed run: its steps since the resume
set the rate, and the rows before it were an earlier run's, on that run's clock.
"""

from __future__ import annotations

import re
from pathlib import Path

# Where a --resume began: the Trainer's banner (transformers 5, then 4), or run_sft.sh's first line.
RESUMED_AT = re.compile(r"(?:Resuming training from checkpoint with epoch \S+ and global step|Continuing training "
                        r"from global step|^Resuming from \S*checkpoint-)\s*(\d+)")


def remaining_after(step: int, total: int | None, elapsed: float | None, remaining: float | None,
                    resumed_at: int | None) -> float | None:
    """The time left. After --resume, LLaMA-Factory's remaining_time (and tqdm's) divide the time
    since the resume by every step, those before it included, as if they had cost nothing: at step
    2330/10000 it says 0:00:17 with minutes left. The steps since the resume set the rate."""
    if resumed_at is None or not elapsed or not total or step <= resumed_at:
        return remaining
    return (total - step) * elapsed / (step - resumed_at)


def resumed_at_in(lines) -> int | None:
    """The step a --resume began at, from the log's lines (run_sft.sh's first, or the Trainer's banner)."""
    for line in lines:
        if match := RESUMED_AT.search(line):
            return int(match.group(1))
    return None


def resumed_text(at: int | None, step: int, trained_up_to: int | None = None) -> str:
    """'resumed from checkpoint-20 at step 20 (steps 21-29 are trained again)'."""
    text = f"resumed from checkpoint-{at} at step {at}" if at is not None else f"resumed at step {step}"
    if at is not None and trained_up_to is not None and trained_up_to > at:
        text += f" (steps {at + 1}-{trained_up_to} are trained again)"
    return text


class Resumes:
    """The resume the rows being read belong to. `console_at`: what train.log says; `segment`: the last
    trainer_log.jsonl row's (step, elapsed)."""

    def __init__(self, output_dir: Path | None):
        self.output_dir = output_dir
        self.console_at: int | None = None
        self.segment: tuple[int, float | None] | None = None

    def console_line(self, line: str) -> int | None:
        if match := RESUMED_AT.search(line):
            self.console_at = int(match.group(1))
            return self.console_at
        return None

    def jsonl_row(self, step: int, elapsed: float | None) -> tuple[int | None, str] | None:
        """(the checkpoint step, the sentence) when this row begins a resumed run, else None."""
        last, self.segment = self.segment, (step, elapsed)
        if last is None:  # the first row: the resumed run's rows alone, when they start past the resume
            at = self.console_at
            return (at, resumed_text(at, step)) if at is not None and at < step else None
        if not (step < last[0] or (elapsed is not None and last[1] is not None and elapsed < last[1])):
            return None
        at = self.console_at
        if at is None or at >= step:
            at = self.checkpoint_before(step)
        return at, resumed_text(at, step, last[0])

    def checkpoint_before(self, step: int) -> int | None:
        """The newest checkpoint-N in the output directory before `step`: where a resume without a log
        line of its own began."""
        try:
            found = [int(p.name.split("-")[1]) for p in self.output_dir.glob("checkpoint-*")
                     if p.name.split("-")[1].isdigit()] if self.output_dir else []
        except OSError:
            return None
        return max((n for n in found if n < step), default=None)
