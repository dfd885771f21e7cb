"""The demo: a real fine-tune anyone can run, without a GPU, a hub download or data of their own.

`sft-tui demo` (and the wizard's "Try the demo") builds a tiny Qwen2-architecture model and its
tokenizer locally (tui/lf/tiny_model.py, run by the training environment's python), copies the
bundled sample dataset, plans for this machine, exports a bundle and starts it with
LLaMA-Factory. The files go under `user_data_dir("sft-tui")/demo` unless a directory is given;
the tiny model is built once and reused.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from tui.common.errors import SftTuiError
from tui.common.resources import data_dir

DEMO_DATASET = "demo_alpaca.jsonl"
DEMO_TEST_SPLIT = "demo_alpaca_test.jsonl"  # what "Evaluate on the test split" scores after the demo
# Enough steps to watch a loss curve move, few enough to finish in seconds on a laptop CPU.
DEMO_SETTINGS = {"num_train_epochs": 4, "logging_steps": 1, "learning_rate": 1.0e-3, "lora_rank": 8}
STEPS = ("model", "dataset", "plan", "export", "start")


class DemoError(SftTuiError):
    """The demo cannot run here; the message says what to install or fix."""


@dataclass
class TrainingEnv:
    python: Path
    cli: Path
    env_spec: str | None  # run_sft.sh's --env: venv:PATH when the cli lives in a virtualenv


def find_training_env() -> TrainingEnv:
    """LLaMA-Factory beside this python (the usual install: the train extra), else on PATH: the
    same decision `sft-tui export` and the wizard take (tui.bundle.environment)."""
    from tui.bundle.environment import find_llamafactory

    install = find_llamafactory()
    if install is None:
        from tui.common.packages import train_extra_command

        raise DemoError("LLaMA-Factory is not installed. Install it into this environment with:\n"
                        f"    {train_extra_command()}\n"
                        "(or, in the source checkout, `make test`: an environment with LLaMA-Factory on CPU torch)")
    return TrainingEnv(install.python, install.cli, install.env_spec)


def default_demo_root() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("sft-tui")) / "demo"


def build_model(env: TrainingEnv, model_dir: Path) -> Path:
    if (model_dir / "TINY_MODEL.json").is_file():
        return model_dir
    script = Path(__file__).parents[1] / "lf" / "tiny_model.py"
    done = subprocess.run([str(env.python), str(script), str(model_dir)], capture_output=True, text=True, timeout=600,
                          env=_offline_env())
    if done.returncode != 0:
        raise DemoError(f"building the tiny model failed: {(done.stderr or done.stdout).strip().splitlines()[-1:]}")
    return model_dir


def _offline_env() -> dict:
    import os

    return dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_DATASETS_OFFLINE="1", DO_NOT_TRACK="1")


def prepare_demo(root: Path | None = None, progress=lambda step, message: None, start: bool = True):
    """Model, dataset, plan, bundle; then start it unless start=False. Returns the run status."""
    from tui.bundle.spec import LaunchOptions, make_spec
    from tui.bundle.write import write_bundle
    from tui.plan.planner import plan
    from tui.plan.requests import build_request
    from tui.runs.lifecycle import run_status, start_run

    root = Path(root) if root else default_demo_root()
    root.mkdir(parents=True, exist_ok=True)
    env = find_training_env()
    progress("model", "building a tiny Qwen2 model and tokenizer (once)")
    model_dir = build_model(env, root / "tiny-qwen2")
    progress("dataset", f"copying the sample dataset ({DEMO_DATASET}, and {DEMO_TEST_SPLIT} as its test split)")
    dataset = root / "demo_alpaca"  # train.jsonl and test.jsonl: a directory's file names give the splits
    dataset.mkdir(exist_ok=True)
    shutil.copyfile(data_dir("samples") / DEMO_DATASET, dataset / "train.jsonl")
    shutil.copyfile(data_dir("samples") / DEMO_TEST_SPLIT, dataset / "test.jsonl")
    progress("plan", "planning for this machine")
    request, report = build_request("detected", str(model_dir), [str(dataset)], overrides=dict(DEMO_SETTINGS))
    result = plan(request)
    progress("export", "writing the run bundle")
    run_id = f"demo-{datetime.now():%Y%m%d-%H%M%S}"
    spec = make_spec(result, request, report, LaunchOptions(env=env.env_spec), root, run_id, hardware_name="detected")
    written = write_bundle(spec)
    if not start:
        return run_status(written.run_dir)
    progress("start", "starting LLaMA-Factory")
    return start_run(written.run_dir, env=_offline_env())
