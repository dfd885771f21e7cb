"""After training, from the run directory: try the model, evaluate it on the test split, merge
the adapter into the base. Each runs LLaMA-Factory's own code path in a subprocess of the run's
training environment (the one run_sft.sh activates: plan.json's `launch.env`, else the python
behind llamafactory-cli), never in the sft-tui process.

    try    LLaMA-Factory's ChatModel (tui/lf/chat.py) with infer.yaml's settings
    eval   `llamafactory-cli train eval/eval.yaml`: do_predict + predict_with_generate on the
           bundle's test split; results in <run>/eval/
    merge  `llamafactory-cli export export.yaml` (full-precision base, the run's template)
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import yaml

from tui.bundle.spec import BundleError, load_spec
from tui.common.errors import SftTuiError
from tui.runs.lifecycle import output_dir_of

CHAT_SCRIPT = Path(__file__).parents[1] / "lf" / "chat.py"


CLI_CODE = "import sys; from llamafactory.cli import main; sys.argv = ['llamafactory-cli', *sys.argv[1:]]; main()"


TIMEOUT_S = 3600


class AfterError(SftTuiError):
    """The command cannot run as asked; one sentence that says what to do."""


@dataclass
class Run:
    run_dir: Path
    spec: dict
    output_dir: Path

    @classmethod
    def open(cls, run_dir: Path) -> Run:
        run_dir = Path(run_dir).resolve()
        try:
            spec = load_spec(run_dir / "plan.json")
        except BundleError as err:
            raise AfterError(f"{run_dir} is not a run directory sft-tui wrote ({err})") from None
        output_dir = output_dir_of(run_dir)
        assert output_dir is not None  # a run directory with a plan.json has one
        return cls(run_dir, spec, output_dir)

    def python(self) -> list[str]:
        """argv prefix of the training environment's python."""
        from tui.bundle.check import env_python, training_python

        env = self.spec["launch"].get("env") or ""
        if not env:
            return [training_python()]
        argv = env_python(env)
        if argv is None:
            raise AfterError(f"the run's training environment {env.split(':', 1)[-1]} is not on this machine"
                             + (" (no bin/python in it)" if env.startswith("venv:") else " (no conda on PATH)"))
        return argv

    def yaml_file(self, name: str) -> dict:
        try:
            data = yaml.safe_load((self.run_dir / name).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as err:
            raise AfterError(f"{self.run_dir / name} cannot be read ({err})") from None
        return data if isinstance(data, dict) else {}

    def checkpoints(self) -> list[int]:
        found = [p.name.removeprefix("checkpoint-") for p in self.output_dir.glob("checkpoint-*") if p.is_dir()]
        return sorted(int(n) for n in found if n.isdigit())

    def adapter(self, checkpoint: int | None) -> Path:
        """The trained adapter: the final one in output_dir, or checkpoint-N."""
        if checkpoint is not None:
            path = self.output_dir / f"checkpoint-{checkpoint}"
            if not path.is_dir():
                have = ", ".join(map(str, self.checkpoints())) or "none yet"
                raise AfterError(f"no checkpoint {checkpoint} in {self.output_dir} (checkpoints: {have})")
            return path
        if not any((self.output_dir / name).exists() for name in ("adapter_config.json", "config.json")):
            raise AfterError(f"{self.output_dir} has no trained model yet: has the run finished? "
                             f"(`sft-tui status {self.run_dir.parent}`)")
        return self.output_dir


def lf_env() -> dict:
    return dict(os.environ, TOKENIZERS_PARALLELISM="false", DISABLE_VERSION_CHECK="0")


def run_lf(argv: list[str], cwd: Path, what: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S, env=lf_env(), cwd=cwd)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise AfterError(f"{what} could not run in the training environment ({err})") from None


def last_error(done: subprocess.CompletedProcess) -> str:
    lines = [line for line in (done.stderr + done.stdout).strip().splitlines() if line.strip()]
    for line in reversed(lines):
        if "Error" in line.split(":")[0] or line.startswith("ValueError"):
            return line.strip()
    return lines[-1].strip() if lines else f"exit {done.returncode}"
