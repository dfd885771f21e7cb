"""`sft-tui retry RUN_DIR --fix oom`: only after a run that ran out of memory, with the model
exactly as the run had it, and exit 1 (not "Start it") when the retried plan still does not fit."""

from __future__ import annotations

import json
import shutil
import subprocess
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


def test_a_retry_without_a_checkpoint_starts_over(tmp_path):
    run_dir = ran_out_of_memory(export_for(tmp_path, "none", "per_device_train_batch_size=2"))
    done = sft_tui("retry", run_dir, "--fix", "oom", check=True)
    assert "  starts over: run none saved no checkpoint" in done.stdout
    new_dir = Path(json.loads(sft_tui("retry", run_dir, "--fix", "oom", "--json").stdout)["run_dir"])
    assert "resume_from_checkpoint" not in yaml.safe_load((new_dir / "train.yaml").read_text())


def _half_done(tmp_path: Path, model_dir: Path, name: str) -> tuple[Path, Path]:
    """A real run of 12 steps (24 rows, 2 per step, no accumulation) that saved checkpoint-6 and
    then ran out of memory: run to the end, then everything after checkpoint-6 taken away, and the
    OOM line (a recorded one: a CPU run cannot provoke it) appended to its train.log."""
    from tests.runs.test_runs import export
    from tests.support.llamafactory import SAMPLE_ALPACA_ROWS, offline_env, write_jsonl

    rows = SAMPLE_ALPACA_ROWS + SAMPLE_ALPACA_ROWS[:8]
    run_dir = export(tmp_path, model_dir, name, 1, write_jsonl(tmp_path / "rows.jsonl", rows),
                     "--set", "per_device_train_batch_size=2", "--set", "gradient_accumulation_steps=1",
                     "--set", "save_steps=6")
    done = subprocess.run(["bash", str(run_dir / "run_sft.sh"), "--foreground"], check=False, capture_output=True,
                          text=True, timeout=600, env=offline_env())
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    saves = tmp_path / "out" / "saves" / name
    assert sorted(p.name for p in saves.glob("checkpoint-*")) == ["checkpoint-12", "checkpoint-6"]
    shutil.rmtree(saves / "checkpoint-12")
    oom = [line for line in (LOGS / "cuda_oom.log").read_text().splitlines() if "OutOfMemoryError" in line]
    with (run_dir / "train.log").open("a") as log:
        log.write(oom[0] + "\n")
    (run_dir / "exit_code").write_text("1\n")
    return run_dir, saves


@pytest.mark.llamafactory
def test_a_retry_resumes_from_the_newest_checkpoint_with_the_batch_halved(tiny_model_dir, tmp_path):
    from tests.support.llamafactory import offline_env
    from tui.runs.follower import resumed_at_in

    run_dir, saves = _half_done(tmp_path, tiny_model_dir, "half")
    before = [json.loads(line) for line in (saves / "trainer_log.jsonl").read_text().splitlines()]
    assert before[-1]["total_steps"] == 12

    done = sft_tui("retry", run_dir, "--fix", "oom", check=True)
    checkpoint = saves.resolve() / "checkpoint-6"
    assert f"  resumes from checkpoint-6 of run half at step 6 of 12 ({checkpoint})\n" in done.stdout
    assert "  per_device_train_batch_size: 2 -> 1\n  gradient_accumulation_steps: 1 -> 2\n" in done.stdout
    new_dir = run_dir.parent / "half-retry1"
    config = yaml.safe_load((new_dir / "train.yaml").read_text())
    # relative to the new run directory, which run_sft.sh runs from: the two runs move together
    assert config["resume_from_checkpoint"] == "../../saves/half/checkpoint-6"
    assert (new_dir / config["resume_from_checkpoint"]).resolve() == checkpoint
    assert (config["per_device_train_batch_size"], config["gradient_accumulation_steps"]) == (1, 2)
    assert json.loads((new_dir / "plan.json").read_text())["follows"] == {
        "run_id": "half", "run_dir": str(run_dir.resolve()), "reason": "oom",
        "checkpoint": "../../saves/half/checkpoint-6", "step": 6, "total_steps": 12}

    train = subprocess.run(["bash", str(new_dir / "run_sft.sh"), "--foreground"], check=False, capture_output=True,
                           text=True, timeout=600, env=offline_env())
    assert train.returncode == 0, (train.stdout + train.stderr)[-3000:]
    log = train.stdout + train.stderr
    # run_sft.sh says where it resumes, as with --resume: the monitor and status count steps from there
    assert log.splitlines()[0] == "Resuming from ../../saves/half/checkpoint-6"
    assert resumed_at_in(log.splitlines()[:3]) == 6
    # transformers keeps the new micro-batch (it restores the checkpoint's only with auto_find_batch_size) and says so
    assert "per_device_train_batch_size: 1 (from args) != 2 (from trainer_state.json)" in log
    assert "Instantaneous batch size per device = 1" in log and "Gradient Accumulation steps = 2" in log
    after = [json.loads(line) for line in (tmp_path / "out" / "saves" / "half-retry1" / "trainer_log.jsonl")
             .read_text().splitlines()]
    losses = [row for row in after if "loss" in row]
    assert [row["current_steps"] for row in losses] == list(range(7, 13))  # from step 6 to the end, nothing redone
    assert {row["total_steps"] for row in after} == {12}
    # the learning-rate schedule goes on where it was: the same rates as the first run's steps 7..12
    assert [row["lr"] for row in losses] == [row["lr"] for row in before if "loss" in row][6:12]
    # and the same rows in the same order, 1 x 2 instead of 2 x 1: the losses of the first run's steps 7..12
    # (measured: equal to 4 decimals; summed in another order, not to the bit)
    assert [row["loss"] for row in losses] == pytest.approx([row["loss"] for row in before if "loss" in row][6:12],
                                                             abs=5e-3)
    state = json.loads((tmp_path / "out" / "saves" / "half-retry1" / "checkpoint-12" / "trainer_state.json").read_text())
    assert (state["global_step"], state["max_steps"]) == (12, 12)

    # A retry that ran out of memory before saving a checkpoint of its own is retried from the checkpoint it
    # resumed from: plan.json names it relative to the retry's directory, wherever the two runs are now.
    shutil.move(tmp_path / "out", tmp_path / "moved")
    moved = tmp_path / "moved" / "runs" / "half-retry1"
    shutil.rmtree(tmp_path / "moved" / "saves" / "half-retry1")
    from tui.bundle.spec import load_spec
    from tui.runs.retry import checkpoint_to_resume

    again = checkpoint_to_resume(moved, load_spec(moved / "plan.json"))
    assert again is not None and (again.path, again.step) == ((tmp_path / "moved" / "saves" / "half" / "checkpoint-6").resolve(), 6)
