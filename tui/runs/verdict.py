"""Which fix a run's own files call for (`sft-tui retry --fix`), read as the monitor reads them
(tui.runs.follower, the whole train.log and trainer_log.jsonl) with its status (tui.runs.lifecycle).

In this order, the first that holds:
- oom: an out-of-memory error (CUDA, HIP, MPS) in the log;
- host-oom: killed with SIGKILL (exit code 137, or torchrun's "Signal 9 (SIGKILL)" for a worker, or
  PyTorch's "DataLoader worker ... is killed by signal: Killed") with no GPU out-of-memory error: the
  kernel's out-of-memory killer, for want of host RAM (which a log cannot prove: sft-tui stop's
  SIGKILL is told apart by state.json, a `kill -9` by hand is not);
- nan: the loss or the gradient norm went NaN (or inf);
- diverged: the loss spiked or the gradient norm exploded (tui.runs.health's loss_spike,
  grad_norm_exploding), without a NaN;
  (a run stopped or vanished after it too: stopped because the monitor said so);
- none: anything else, with the monitor's sentence for it: a data error (a missing file, a column
  the rows lack), a setup error, a traceback (a bad template, user code), a loss of exactly 0, an
  unknown exit, a run never started, stopped, still running or vanished, or one that finished well.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from tui.runs.follower import Follower
from tui.runs.lifecycle import resumed_at_of, run_status
from tui.runs.logfiles import tail_offset
from tui.runs.watch import OPEN_AT_TAIL_BYTES, TAIL_LINES

FIXES = ("oom", "host-oom", "nan", "diverged")
DIVERGED = ("loss_spike", "grad_norm_exploding")
SIGKILL_EXIT = 128 + 9
# torchrun's report of a worker killed with SIGKILL; a DataLoader worker killed (the trainer fails on it)
KILLED = re.compile(r"Signal 9 \(SIGKILL\)|exitcode\s*:\s*-9\b|is killed by signal: Killed")


@dataclass
class Verdict:
    status: str
    fix: str | None  # one of FIXES, or None: no sound fix
    diagnosis: str = ""  # what the run's files say, a clause: "it ran out of GPU memory", "the loss went NaN at step 3"
    advice: str = ""  # for a run without a fix: what to do instead
    bad_step: int | None = None  # nan, diverged: the first logged step whose numbers were bad
    bad_what: str = ""  # "the loss went NaN"
    good_step: int = 0  # the last logged step before it whose numbers were good (0: none)
    resumed_at: int | None = None  # the checkpoint step the run itself resumed from
    exit_code: int | None = None


def _first_lines(sentence: str) -> str:
    """A sentence as a clause inside another: no full stop at its end."""
    return sentence.rstrip(". ")


def read_verdict(run_dir: Path) -> Verdict:
    run_dir = Path(run_dir)
    status = run_status(run_dir)
    state, code = status.status, status.exit_code
    if state == "new" and not (run_dir / "train.log").is_file():  # a copied run directory has no run.pid: its log says
        return Verdict(state, None)
    if state == "running":
        return Verdict(state, None, f"it is still running (pid {status.pid})",
                       f"stop it first (sft-tui stop {run_dir}), then retry it")
    follower, events = _read_logs(run_dir, Path(status.output_dir) if status.output_dir else None)
    if follower.oom is not None:
        tried = f" (tried to allocate {follower.oom['tried_to_allocate']})" if "tried_to_allocate" in follower.oom else ""
        return Verdict(state, "oom", f"it ran out of GPU memory{tried}", exit_code=code)
    failed = state == "failed" or (state == "new" and code not in (None, 0))  # new: a copy without its run.pid
    killed = code == SIGKILL_EXIT or (code not in (None, 0) and any(KILLED.search(x) for x in follower.recent))
    if failed and killed:
        return Verdict(state, "host-oom", f"it was killed with SIGKILL (exit {code}) and its log shows no GPU out-of-memory "
                       "error: the kernel's out-of-memory killer, for want of host RAM", exit_code=code)
    if state == "failed" and status.exit_reason:
        return Verdict(state, None, f"it failed before training: {_first_lines(status.exit_reason)}", exit_code=code)
    health = [e for e in events if e.kind == "health"]
    bad = [e for e in health if e.data["diagnosis"] in ("nan_loss", *DIVERGED)]
    if bad:
        first = min(bad, key=lambda e: e.data["step"])
        nan = next((e for e in bad if e.data["diagnosis"] == "nan_loss"), None)
        step = first.data["step"]
        logged = [e.data["current_steps"] for e in events if e.kind == "metrics" and not e.data.get("final")
                  and isinstance(e.data.get("current_steps"), int)]
        verdict = Verdict(state, "nan" if nan else "diverged", _what_went_bad(first), bad_step=step,
                          bad_what=_what_went_bad(first), good_step=max((s for s in logged if s < step), default=0),
                          resumed_at=resumed_at_of(run_dir), exit_code=code)
        if nan and nan is not first:
            verdict.diagnosis += f" (and went NaN at step {nan.data['step']})"
        return verdict
    if state == "stopped":
        return Verdict(state, None, "it was stopped (sft-tui stop)", f"continue it with `sft-tui run {run_dir} --resume`")
    if state == "vanished":
        return Verdict(state, None, "it vanished: the process is gone without an exit code (killed, or the machine "
                       "restarted)", f"continue it with `sft-tui run {run_dir} --resume`")
    if failed:
        end = follower.failure(code if code is not None else 1)
        return Verdict(state, None, f"it failed: {_first_lines(end.text)}", _advice(end.data.get("cause")), exit_code=code)
    troubled = [e for e in health if e.data["diagnosis"] in ("zero_loss", "loss_flat", "overfitting")]
    if troubled:
        return Verdict(state, None, _first_lines(troubled[0].text), exit_code=code)
    return Verdict(state, None, exit_code=code)


def _read_logs(run_dir: Path, output_dir: Path | None) -> tuple[Follower, list]:
    """The follower after the run's logs, and the events a verdict needs (health, metrics; not every
    line). A train.log over OPEN_AT_TAIL_BYTES is read as the monitor opens it, from its last lines
    (the numbers are in trainer_log.jsonl), after a scan of the part before them for the console's
    metric dicts: the grad_norm that alone shows a NaN under transformers' logging_nan_inf_filter."""
    log = run_dir / "train.log"
    size = log.stat().st_size if log.is_file() else 0
    offset = tail_offset(log, TAIL_LINES) if size > OPEN_AT_TAIL_BYTES else 0
    follower = Follower(run_dir, output_dir, offset)
    if not log.is_file():
        follower.started = True  # `run_sft.sh --foreground` by hand prints to its terminal: trainer_log.jsonl is all there is
    kept: list = []

    def keep(batch) -> None:
        kept.extend(e for e in batch if e.kind in ("health", "metrics"))

    if offset:
        with open(log, "rb") as head:
            while head.tell() < offset and (line := head.readline()):
                if b"grad_norm" in line:
                    for piece in line.split(b"\r"):  # tqdm's bars end in carriage returns
                        if piece.lstrip().startswith(b"{'"):
                            keep(follower._console_metrics(piece.decode("utf-8", "replace").strip()))
    while batch := follower.poll():
        keep(batch)
    return follower, kept


def _what_went_bad(event) -> str:
    name, step = event.data["diagnosis"], event.data["step"]
    if name == "nan_loss":
        word = "NaN" if "NaN" in event.text.split(" at step")[0] else "inf"
        what = "the loss" if event.text.startswith("the loss") else "the gradient norm"
        return f"{what} went {word} at step {step}"
    if name == "loss_spike":
        return f"the loss spiked at step {step}"
    return f"the gradient norm exploded at step {step}"


def _advice(cause: str | None) -> str:
    if cause in ("data", "setup"):
        return ""  # the sentence says what to do
    return {"exception": "read the traceback in train.log: no change of settings is known to fix it"}.get(
        cause or "", "read train.log to see why it ended")
