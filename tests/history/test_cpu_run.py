"""A real tiny-model run on the CPU teaches the next plan: a CPU has no datasheet speed, so a plan for it
has no time until the history has one run of it; then it has, at the FLOP/s that run measured."""

from __future__ import annotations

import json

import pytest

from tests.runs.test_runs import export, sft_tui
from tui.history.store import History

pytestmark = pytest.mark.llamafactory


def test_a_cpu_gets_a_time_estimate_after_one_run(tiny_model_dir, tmp_path):
    run_dir = export(tmp_path, tiny_model_dir, "first", epochs=2)
    plan = json.loads((run_dir / "plan.json").read_text())["plan"]
    assert plan["time_estimate"]["seconds"] is None and plan["time_estimate"]["tokens"]
    data = tmp_path / "first.jsonl"
    sft_tui("run", run_dir, check=True)
    watched = sft_tui("monitor", run_dir, "--json")
    assert watched.returncode == 0, watched.stderr
    (row,) = History().runs()
    assert row["outcome"] == "finished" and row["tokens_per_second"] > 0 and row["steps_done"] == plan["steps"]
    assert row["runtime_s"] > 0 and row["seconds_per_step"] > 0 and row["train_loss"] > 0

    again = json.loads(sft_tui("plan", "--hardware", "cpu", "--model", tiny_model_dir, "--dataset", data,
                               "--set", "num_train_epochs=2", "--set", "logging_steps=1", "--json", check=True).stdout)
    estimate = again["time_estimate"]
    assert estimate["calibration"]["text"].startswith(f"calibrated from 1 of your runs on {row['device']}: ")
    assert "no datasheet speed" in estimate["calibration"]["text"]
    # the same plan at the speed its run measured: the run's own time (training steps only)
    assert abs(estimate["seconds"] - row["runtime_s"]) <= max(1, 0.1 * row["runtime_s"])
    shown = json.loads(sft_tui("history", "--json", check=True).stdout)
    assert shown[0]["time"]["measured_seconds"] == row["runtime_s"]
    assert "calibration" not in json.loads(sft_tui("plan", "--hardware", "cpu", "--model", tiny_model_dir, "--dataset",
                                                   data, "--no-history", "--json", check=True).stdout)["time_estimate"]
