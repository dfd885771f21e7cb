"""`sft-tui retry RUN_DIR --fix oom`: only after a run that ran out of memory, with the model
exactly as the run had it, and exit 1 (not "Start it") when the retried plan still does not fit."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tests.runs.test_runs import sft_tui

LOGS = Path(__file__).parents[1] / "data" / "logs"
RUNS = Path(__file__).parents[1] / "data" / "runs"
CODER = "Qwen/Qwen2.5-Coder-14B-Instruct"


def export_for(tmp_path: Path, name: str, *settings: str) -> Path:
    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"instruction": f"q{i}", "input": "", "output": f"a{i}"}) + "\n" for i in range(4)))
    args = [item for setting in settings for item in ("--set", setting)]
    done = sft_tui("export", "--hardware", "rtx4090-24g", "--model", CODER, "--dataset", data, "--out", tmp_path / "out",
                   "--name", name, *args, "--json", check=True)
    return Path(json.loads(done.stdout)["run_dir"])


def ran_out_of_memory(run_dir: Path) -> Path:
    """The run's files after a CUDA out-of-memory crash (a recorded log)."""
    shutil.copyfile(LOGS / "cuda_oom.log", run_dir / "train.log")
    (run_dir / "exit_code").write_text("1\n")
    return run_dir


def test_a_retry_keeps_the_model_id_exactly(tmp_path):
    run_dir = ran_out_of_memory(export_for(tmp_path, "coder", "per_device_train_batch_size=2"))
    done = sft_tui("retry", run_dir, "--fix", "oom", "--json", check=True)
    new_dir = Path(json.loads(done.stdout)["run_dir"])
    for name in ("train.yaml", "infer.yaml", "export.yaml"):
        assert yaml.safe_load((new_dir / name).read_text())["model_name_or_path"] == CODER, name
    assert json.loads((new_dir / "plan.json").read_text())["model"]["model_name_or_path"] == CODER


@pytest.mark.parametrize("history", ["never-started", "finished"])
def test_a_run_that_did_not_run_out_of_memory_is_not_retried(tmp_path, history):
    run_dir = export_for(tmp_path, "fine", "per_device_train_batch_size=2")
    if history == "finished":
        shutil.copyfile(RUNS / "finished" / "train.log", run_dir / "train.log")
        (run_dir / "exit_code").write_text("0\n")
    done = sft_tui("retry", run_dir, "--fix", "oom")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.startswith("sft-tui: fine did not run out of memory (it is ")
    assert "its train.log shows no out-of-memory error): `--fix oom` is for a run that did" in done.stderr
    assert not (run_dir.parent / "fine-retry1").exists()


def test_a_retry_that_still_does_not_fit_says_so_and_exits_1(tmp_path):
    run_dir = ran_out_of_memory(export_for(tmp_path, "full", "finetuning_type=full", "per_device_train_batch_size=2"))
    done = sft_tui("retry", run_dir, "--fix", "oom")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "DOES NOT FIT" in done.stdout and "Start it" not in done.stdout
    assert done.stderr.startswith("sft-tui: the retried plan still does not fit (")
    assert "would run out of memory again" in done.stderr
