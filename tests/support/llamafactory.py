"""Running the real LLaMA-Factory from tests: always in a subprocess of the test virtualenv.

The pytest process itself never imports torch, transformers or llamafactory, so that tests
can assert the TUI process does not either.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]

# Rows short enough for cutoff_len 128 with the tiny tokenizer.
SAMPLE_ALPACA_ROWS = [
    {
        "instruction": f"Write a function that adds {i} to the sum of two numbers.",
        "input": "" if i % 2 else "Use Python.",
        "output": f"def add(a, b):\n    return a + b + {i}\n",
    }
    for i in range(16)
]


def offline_env(**extra: str) -> dict[str, str]:
    """The environment for a training subprocess: no hub access, no telemetry, quiet."""
    env = dict(os.environ)
    env.update(
        HF_HUB_OFFLINE="1",
        HF_DATASETS_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        DO_NOT_TRACK="1",
        TOKENIZERS_PARALLELISM="false",
        PATH=f"{BIN}{os.pathsep}{env.get('PATH', '')}",
    )
    env.update(extra)
    return env


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def build_tiny_model(out_dir: Path) -> Path:
    subprocess.run(
        [sys.executable, str(REPO / "tui" / "lf" / "tiny_model.py"), str(out_dir)],
        check=True,
        env=offline_env(),
        capture_output=True,
        timeout=300,
    )
    return out_dir


@dataclass
class TrainResult:
    workdir: Path
    output_dir: Path
    returncode: int
    log: str

    def trainer_log(self) -> list[dict]:
        path = self.output_dir / "trainer_log.jsonl"
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def train(workdir: Path, config: dict, timeout: float = 600) -> TrainResult:
    """`llamafactory-cli train train.yaml` in `workdir` with `config` (a dict of arguments)."""
    workdir.mkdir(parents=True, exist_ok=True)
    config_path = workdir / "train.yaml"
    # JSON is valid YAML and leaves no quoting question open.
    config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    done = subprocess.run(
        [str(BIN / "llamafactory-cli"), "train", str(config_path)],
        cwd=workdir,
        env=offline_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    log = done.stdout + done.stderr
    (workdir / "train.log").write_text(log, encoding="utf-8")
    return TrainResult(workdir, Path(config["output_dir"]), done.returncode, log)


def tiny_sft_config(model_dir: Path, dataset_dir: Path, output_dir: Path, **overrides) -> dict:
    """A LoRA SFT config small enough to train on the CPU in seconds."""
    config = {
        "model_name_or_path": str(model_dir),
        "stage": "sft",
        "do_train": True,
        "finetuning_type": "lora",
        "lora_target": "all",
        "lora_rank": 4,
        "dataset": "tiny_alpaca",
        "dataset_dir": str(dataset_dir),
        "template": "qwen",
        "cutoff_len": 128,
        "output_dir": str(output_dir),
        "overwrite_output_dir": True,
        "per_device_train_batch_size": 2,
        "gradient_accumulation_steps": 1,
        "max_steps": 4,
        "logging_steps": 1,
        "save_steps": 4,
        "learning_rate": 1.0e-3,
        "report_to": "none",
        "bf16": False,
        "fp16": False,
        "plot_loss": True,
    }
    config.update(overrides)
    return config


def write_tiny_dataset(dataset_dir: Path) -> Path:
    dataset_dir.mkdir(parents=True, exist_ok=True)
    data = write_jsonl(dataset_dir / "tiny_alpaca.jsonl", SAMPLE_ALPACA_ROWS)
    info = {
        "tiny_alpaca": {
            "file_name": str(data),
            "columns": {"prompt": "instruction", "query": "input", "response": "output"},
        }
    }
    (dataset_dir / "dataset_info.json").write_text(json.dumps(info, indent=2), encoding="utf-8")
    return dataset_dir
