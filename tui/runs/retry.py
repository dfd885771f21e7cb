"""`sft-tui retry RUN_DIR --fix oom`: the next plan after an out-of-memory run, as a new run
directory beside the old one (`<run-id>-retry<N>`), whose plan.json records which run it follows.

The request is rebuilt from the old plan.json: the same hardware, model, dataset files, recipe
and your --set values, plus the planner's `oom_fix` for the settings that drive memory.

When the old run saved a checkpoint, the retry resumes from its newest one: plan.json's
`follows.checkpoint` becomes train.yaml's `resume_from_checkpoint`. A micro-batch halved with the
accumulation doubled keeps the effective batch, so the step count, the learning-rate schedule and
the checkpoint's global step all still hold. transformers (5.x, Trainer.train) restores the
checkpoint's train_batch_size only with auto_find_batch_size; otherwise it keeps the new
per_device_train_batch_size and only warns that it differs from trainer_state.json's
(compare_trainer_and_checkpoint_args), and it skips global_step x gradient_accumulation_steps
micro-batches of the new size: the same rows as the old run trained on.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from tui.bundle.replan import earlier_choices, request_from_spec
from tui.bundle.spec import BundleError, LaunchOptions, load_spec, make_spec
from tui.bundle.write import write_bundle
from tui.common.errors import SftTuiError
from tui.plan.fitting import oom_fix
from tui.plan.planner import plan


class RetryError(SftTuiError):
    """No retry can be made; one sentence."""


@dataclass
class Retry:
    run_dir: Path
    follows: str
    changes: dict  # key -> (old, new)
    why: list[str]
    fits: bool
    per_device_gib: float
    resumes: dict | None = None  # {checkpoint, step, total_steps} of the old run, or None: starts over


@dataclass
class Checkpoint:
    path: Path
    step: int
    total_steps: int | None


def newest_checkpoint(output_dir: Path | None) -> Checkpoint | None:
    """The output directory's newest complete checkpoint-N (by N, with its trainer_state.json,
    which transformers writes last), or None."""
    if output_dir is None or not output_dir.is_dir():
        return None
    found = []
    for path in output_dir.glob("checkpoint-*"):
        if re.fullmatch(r"checkpoint-\d+", path.name) and (path / "trainer_state.json").is_file():
            found.append(path)
    for path in sorted(found, key=lambda p: int(p.name.split("-")[1]), reverse=True):
        try:
            state = json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        step = state.get("global_step") if isinstance(state, dict) else None
        total = state.get("max_steps")
        return Checkpoint(path.resolve(), int(step) if isinstance(step, int) else int(path.name.split("-")[1]),
                          total if isinstance(total, int) and total > 0 else None)
    return None


def checkpoint_to_resume(run_dir: Path, spec: dict) -> Checkpoint | None:
    """The run's newest checkpoint; for a retry that saved none yet, the one it resumed from."""
    from tui.runs.lifecycle import output_dir_of

    own = newest_checkpoint(output_dir_of(run_dir))
    if own is not None:
        return own
    follows = spec.get("follows") or {}
    # Relative to the run directory (run_sft.sh runs from there); an older bundle's is absolute.
    earlier = (Path(run_dir) / follows["checkpoint"]).resolve() if follows.get("checkpoint") else None
    if earlier is not None and (earlier / "trainer_state.json").is_file():
        return Checkpoint(earlier, int(follows.get("step") or earlier.name.split("-")[-1]), follows.get("total_steps"))
    return None


OOM_TAIL_LINES = 2000  # an OOM traceback is at the end of the log


def ran_out_of_memory(run_dir: Path) -> bool:
    """The run's log shows an out-of-memory error (what the follower reports as its `oom` event)."""
    from tui.runs.follower import Follower
    from tui.runs.logfiles import tail_offset

    log = run_dir / "train.log"
    if not log.is_file():
        return False
    follower = Follower(run_dir, None, tail_offset(log, OOM_TAIL_LINES))
    follower.poll()
    return follower.oom is not None


def next_run_id(run_dir: Path) -> str:
    base = run_dir.name.split("-retry")[0]
    n = 1
    while (run_dir.parent / f"{base}-retry{n}").exists():
        n += 1
    return f"{base}-retry{n}"


def retry_after_oom(run_dir: Path) -> Retry:
    from tui.runs.lifecycle import run_status

    run_dir = Path(run_dir).resolve()
    try:
        spec = load_spec(run_dir / "plan.json")
    except BundleError as err:
        raise RetryError(str(err)) from None
    if not ran_out_of_memory(run_dir):
        status = run_status(run_dir).status
        raise RetryError(f"{run_dir.name} did not run out of memory (it is {status}, and its train.log shows no "
                         f"out-of-memory error): `--fix oom` is for a run that did; to change settings, export again "
                         f"with `sft-tui export --from {run_dir / 'plan.json'} --set KEY=VALUE`")
    settings = spec["plan"]["settings"]
    hardware = spec["hardware"]
    request, report = request_from_spec(spec)
    fix = oom_fix(settings, all(d.bitsandbytes for d in request.devices), spec["run_id"])
    if fix is None:
        raise RetryError("nothing left to shrink (one row per step, 4-bit or full fine-tuning, cutoff 256): "
                         "train on a GPU with more memory, or on more GPUs with DeepSpeed ZeRO-3 (--gpus N)")
    reasons = spec["plan"]["reasons"]
    request.fixes = {key: (value, reasons[key]["text"]) for key, value in earlier_choices(spec, "retry").items()} | fix
    new_plan = plan(request)
    launch = {k: v for k, v in spec["launch"].items() if k in LaunchOptions.__dataclass_fields__}
    out_root = run_dir.parent.parent  # where the run is now, not where it was exported
    new_spec = make_spec(new_plan, request, report, LaunchOptions(**launch), out_root, next_run_id(run_dir),
                         hardware_name=hardware["name"])
    new_spec["follows"] = {"run_id": spec["run_id"], "run_dir": str(run_dir), "reason": "oom"}
    checkpoint = checkpoint_to_resume(run_dir, spec)
    resumes = None
    if checkpoint is not None:
        # Relative to the new run directory (runs/<new-id>/), which run_sft.sh runs from: the pair of runs moves together.
        relative = os.path.relpath(checkpoint.path.absolute(), Path(new_spec["paths"]["run_dir"]))
        resumes = {"checkpoint": relative, "step": checkpoint.step, "total_steps": checkpoint.total_steps}
        new_spec["follows"] |= resumes
        resumes = resumes | {"checkpoint": str(checkpoint.path)}  # said to the user as a path on this machine
    written = write_bundle(new_spec)
    changes = {key: (settings.get(key), new_plan.settings.get(key)) for key in new_plan.settings
               if settings.get(key) != new_plan.settings.get(key)}
    return Retry(written.run_dir, spec["run_id"], changes, [why for _, why in fix.values()], new_plan.fits,
                 new_plan.estimate.per_device_gib, resumes)


def resume_sentence(retry: Retry) -> str:
    """'resumes from checkpoint-6 of run X at step 6 of 12', or that it starts over."""
    if not retry.resumes:
        return f"starts over: run {retry.follows} saved no checkpoint"
    of = f" of {retry.resumes['total_steps']}" if retry.resumes.get("total_steps") else ""
    return (f"resumes from {Path(retry.resumes['checkpoint']).name} of run {retry.follows} at step "
            f"{retry.resumes['step']}{of} ({retry.resumes['checkpoint']})")
