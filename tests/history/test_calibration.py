"""The time estimate calibrated from the run history: on a device the history has seen, with the same
method, the plan's speed is scaled by what those runs measured against their own estimates, and says so;
not with --no-history, not for other hardware, not for another method. Plans and exports are the real
commands; the runs are bundles those commands exported, their measurements entered in the real history
(no GPU here to train on a 3060)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tui.history.calibration import Alike, likeness, time_calibration
from tui.history.store import History

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data" / "s2"
ON_3060 = ["--hardware", "rtx3060-12g", "--model", "qwen2.5-0.5b", "--dataset", DATA]


def sft_tui(*args) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "sft-tui"), *map(str, args)], capture_output=True, text=True, timeout=120)


def plan_json(*args) -> dict:
    done = sft_tui("plan", *args, "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def three_runs_on_the_3060(tmp_path, speed: float) -> str:
    """Three exported bundles, each then 'measured' at `speed` times its estimated tokens/s."""
    for i, batch in enumerate((4, 4, 2)):
        done = sft_tui("export", *ON_3060, "--out", tmp_path, "--name", f"run{i}", "--set",
                       f"per_device_train_batch_size={batch}", "--json")
        assert done.returncode == 0, done.stderr
    with History() as history:
        rows = history.runs()
        assert len(rows) == 3
        for row in rows:
            history.record(row["run_dir"], row["run_id"], {
                "outcome": "finished", "steps_done": row["planned_steps"], "runtime_s": row["est_seconds"] / speed,
                "tokens_per_second": row["est_tokens_per_second"] * speed})
    return rows[0]["device"]


def test_the_time_is_calibrated_from_your_runs_on_this_device_and_says_so(tmp_path):
    before = plan_json(*ON_3060)["time_estimate"]
    assert "calibration" not in before
    device = three_runs_on_the_3060(tmp_path, speed=0.89)
    after = plan_json(*ON_3060)["time_estimate"]
    cal = after["calibration"]
    assert cal["text"] == f"calibrated from 3 of your runs on {device}: speed -11 %"
    assert cal["runs"] == 3 and cal["speed_ratio"] == 0.89 and cal["uncalibrated_seconds"] == before["seconds"]
    assert abs(after["tokens_per_second"] - before["tokens_per_second"] * 0.89) < 0.2
    assert after["assumptions"][0] == cal["text"]
    text = sft_tui("plan", *ON_3060).stdout
    assert f"(calibrated from 3 of your runs on {device}: speed -11 %;" in text
    no_data = ON_3060[:4]
    bare, calibrated = plan_json(*no_data, "--no-history")["time_estimate"], plan_json(*no_data)["time_estimate"]
    assert calibrated["calibration"]["speed_ratio"] == 0.89 and calibrated["seconds"] is None
    assert abs(calibrated["seconds_per_1000_rows"] - bare["seconds_per_1000_rows"] / 0.89) < 0.2


def test_a_run_planned_with_calibration_is_compared_with_the_datasheet_next_time(tmp_path):
    three_runs_on_the_3060(tmp_path, speed=0.89)
    assert sft_tui("export", *ON_3060, "--out", tmp_path, "--name", "fourth", "--json").returncode == 0
    with History() as history:
        (row,) = [r for r in history.runs() if r["run_id"] == "fourth"]
        assert row["est_tokens_per_second"] < row["est_datasheet_tokens_per_second"]  # it showed the calibrated speed
        history.record(row["run_dir"], "fourth", {"outcome": "finished", "steps_done": row["planned_steps"],
                                                  "tokens_per_second": row["est_datasheet_tokens_per_second"] * 0.89})
    cal = plan_json(*ON_3060)["time_estimate"]["calibration"]
    assert cal["runs"] == 4 and cal["speed_ratio"] == 0.89  # not 0.89 x 0.89


def test_no_history_and_other_hardware_or_method_are_not_calibrated(tmp_path):
    three_runs_on_the_3060(tmp_path, speed=0.89)
    assert "calibration" not in plan_json(*ON_3060, "--no-history")["time_estimate"]
    other = ["--hardware", "rtx4090-24g", "--model", "qwen2.5-0.5b", "--dataset", DATA]
    assert "calibration" not in plan_json(*other)["time_estimate"]
    assert "calibration" not in plan_json(*ON_3060, "--set", "finetuning_type=full")["time_estimate"]


def test_the_most_alike_runs_weigh_most(tmp_path):
    plan = Alike("GPU", "lora", model_params=500, attention="sdpa", cutoff_len=1024, micro_batch=4)
    same = {"model_params": 500, "attention": "sdpa", "cutoff_len": 1024, "micro_batch": 4}
    assert likeness(plan, same) == 1.0
    assert likeness(plan, same | {"micro_batch": 1}) < 0.3 and likeness(plan, same | {"model_params": 7000}) < 0.25
    with History(tmp_path / "h.sqlite3") as history:
        for name, ratio, params in (("alike", 0.8, 500), ("other-model", 1.6, 7000)):
            history.record(f"/r/{name}", name, {"device": "GPU", "method": "lora", "outcome": "finished", "steps_done": 9,
                                                "model_params": params, "est_datasheet_tokens_per_second": 100.0,
                                                "tokens_per_second": 100.0 * ratio})
        cal = time_calibration(plan, history)
    assert cal["runs"] == 2 and 0.8 < cal["speed_ratio"] < 0.9  # the alike run's figure, not the middle (1.13)


def test_the_memory_estimate_is_judged_against_what_your_runs_reserved(tmp_path):
    before = plan_json(*ON_3060)
    device = three_runs_on_the_3060(tmp_path, speed=1.0)
    with History() as history:
        for row in history.runs():  # each reserved 1.3 x its estimate (an allocator that keeps a lot)
            history.record(row["run_dir"], row["run_id"], {"peak_allocated_gib": row["est_per_device_gib"],
                                                           "peak_reserved_gib": row["est_per_device_gib"] * 1.3})
    after = plan_json(*ON_3060)
    gib = before["estimate"]["per_device_gib"] * 1.3
    sentence = f"your 3 runs of this model on {device} peaked at 1.30x the estimate (median): judged on {gib:.1f} GiB per device"
    assert sentence in after["estimate"]["notes"] and sentence not in before["estimate"]["notes"]
    assert after["estimate"]["history"]["ratio"] == 1.3 and after["estimate"]["fits"]
    assert after["estimate"]["per_device_gib"] == before["estimate"]["per_device_gib"]  # the estimate itself stays
    assert not any("your 3 runs" in n for n in plan_json(*ON_3060, "--no-history")["estimate"]["notes"])
