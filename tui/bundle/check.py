"""`sft-tui check`: LLaMA-Factory's own verdict on a run directory, from a subprocess of the
training environment (tui/lf/check_bundle.py), so the sft-tui process never imports it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tui.common.errors import SftTuiError

CHECK_SCRIPT = Path(__file__).parents[1] / "lf" / "check_bundle.py"
CHECK_TIMEOUT_S = 300


class CheckError(SftTuiError):
    """The check could not run at all (no run directory, no training environment)."""


@dataclass
class CheckResult:
    problems: list[dict]
    notes: list[str]

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        return [f"{p['file']}: {p['key'] + ': ' if p['key'] else ''}{p['message']}" for p in self.problems]


def training_python() -> str:
    """The python of the training environment where a run names none (or not one on this
    machine): the interpreter behind the llamafactory-cli on PATH (its #! line), else this one."""
    cli = shutil.which("llamafactory-cli") or str(Path(sys.executable).with_name("llamafactory-cli"))
    try:
        first = Path(cli).read_text(errors="replace").splitlines()[0]
        if first.startswith("#!") and "python" in first:
            return first[2:].strip().split()[0]
    except (OSError, IndexError):
        pass
    return sys.executable


def env_python(env: str) -> list[str] | None:
    """argv prefix of the python in a bundle's training environment (plan.json's launch.env,
    the one run_sft.sh activates: "venv:DIR" or "conda:NAME"), or None when that environment is
    not on this machine (or the bundle names none)."""
    if env.startswith("venv:") and (Path(env[5:]) / "bin" / "python").exists():
        return [str(Path(env[5:]) / "bin" / "python")]
    if env.startswith("conda:") and shutil.which("conda"):
        return ["conda", "run", "--no-capture-output", "-n", env[6:], "python"]
    return None


def _run_env(run_dir: Path) -> str:
    from tui.bundle.spec import BundleError, load_spec

    try:
        return load_spec(run_dir / "plan.json")["launch"].get("env") or ""
    except BundleError:
        return ""  # a directory sft-tui did not write: train.yaml is enough to check


def check_run(run_dir: Path, python: str | None = None) -> CheckResult:
    """LLaMA-Factory's verdict on run_dir, from `python` (--python), else from the run's own
    training environment when it is on this machine, else from training_python(): a bundle
    planned for another machine is still checked with the LLaMA-Factory installed here."""
    if not (run_dir / "train.yaml").is_file():
        raise CheckError(f"{run_dir}: no train.yaml here; is this a run directory?")
    argv = [python] if python else env_python(_run_env(run_dir)) or [training_python()]
    env = dict(os.environ, HF_HUB_OFFLINE="1", DISABLE_VERSION_CHECK="0", TOKENIZERS_PARALLELISM="false")
    try:
        # Passed as -c source from the run directory: run by path, the script's folder (tui/,
        # with its datasets.py) would shadow the `datasets` library on sys.path.
        done = subprocess.run([*argv, "-c", CHECK_SCRIPT.read_text(), str(run_dir.resolve())],
                              capture_output=True, text=True, timeout=CHECK_TIMEOUT_S, env=env, cwd=run_dir)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise CheckError(f"the training environment's python could not run the check ({err})") from None
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else ""
    try:
        result = json.loads(last)
    except ValueError:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        if "No module named 'llamafactory'" in done.stderr:
            tail = "llamafactory is not installed in it: pip install 'llamafactory==0.9.5'"
        raise CheckError(f"the check could not run in the training environment: {tail}") from None
    problems, notes = result["problems"], result["notes"]
    # A missing package fails the run where it is planned to run; a bundle planned for another
    # machine is checked with the environment here, which may simply not have it.
    here = _planned_here(run_dir)
    for missing in result.get("missing_packages", []):
        sentence = f"needs {missing['package']}, which this training environment does not have (pip install {missing['package']})"
        if here:
            problems.append({"file": "train.yaml", "key": missing["key"], "message": sentence})
        else:
            notes.append(f"{missing['key']}: {sentence}; install it on the machine the run is for")
    return CheckResult(problems, notes)


def _planned_here(run_dir: Path) -> bool:
    """Whether plan.json says the run was planned for this machine (detected hardware)."""
    from tui.bundle.spec import BundleError, load_spec

    try:
        return load_spec(run_dir / "plan.json")["hardware"]["name"] == "detected"
    except (BundleError, KeyError):
        return True  # a directory sft-tui did not write: assume it is for here
