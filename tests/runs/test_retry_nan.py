"""`sft-tui retry --fix nan` on a real tiny-model run whose loss went NaN (learning_rate 1e30): it
resumes from the newest checkpoint whose weights still gave a good loss, through the retry's own
copy of it whose scheduler and optimizer state carry the halved learning rate. Proven against the
real LLaMA-Factory: resumed from the untouched checkpoint, the halved rate is undone (transformers
restores the checkpoint's scheduler, whose base_lrs are the old rate); from the copy, every resumed
step logs half the first run's rate."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.runs.test_runs import export, sft_tui
from tests.support.llamafactory import BIN, offline_env

pytestmark = pytest.mark.llamafactory


def rows_of(output_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (output_dir / "trainer_log.jsonl").read_text().splitlines() if line.strip()]


def hashes(folder: Path) -> dict:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*"))
            if p.is_file()}


def train(run_dir: Path) -> str:
    """Started as users start it, and watched to its end; its train.log."""
    sft_tui("run", run_dir, check=True)
    watched = sft_tui("monitor", run_dir, "--plain", timeout=600)
    assert watched.returncode == 0, watched.stdout[-3000:]
    return (run_dir / "train.log").read_text()


def test_a_nan_run_is_retried_from_the_checkpoint_before_it_with_the_learning_rate_halved(tiny_model_dir, tmp_path):
    # gradient clipping off, and the NaN filter off so the loss itself shows the NaN (with clipping off,
    # transformers logs no grad_norm, and its filter would log the NaN loss as the mean of the good ones)
    run_dir = export(tmp_path, tiny_model_dir, "nan", 2, None, "--set", "learning_rate=1e30", "--set", "max_grad_norm=0",
                     "--set", "logging_nan_inf_filter=false", "--set", "save_steps=1")
    train(run_dir)
    saves = tmp_path / "out" / "saves"
    first = rows_of(saves / "nan")
    assert [r["current_steps"] for r in first if r.get("loss") != r.get("loss")][:1] == [3]  # NaN from step 3
    original = hashes(saves / "nan")

    done = sft_tui("retry", run_dir, "--fix", "nan", check=True)
    out = done.stdout
    assert "  learning_rate: 1e+30 -> 5e+29\n" in out
    assert "  max_grad_norm: 0 -> 1.0\n" in out
    assert "  why: halved after the loss went NaN at step 3 in run nan" in out
    # checkpoint-2 holds the weights after step 2, from which step 3's NaN loss was computed
    assert (f"  resumes from checkpoint-1 of run nan at step 1 of 8 ({(saves / 'nan' / 'checkpoint-1').resolve()}), "
            "the last saved before the loss went NaN at step 3; checkpoint-2 is passed over: a checkpoint holds the "
            "weights after its step, which the next step's loss is computed from, and step 2 is the last good one "
            "logged\n") in out
    copy = (saves / "nan-retry1" / "checkpoint-1").resolve()
    assert f"  checkpoint-1 copied to {copy} with the learning rate in its scheduler and optimizer state rescaled to 5e+29" in out
    new_dir = run_dir.parent / "nan-retry1"
    config = yaml.safe_load((new_dir / "train.yaml").read_text())
    assert config["resume_from_checkpoint"] == "../../saves/nan-retry1/checkpoint-1"
    assert (config["learning_rate"], config["max_grad_norm"]) == (5e29, 1.0)
    assert json.loads((new_dir / "plan.json").read_text())["follows"] == {
        "run_id": "nan", "run_dir": str(run_dir.resolve()), "reason": "nan", "bad_step": 3,
        "bad": "the loss went NaN at step 3", "checkpoint": "../../saves/nan-retry1/checkpoint-1", "step": 1,
        "total_steps": 8, "copied_from": "../../saves/nan/checkpoint-1"}

    packed = json.loads(sft_tui("pack", new_dir, "--output", tmp_path / "nan-retry1.tar.gz", "--json", check=True).stdout)
    assert ("this retry resumes from ../../saves/nan-retry1/checkpoint-1: carry saves/nan-retry1 too"
            in packed["notes"])  # its own copy, not the first run's

    log = train(new_dir)
    assert log.splitlines()[0] == "Resuming from ../../saves/nan-retry1/checkpoint-1"
    resumed = {r["current_steps"]: r["lr"] for r in rows_of(saves / "nan-retry1") if "loss" in r}
    before = {r["current_steps"]: r["lr"] for r in first if "loss" in r}
    assert sorted(resumed) == list(range(2, 9))  # from the checkpoint's step 1 to the end, the same schedule
    assert any(before[step] > 0 for step in resumed)
    assert [resumed[step] for step in sorted(resumed)] == pytest.approx([before[step] / 2 for step in sorted(resumed)],
                                                                         rel=1e-9)
    assert hashes(saves / "nan") == original  # the first run's files, checkpoints included, are only read

    # Why the copy: the same retry resumed from the untouched checkpoint trains at the OLD rates.
    config |= {"resume_from_checkpoint": "../../saves/nan/checkpoint-1", "output_dir": "../../saves/undone"}
    (new_dir / "undone.yaml").write_text(yaml.safe_dump(config))
    undone = subprocess.run([str(BIN / "llamafactory-cli"), "train", "undone.yaml"], cwd=new_dir, check=False,
                            capture_output=True, text=True, timeout=600, env=offline_env())
    assert undone.returncode == 0, (undone.stdout + undone.stderr)[-3000:]
    assert {r["current_steps"]: r["lr"] for r in rows_of(saves / "undone") if "loss" in r} == {
        step: before[step] for step in resumed}
