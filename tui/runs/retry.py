"""`sft-tui retry RUN_DIR --fix oom|host-oom|nan|diverged`: the next plan after a run that went
wrong, as a new run directory beside the old one (`<run-id>-retry<N>`), whose plan.json records
which run it follows. Only the fix the run's own files call for (tui.runs.verdict) is made; any
other, and a failure no setting fixes, is refused in one sentence that says what the run has.

The request is rebuilt from the old plan.json: the same hardware, model, dataset files, recipe
and your --set values, plus the fix's settings (each with its reason, kind `retry`):
- oom: `oom_fix` (tui.plan.fitting): halve the micro-batch and double the accumulation, then 4-bit,
  then halve cutoff_len; resumes from the newest checkpoint;
- host-oom: `host_oom_fix` (tui.plan.recovery): fewer tokenizing and data-loading workers; resumes
  from the newest checkpoint;
- nan, diverged: `nan_fix` (tui.plan.recovery): halved learning rate, clipping, bf16 for fp16 on a
  bf16 card; resumes from the newest checkpoint saved before the first bad step
  (tui.runs.checkpoints), through a copy of it in the retry's own output directory whose scheduler
  and optimizer state carry the halved rate: transformers restores the checkpoint's scheduler,
  whose base_lrs would put the old rate back (tui/lf/rescale_lr.py). The old run's files are only read.

The effective batch stays, so the step count, the learning-rate schedule and the checkpoint's
global step all still hold. transformers (5.x, Trainer.train) keeps the new
per_device_train_batch_size and only warns that it differs from trainer_state.json's, and it skips
global_step x gradient_accumulation_steps micro-batches of the new size: the same rows as the old run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from tui.bundle.check import env_python, training_python
from tui.bundle.replan import earlier_choices, request_from_spec
from tui.bundle.spec import BundleError, LaunchOptions, load_spec, make_spec
from tui.bundle.write import write_bundle
from tui.common.errors import SftTuiError
from tui.plan.fitting import oom_fix
from tui.plan.planner import plan
from tui.plan.recovery import host_oom_fix, host_ram_text, nan_fix
from tui.runs.checkpoints import (  # noqa: F401 - callers import these from here too
    Checkpoint,
    CheckpointError,
    checkpoint_before,
    checkpoint_to_resume,
    copy_with_learning_rate,
    newest_checkpoint,
)
from tui.runs.verdict import FIXES, Verdict, read_verdict


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
    fix: str = "oom"
    notes: list[str] = field(default_factory=list)  # lines the output adds: the host-RAM estimate, the rescaled copy


# What each fix is for, said when the run's files show something else.
NOT_IT = {
    "oom": "did not run out of memory (it is {status}, and its train.log shows no out-of-memory error)",
    "host-oom": "was not killed for want of host RAM (it is {status}{code}, and a run the kernel's out-of-memory "
                "killer ends exits 137, with no GPU out-of-memory error in its log)",
    "nan": "did not go NaN (it is {status}, and its logs show no NaN or inf loss or gradient norm)",
    "diverged": "did not diverge (it is {status}, and its logs show no loss spike or exploding gradient norm)",
}


def next_run_id(run_dir: Path) -> str:
    base = run_dir.name.split("-retry")[0]
    n = 1
    while (run_dir.parent / f"{base}-retry{n}").exists():
        n += 1
    return f"{base}-retry{n}"


def refusal(run_dir: Path, fix: str, verdict: Verdict) -> str:
    """The one sentence for `--fix FIX` on a run whose files call for another fix, or for none."""
    if verdict.status == "running":
        return f"{run_dir.name} {verdict.diagnosis}: {verdict.advice}"
    code = f", exit code {verdict.exit_code}" if verdict.exit_code is not None else ""
    head = f"{run_dir.name} {NOT_IT[fix].format(status=verdict.status, code=code)}: `--fix {fix}` is for a run that did; "
    if verdict.fix:
        return head + f"{verdict.diagnosis}, which `--fix {verdict.fix}` is for: sft-tui retry {run_dir} --fix {verdict.fix}"
    if verdict.diagnosis:
        return head + f"{verdict.diagnosis} (no retry fixes that{': ' + verdict.advice if verdict.advice else ''})"
    return head + f"to change settings, export again with `sft-tui export --from {run_dir / 'plan.json'} --set KEY=VALUE`"


def retry_after_oom(run_dir: Path) -> Retry:
    return retry_run(run_dir, "oom")


def retry_run(run_dir: Path, fix: str) -> Retry:
    if fix not in FIXES:
        raise RetryError(f"--fix {fix} is not a fix sft-tui knows: {', '.join(FIXES)}")
    run_dir = Path(run_dir).resolve()
    try:
        spec = load_spec(run_dir / "plan.json")
    except BundleError as err:
        raise RetryError(str(err)) from None
    verdict = read_verdict(run_dir)
    if verdict.fix != fix:
        raise RetryError(refusal(run_dir, fix, verdict))
    settings = spec["plan"]["settings"]
    request, report = request_from_spec(spec)
    run_id, notes = spec["run_id"], []
    if fix == "oom":
        changes = oom_fix(settings, all(d.bitsandbytes for d in request.devices), run_id)
        if changes is None:
            raise RetryError("nothing left to shrink (one row per step, 4-bit or full fine-tuning, cutoff 256): "
                             "train on a GPU with more memory, or on more GPUs with DeepSpeed ZeRO-3 (--gpus N)")
    elif fix == "host-oom":
        estimate = spec["plan"].get("estimate") or {}
        ram = host_ram_text(estimate.get("host_ram_parts"), estimate.get("host_ram_gib"), estimate.get("host_ram_available_gib"))
        changes = host_oom_fix(settings, run_id)
        if changes is None:
            raise RetryError(f"{run_dir.name} was killed for want of host RAM, and it already tokenizes and loads data "
                             f"in the main process (preprocessing_num_workers and dataloader_num_workers at their "
                             f"minimum), so no worker count is left to halve; its {ram}: train on a machine with more "
                             "RAM, or with fewer GPUs per node (each process loads its own shards)")
        notes.append(f"run {run_id}'s {ram}")
    else:
        changes = nan_fix(settings, all(d.bf16 for d in request.devices), run_id, verdict.bad_what)
        if changes is None:
            raise RetryError(f"{run_dir.name}: {verdict.diagnosis}, but its plan has no learning_rate to halve: set one "
                             f"(`sft-tui export --from {run_dir / 'plan.json'} --set learning_rate=...`)")
    reasons = spec["plan"]["reasons"]
    request.fixes = {key: (value, reasons[key]["text"]) for key, value in earlier_choices(spec, "retry").items()} | changes
    new_plan = plan(request)
    if fix == "host-oom" and new_plan.host_ram is not None:
        notes[-1] += f"; the retry's, with fewer workers: {new_plan.host_ram.total_gib:.1f} GiB"
    launch = {k: v for k, v in spec["launch"].items() if k in LaunchOptions.__dataclass_fields__}
    out_root = run_dir.parent.parent  # where the run is now, not where it was exported
    new_spec = make_spec(new_plan, request, report, LaunchOptions(**launch), out_root, next_run_id(run_dir),
                         hardware_name=spec["hardware"]["name"])
    new_spec["follows"] = {"run_id": run_id, "run_dir": str(run_dir), "reason": fix}
    resumes = None
    passed: list[Checkpoint]  # the checkpoints passed over: saved after the numbers went bad
    if fix in ("oom", "host-oom"):
        checkpoint, passed = checkpoint_to_resume(run_dir, spec), []
    else:
        assert verdict.bad_step is not None  # a nan or diverged verdict names its first bad step
        checkpoint, passed = checkpoint_before(run_dir, spec, verdict.good_step, verdict.bad_step, verdict.resumed_at)
        new_spec["follows"] |= {"bad_step": verdict.bad_step, "bad": verdict.bad_what}
    if checkpoint is not None:
        resume_from = checkpoint.path
        if fix in ("nan", "diverged") and settings.get("learning_rate") != new_plan.settings.get("learning_rate"):
            resume_from = _rescaled_copy(run_dir, checkpoint, spec, new_spec, settings, new_plan.settings)
            notes.append(f"{resume_from.name} copied to {resume_from} with the learning rate in its scheduler and "
                         f"optimizer state rescaled to {new_plan.settings['learning_rate']:g}: resumed as it was, "
                         f"transformers would restore the old rate; run {run_id}'s own files are unchanged")
            new_spec["follows"]["copied_from"] = os.path.relpath(checkpoint.path, Path(new_spec["paths"]["run_dir"]))
        # Relative to the new run directory (runs/<new-id>/), which run_sft.sh runs from: the pair of runs moves together.
        relative = os.path.relpath(resume_from.absolute(), Path(new_spec["paths"]["run_dir"]))
        resumes = {"checkpoint": relative, "step": checkpoint.step, "total_steps": checkpoint.total_steps}
        new_spec["follows"] |= resumes
        resumes = resumes | {"checkpoint": str(checkpoint.path)}  # said to the user as a path on this machine
        if fix in ("nan", "diverged"):
            resumes["why"] = _why_this_checkpoint(verdict, passed)
    elif fix in ("nan", "diverged"):
        resumes = {"none_before": verdict.bad_what}
    written = write_bundle(new_spec)
    changed = {key: (settings.get(key), new_plan.settings.get(key)) for key in new_plan.settings
               if settings.get(key) != new_plan.settings.get(key)}
    return Retry(written.run_dir, run_id, changed, [why for _, why in changes.values()], new_plan.fits,
                 new_plan.estimate.per_device_gib, resumes, fix, notes)


def _rescaled_copy(run_dir: Path, checkpoint: Checkpoint, spec: dict, new_spec: dict, old: dict, new: dict) -> Path:
    """The retry's own copy of the checkpoint, in its output directory, with the new learning rate
    (the factor: new over the one the checkpoint was trained with, the run's)."""
    target = Path(new_spec["paths"]["output_dir"]) / checkpoint.path.name
    deepspeed = sorted(p.name for p in checkpoint.path.glob("global_step*") if p.is_dir())
    if deepspeed:
        raise RetryError(f"{checkpoint.path.name} is a DeepSpeed checkpoint, whose learning-rate schedule is in "
                         f"{deepspeed[0]}/ (DeepSpeed restores it, so a halved learning_rate would be undone): start over "
                         f"at the lower rate instead (`sft-tui export --from {run_dir / 'plan.json'} --set "
                         f"learning_rate={new['learning_rate']:g} --name {new_spec['run_id']}`)")
    python = env_python(spec["launch"].get("env") or "") or [training_python()]
    try:
        copy_with_learning_rate(checkpoint.path, target, new["learning_rate"] / old["learning_rate"], python)
    except CheckpointError as err:
        raise RetryError(str(err)) from None
    return target


def _why_this_checkpoint(verdict: Verdict, passed: list[Checkpoint]) -> str:
    why = f"the last saved before {verdict.bad_what}"
    if passed:
        names = [c.path.name for c in sorted(passed, key=lambda c: c.step)]
        why += (f"; {', '.join(names)} {'is' if len(names) == 1 else 'are'} passed over: a checkpoint holds the weights "
                f"after its step, which the next step's loss is computed from, and step {verdict.good_step} is the last "
                "good one logged")
    return why


def resume_sentence(retry: Retry) -> str:
    """'resumes from checkpoint-6 of run X at step 6 of 12', or that it starts over."""
    if not retry.resumes:
        return f"starts over: run {retry.follows} saved no checkpoint"
    if "none_before" in retry.resumes:
        return f"starts over: run {retry.follows} saved no checkpoint before {retry.resumes['none_before']}"
    of = f" of {retry.resumes['total_steps']}" if retry.resumes.get("total_steps") else ""
    why = f", {retry.resumes['why']}" if retry.resumes.get("why") else ""
    return (f"resumes from {Path(retry.resumes['checkpoint']).name} of run {retry.follows} at step "
            f"{retry.resumes['step']}{of} ({retry.resumes['checkpoint']}){why}")
