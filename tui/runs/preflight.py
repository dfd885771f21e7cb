"""What can be checked on this machine before run_sft.sh is detached (`sft-tui run`, the wizard's
Start): the training environment named in plan.json exists and has llamafactory-cli, `--resume`
has a checkpoint to resume from, and the machine is the kind the run was planned for.

run_sft.sh checks the same things itself (a run started by hand meets them there, and writes
exit_reason); checking here first says so at once, in the terminal, instead of in a detached log.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

from tui.runs.rundir import RunError, output_dir_of

PIP_INSTALL = "pip install 'llamafactory==0.9.5'"
OTHER_ENV = "or export again with --env venv:PATH|conda:NAME"


class HardwareMismatch(RunError):
    """The run was planned for other hardware than this machine's; `--force` starts it anyway.
    `planned` and `here` are the two halves of the sentence, for a confirmation that names both."""

    def __init__(self, planned: str, here: str):
        self.planned, self.here = planned, here
        super().__init__(f"{planned}; {here}: run it there, or --force")


def read_spec(run_dir: Path) -> dict:
    try:
        spec = json.loads((Path(run_dir) / "plan.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise RunError(f"{run_dir}: cannot read plan.json ({err}): export the bundle again") from None
    return spec if isinstance(spec, dict) else {}


def _which(name: str, env: dict | None) -> str | None:
    return shutil.which(name, path=(env if env is not None else os.environ).get("PATH"))


def conda_env_prefix(name: str, env: dict | None) -> Path | None:
    """The prefix of the conda env called `name` (or at that path); None when conda lists none such."""
    conda = _which("conda", env)
    if conda is None:
        return None
    done = subprocess.run([conda, "env", "list", "--json"], capture_output=True, text=True, timeout=60, env=env)
    prefixes = [Path(p) for p in json.loads(done.stdout or "{}").get("envs", [])]
    return next((p for p in prefixes if p.name == name or str(p) == name), None)


def check_environment(env_spec: str | None, env: dict | None = None) -> None:
    """The environment run_sft.sh activates exists and has llamafactory-cli (in it, or on PATH)."""
    cli_on_path = _which("llamafactory-cli", env)
    if env_spec and env_spec.startswith("venv:"):
        venv = Path(env_spec[5:])
        if not (venv / "bin" / "activate").is_file():
            raise RunError(f"the run's training environment {venv} is not a virtualenv (no bin/activate): create it "
                           f"with LLaMA-Factory (python -m venv {venv} && {venv}/bin/{PIP_INSTALL}), {OTHER_ENV}")
        if not (venv / "bin" / "llamafactory-cli").exists() and not cli_on_path:
            raise RunError(f"llamafactory-cli is not in the run's training environment {venv}: "
                           f"install it there ({venv}/bin/{PIP_INSTALL}), {OTHER_ENV}")
    elif env_spec and env_spec.startswith("conda:"):
        name = env_spec[6:]
        if not _which("conda", env):
            raise RunError(f"conda is not on PATH, and the run's training environment is the conda env {name}: "
                           f"install conda (or activate it in this shell), {OTHER_ENV}")
        try:
            prefix = conda_env_prefix(name, env)
        except (OSError, ValueError, subprocess.SubprocessError):
            return  # conda could not say: run_sft.sh will find out, and write why
        if prefix is None:
            raise RunError(f"conda has no env {name} (`conda env list`): create it with LLaMA-Factory "
                           f"(conda create -n {name} python=3.11, then {PIP_INSTALL} in it), {OTHER_ENV}")
        if not (prefix / "bin" / "llamafactory-cli").exists() and not cli_on_path:
            raise RunError(f"llamafactory-cli is not in the conda env {name}: install it there "
                           f"(conda activate {name}; {PIP_INSTALL}), {OTHER_ENV}")
    elif not cli_on_path:
        raise RunError(f"llamafactory-cli is not on PATH, where the run expects it (it names no environment): "
                       f"install it ({PIP_INSTALL}) or activate the environment that has it, {OTHER_ENV}")


def check_resume(run_dir: Path) -> None:
    output_dir = output_dir_of(Path(run_dir))
    if output_dir is None or not any(output_dir.glob("checkpoint-*")):
        raise RunError(f"--resume: no checkpoint in {output_dir} yet: start it without --resume")


def _gpus_text(count: int, name: str, gib: float | None) -> str:
    return f"{count} x {name}" + (f" ({gib:.0f} GiB)" if gib else "")


def hardware_mismatch(spec: dict, detection=None) -> HardwareMismatch | None:
    """Why this machine is not the one the run was planned for, or None. A plan for the CPU runs
    anywhere; a plan for GPUs needs as many of that vendor, with bf16 when the plan uses it."""
    hardware = spec.get("hardware") or {}
    vendor, wanted = hardware.get("vendor"), int(hardware.get("gpus") or 1)
    if vendor in (None, "cpu"):
        return None
    settings = (spec.get("plan") or {}).get("settings") or {}
    precision = "bf16" if settings.get("bf16") else "fp16" if settings.get("fp16") else None
    capacity = ((spec.get("plan") or {}).get("estimate") or {}).get("capacity_gib")
    planned = "planned for " + _gpus_text(wanted, hardware.get("device", vendor), capacity) + (
        f" with {precision}" if precision else "")
    if detection is None:
        from tui.hardware.detect import detect

        detection = detect()
    gpus = [d for d in detection.gpus if d.vendor == vendor]
    if not detection.gpus:
        return HardwareMismatch(planned, "this machine has no GPU")
    here_text = ", ".join(sorted({_gpus_text(sum(g.name == d.name for g in detection.gpus), d.name,
                                            d.memory_total_mib / 1024) for d in detection.gpus}))
    if len(gpus) < wanted:
        return HardwareMismatch(planned, f"this machine has {here_text}")
    if precision and not all(getattr(d, precision) for d in gpus[:wanted]):
        return HardwareMismatch(planned, f"this machine has {here_text}, without {precision}")
    return None


class PreflightProblems(RunError):
    """Everything that keeps the run from starting here, one sentence a line; `mismatch` is the
    hardware half when there is one (the app asks about it only when it is the sole problem)."""

    def __init__(self, problems: list[str], mismatch: HardwareMismatch | None = None):
        self.problems, self.mismatch = problems, mismatch
        super().__init__("\n".join(problems))


def launch_environment(env_spec: str | None, env: dict | None) -> tuple[dict | None, str | None]:
    """(the environment run_sft.sh starts with, a note) for a bundle that names no environment:
    when llamafactory-cli is not on PATH but LLaMA-Factory is installed beside sft-tui (make
    test's .venv, a `pip install -e '.[train]'`), its bin folder goes first on PATH."""
    if env_spec or _which("llamafactory-cli", env):
        return env, None
    from tui.hardware.environment import find_llamafactory

    install = find_llamafactory()
    if install is None:
        return env, None
    base = dict(env if env is not None else os.environ)
    base["PATH"] = f"{install.cli.parent}{os.pathsep}{base.get('PATH', '')}"
    return base, f"llamafactory-cli is not on PATH: using the LLaMA-Factory installed beside sft-tui ({install.cli})"


def preflight(run_dir: Path, resume: bool = False, force: bool = False, env: dict | None = None,
              detection=None) -> tuple[dict | None, str | None]:
    """Check everything at once; raise PreflightProblems (HardwareMismatch alone when that is the
    only problem, the one --force overrides) naming each. Returns launch_environment()'s answer."""
    from tui.bundle.location import ownership_problems
    from tui.bundle.pack import manifest_problems

    spec = read_spec(run_dir)
    problems = ownership_problems(run_dir) + manifest_problems(run_dir)
    env_spec = (spec.get("launch") or {}).get("env")
    env, note = launch_environment(env_spec, env)
    def resume_check() -> None:
        if resume:
            check_resume(run_dir)

    for check in (lambda: check_environment(env_spec, env), resume_check):
        try:
            check()
        except RunError as err:
            problems.append(str(err))
    mismatch = None if force else hardware_mismatch(spec, detection)
    if mismatch and not problems:
        raise mismatch
    if mismatch:
        problems.append(str(mismatch))
    if problems:
        raise PreflightProblems(problems, mismatch)
    return env, note
