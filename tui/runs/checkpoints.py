"""A run's checkpoints, for `sft-tui retry`: the newest one, the newest one saved before the first
bad step, and a retry's own copy of one with its learning rate rescaled.

A checkpoint-N folder holds the weights after N optimizer steps; the loss logged at step N+1 is
computed from them. So when the loss (or the gradient norm) first went bad at a logged step, the
weights that last gave a good logged loss at step G are those of checkpoint-(G-1): checkpoint-G and
later may already hold the weights that went bad. The rule: the newest checkpoint at a step below
the last good logged step (or at the step the run itself resumed from, which was good before).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tui.common.errors import SftTuiError

RESCALE_SCRIPT = Path(__file__).parents[1] / "lf" / "rescale_lr.py"
RESCALE_TIMEOUT_S = 1800  # a full fine-tune's optimizer state is read and written once
REWRITTEN = ("scheduler.pt", "optimizer.pt")


class CheckpointError(SftTuiError):
    """A checkpoint could not be copied as asked; one sentence."""


@dataclass
class Checkpoint:
    path: Path
    step: int
    total_steps: int | None


def _read(path: Path) -> Checkpoint | None:
    try:
        state = json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    step = state.get("global_step") if isinstance(state, dict) else None
    total = state.get("max_steps") if isinstance(state, dict) else None
    return Checkpoint(path.resolve(), int(step) if isinstance(step, int) else int(path.name.split("-")[1]),
                      total if isinstance(total, int) and total > 0 else None)


def all_checkpoints(output_dir: Path | None) -> list[Checkpoint]:
    """The output directory's complete checkpoint-N folders (with trainer_state.json, which
    transformers writes last), newest (highest N) first."""
    if output_dir is None or not output_dir.is_dir():
        return []
    found = [p for p in output_dir.glob("checkpoint-*")
             if re.fullmatch(r"checkpoint-\d+", p.name) and (p / "trainer_state.json").is_file()]
    read = (_read(p) for p in sorted(found, key=lambda p: int(p.name.split("-")[1]), reverse=True))
    return [c for c in read if c is not None]


def newest_checkpoint(output_dir: Path | None) -> Checkpoint | None:
    found = all_checkpoints(output_dir)
    return found[0] if found else None


def followed_checkpoint(run_dir: Path, spec: dict) -> Checkpoint | None:
    """For a retry, the checkpoint it resumed from (plan.json's follows.checkpoint)."""
    follows = spec.get("follows") or {}
    # Relative to the run directory (run_sft.sh runs from there); an older bundle's is absolute.
    earlier = (Path(run_dir) / follows["checkpoint"]).resolve() if follows.get("checkpoint") else None
    if earlier is not None and (earlier / "trainer_state.json").is_file():
        return Checkpoint(earlier, int(follows.get("step") or earlier.name.split("-")[-1]), follows.get("total_steps"))
    return None


def checkpoint_to_resume(run_dir: Path, spec: dict) -> Checkpoint | None:
    """The run's newest checkpoint; for a retry that saved none yet, the one it resumed from."""
    from tui.runs.lifecycle import output_dir_of

    return newest_checkpoint(output_dir_of(run_dir)) or followed_checkpoint(run_dir, spec)


def checkpoint_before(run_dir: Path, spec: dict, good_step: int, bad_step: int,
                      resumed_at: int | None) -> tuple[Checkpoint | None, list[Checkpoint]]:
    """(the newest checkpoint whose weights gave a good loss: step < good_step, or the step the run
    resumed from; the newer ones below bad_step, passed over), see the module's rule."""
    from tui.runs.lifecycle import output_dir_of

    candidates = all_checkpoints(output_dir_of(run_dir))
    followed = followed_checkpoint(run_dir, spec)
    if followed is not None and all(c.path != followed.path for c in candidates):
        candidates = sorted([*candidates, followed], key=lambda c: c.step, reverse=True)
    sound = [c for c in candidates if c.step < good_step or (resumed_at is not None and c.step == resumed_at)]
    chosen = sound[0] if sound else None
    passed = [c for c in candidates if c.step < bad_step and (chosen is None or c.step > chosen.step)]
    return chosen, passed


def copy_with_learning_rate(source: Path, target: Path, factor: float, python: list[str]) -> dict:
    """target: a copy of the checkpoint `source` whose scheduler and optimizer state have every
    learning rate multiplied by `factor` (tui/lf/rescale_lr.py, run by the training environment's
    `python`, since sft-tui never imports torch). The other files are hard links where the file
    system allows (nothing rewrites a checkpoint's files in place; they are never opened for
    writing here), else copies. `source` is only read. Raises CheckpointError, leaving no target."""
    if target.exists():
        raise CheckpointError(f"{target} exists already: remove it, or retry into a new run")
    try:
        for path in sorted(source.rglob("*")):
            rel = path.relative_to(source)
            if path.is_dir():
                (target / rel).mkdir(parents=True, exist_ok=True)
            elif rel.as_posix() not in REWRITTEN:
                (target / rel).parent.mkdir(parents=True, exist_ok=True)
                try:
                    os.link(path, target / rel)
                except OSError:
                    shutil.copy2(path, target / rel)
        done = subprocess.run([*python, "-c", RESCALE_SCRIPT.read_text(), str(source), str(target), repr(factor)],
                              capture_output=True, text=True, timeout=RESCALE_TIMEOUT_S, cwd=target,
                              env=dict(os.environ, TOKENIZERS_PARALLELISM="false"))
    except (OSError, subprocess.TimeoutExpired) as err:
        shutil.rmtree(target, ignore_errors=True)
        raise CheckpointError(f"{source.name} could not be copied with its learning rate rescaled ({err})") from None
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    try:
        return json.loads(last)
    except ValueError:
        shutil.rmtree(target, ignore_errors=True)
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        if "No module named 'torch'" in done.stderr:
            tail = "torch is not installed in it"
        raise CheckpointError(f"the training environment's python ({' '.join(python)}) could not rescale the learning "
                              f"rate saved in {source.name}'s scheduler and optimizer state: {tail}; run the retry "
                              "where the run trained, or name that python's environment with export --env") from None
