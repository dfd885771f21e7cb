"""A run whose loss went NaN and that exited 0 is finished, with one warning sentence: real runs
of the tiny model with an absurd learning rate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.runs.test_runs import export, sft_tui

pytestmark = pytest.mark.llamafactory

WARNING = ("warning: the loss was NaN from step 3 on, so the model learned nothing after it (likely fp16 overflow, "
           "or a learning rate too high): train again with a lower learning_rate (--set learning_rate=...), or "
           "with bf16 instead of fp16 on a GPU that has it")


@pytest.mark.parametrize("nan_filter", ["default", "off"])
def test_a_nan_loss_run_is_finished_with_a_warning(tiny_model_dir, tmp_path, nan_filter):
    extra = ["--set", "learning_rate=1e30"] + (["--set", "logging_nan_inf_filter=false"] if nan_filter == "off" else [])
    run_dir = export(tmp_path, tiny_model_dir, "nan", 2, None, *extra)
    sft_tui("run", run_dir, check=True)
    watched = sft_tui("monitor", run_dir, "--plain")
    assert watched.returncode == 0, watched.stdout[-2000:]
    assert watched.stdout.splitlines()[-2].startswith("finished: 8/8 steps")
    assert watched.stdout.splitlines()[-1] == "  " + WARNING
    # the health event said it when it happened, once
    what = "loss" if nan_filter == "off" else "gradient norm"
    health = [line for line in watched.stdout.splitlines() if line.startswith("health: ")]
    assert len(health) == 1 and health[0].startswith(f"health: the {what} became NaN at step 3, so nothing is learned")
    assert f"  {WARNING}" in sft_tui("status", run_dir, check=True).stdout.splitlines()
    last = json.loads(sft_tui("monitor", run_dir, "--json").stdout.splitlines()[-1])
    assert last["event"] == "finished" and last["warning"] == WARNING.removeprefix("warning: ")

    # Without its final metrics (no train_results.json, the log cut before them) a run that exited 0
    # and whose trainer_log.jsonl reached the last step is still finished, not "exited with status 0".
    output_dir = Path(json.loads((run_dir / "plan.json").read_text())["paths"]["output_dir"])
    for name in ("train_results.json", "all_results.json"):
        (output_dir / name).unlink()
    log = (run_dir / "train.log").read_text()
    (run_dir / "train.log").write_text(log[:log.index("***** train metrics *****")])
    table = sft_tui("status", run_dir, check=True).stdout.splitlines()
    assert table[1].split()[:2] == ["nan", "finished"] and table[2] == f"  {WARNING}"
    again = sft_tui("monitor", run_dir, "--plain")
    assert again.returncode == 0 and again.stdout.splitlines()[-1] == "  " + WARNING
