"""Training health: the numbers LLaMA-Factory logs (loss, grad_norm, eval_loss), read as they arrive,
turned into diagnoses: one sentence each with the likely cause and the fix (tui.runs.diagnoses), each
said once per run.

- NaN or inf loss (or a NaN gradient norm: with transformers' logging_nan_inf_filter, its default, a
  NaN loss is logged as the mean of the good ones or 0 and only grad_norm shows it);
- grad_norm exploding: inf, or more than GRAD_NORM_FACTOR x the median of the ones before it;
- a loss spike: more than SPIKE_FACTOR x the median of the last RECENT losses, after the warmup
  (the first WARMUP_FRACTION of the steps, and MIN_POINTS losses);
- a loss of exactly 0 at ZERO_POINTS logged steps in a row, and no NaN (after one, the filter logs 0);
- eval_loss rising at OVERFIT_EVALS evaluations in a row while the training loss fell;
- a flat loss: less than FLAT_CHANGE relative change over the last FLAT_POINTS logged losses, after
  FLAT_AFTER of the steps, and less than FLAT_SINCE_START since the first logged loss.
"""

from __future__ import annotations

import math
from itertools import pairwise
from statistics import median
from typing import Literal, Protocol, TypeGuard

from tui.runs import diagnoses

GRAD_NORM_FACTOR = 100.0
SPIKE_FACTOR = 3.0
RECENT = 10
MIN_POINTS = 5
WARMUP_FRACTION = 0.1
OVERFIT_EVALS = 3
FLAT_POINTS = 10
FLAT_CHANGE = 0.01
FLAT_AFTER = 0.2
FLAT_SINCE_START = 0.05  # and less than this since the first logged loss: a curve that fell and levelled off is fine
ZERO_POINTS = 2  # logged losses of exactly 0 in a row (one can be the NaN filter's, before grad_norm's NaN is read)

# The diagnoses, each a health event's data["diagnosis"] (tui.runs.verdict reads them).
Diagnosis = Literal["nan_loss", "grad_norm_exploding", "loss_spike", "loss_flat", "zero_loss", "overfitting"]


class Say(Protocol):
    """How a check reports a diagnosis: its name, the sentence, and the event's data."""

    def __call__(self, name: Diagnosis, sentence: str, /, **data: object) -> None: ...


def _finite(value: object) -> TypeGuard[float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _bad(value: object) -> TypeGuard[float]:
    return isinstance(value, float) and (math.isnan(value) or math.isinf(value))


class HealthCheck:
    """Feed it every metrics row (`observe`); it returns the diagnoses found, each (name, data, sentence),
    each name at most once."""

    def __init__(self):
        self.said: set[str] = set()
        self.losses: list[tuple[int, float]] = []
        self.grad_norms: list[float] = []
        self.evals: list[tuple[int, float, float | None]] = []  # (step, eval_loss, the train loss then)
        self.went_nan = False
        self.last_step = -1

    def saw_nan(self) -> None:
        """A NaN seen elsewhere (the console's grad_norm): a loss of 0 after it is the NaN filter's."""
        self.went_nan = True

    def observe(self, metrics: dict, total_steps: int | None) -> list[tuple[Diagnosis, dict, str]]:
        step = int(metrics.get("current_steps") or 0)
        found: list[tuple[Diagnosis, dict, str]] = []

        def say(name: Diagnosis, sentence: str, /, **data: object) -> None:
            if name not in self.said:
                self.said.add(name)
                found.append((name, {"diagnosis": name, "step": step, **data}, sentence))

        loss, grad_norm, eval_loss = metrics.get("loss"), metrics.get("grad_norm"), metrics.get("eval_loss")
        if _bad(loss) or (isinstance(grad_norm, float) and math.isnan(grad_norm)):
            self.went_nan = True
            what, value = ("loss", loss) if _bad(loss) else ("gradient norm", grad_norm)
            assert isinstance(value, float)  # the one of the two that is NaN or inf
            say("nan_loss", diagnoses.health_nan(step, what, value), value=str(value))
            return found
        if step <= self.last_step and eval_loss is None:
            return found  # a resumed run's trainer_log.jsonl repeats the steps after the checkpoint
        self.last_step = max(self.last_step, step)
        if isinstance(grad_norm, float) and math.isinf(grad_norm):
            say("grad_norm_exploding", diagnoses.health_grad_norm(step, grad_norm, None), grad_norm=str(grad_norm))
        elif _finite(grad_norm):
            if len(self.grad_norms) >= MIN_POINTS:
                typical = median(self.grad_norms)
                if typical > 0 and grad_norm > GRAD_NORM_FACTOR * typical:
                    say("grad_norm_exploding", diagnoses.health_grad_norm(step, grad_norm, typical),
                        grad_norm=grad_norm, median=typical)
            self.grad_norms.append(grad_norm)
        if _finite(loss):
            self._train_loss(step, float(loss), total_steps, say)
        if _finite(eval_loss):
            self._eval_loss(step, float(eval_loss), say)
        return found

    def _train_loss(self, step: int, loss: float, total: int | None, say: Say) -> None:
        zeros = [value for _, value in self.losses[-(ZERO_POINTS - 1):]] if ZERO_POINTS > 1 else []
        if loss == 0 and not self.went_nan and len(zeros) == ZERO_POINTS - 1 and not any(zeros):
            say("zero_loss", diagnoses.health_zero(step))
        recent = [value for _, value in self.losses[-RECENT:]]
        after_warmup = total and step > WARMUP_FRACTION * total
        if after_warmup and len(recent) >= MIN_POINTS:
            typical = median(recent)
            if typical > 0 and loss > SPIKE_FACTOR * typical:
                say("loss_spike", diagnoses.health_spike(step, loss, typical), loss=loss, median=typical)
        self.losses.append((step, loss))
        last = [value for _, value in self.losses[-FLAT_POINTS:]]
        first = self.losses[0][1]
        if total and step >= FLAT_AFTER * total and len(last) >= FLAT_POINTS and last[0] != 0 and first != 0:
            change = (max(last) - min(last)) / abs(last[0])
            if change < FLAT_CHANGE and abs(loss - first) / abs(first) < FLAT_SINCE_START:
                say("loss_flat", diagnoses.health_flat(step, len(last), first, loss, change), change=change)

    def _eval_loss(self, step: int, eval_loss: float, say: Say) -> None:
        train = median([v for _, v in self.losses[-3:]]) if self.losses else None
        self.evals.append((step, eval_loss, train))
        last = self.evals[-(OVERFIT_EVALS + 1):]
        if len(last) <= OVERFIT_EVALS:
            return
        rising = all(b[1] > a[1] for a, b in pairwise(last))
        falling = last[0][2] is not None and last[-1][2] is not None and last[-1][2] < last[0][2]
        if rising and falling:
            say("overfitting", diagnoses.health_overfitting(step, [e for _, e, _ in last]),
                eval_losses=[e for _, e, _ in last])
