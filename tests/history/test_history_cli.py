"""`sft-tui history` and the commands that record what they see (export, status), end to end in
subprocesses, on recorded runs and a real export; a corrupt history never fails the command."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.runs.recorded import recorded_run
from tui.history.store import History

BIN = Path(sys.executable).parent
REPO = Path(__file__).resolve().parents[2]


def sft_tui(*args, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "sft-tui"), *map(str, args)], capture_output=True, text=True, timeout=120,
                          cwd=cwd)


def test_status_records_the_runs_it_sees_and_history_compares_them(tmp_path):
    finished, oom = recorded_run(tmp_path, "finished"), recorded_run(tmp_path, "oom")
    assert finished.parent == oom.parent
    done = sft_tui("status", finished.parent)
    assert done.returncode == 0 and done.stderr == ""
    shown = sft_tui("history", "--json")
    assert shown.returncode == 0, shown.stderr
    rows = {r["run_dir"]: r for r in json.loads(shown.stdout)}
    assert rows[str(finished)]["outcome"] == "finished" and rows[str(oom)]["outcome"] == "failed"
    run = rows[str(finished)]
    assert run["memory"]["estimated_gib"] == 0.004 and run["memory"]["measured_reserved_gib"] == 0.0
    assert run["time"]["measured_seconds"] == 0.21 and run["loss"]["train"] == 6.2494
    text = sft_tui("history").stdout
    assert text.splitlines()[0].split()[:4] == ["RUN", "OUTCOME", "DEVICE", "METHOD"]
    assert "tiny-lora  finished  CPU" in text and "failed: out of GPU memory" in text
    assert sft_tui("history", "--json", "--hardware", "rtx").stdout.strip() == "[]"
    assert len(json.loads(sft_tui("history", "--json", "--model", "mod").stdout)) == 2


def test_history_records_the_runs_folder_it_is_given(tmp_path):
    run_dir = recorded_run(tmp_path, "finished")
    shown = json.loads(sft_tui("history", "--json", run_dir.parent).stdout)
    assert [r["run_id"] for r in shown] == ["tiny-lora"]


def test_export_records_the_planned_run_with_its_estimates(tmp_path):
    done = sft_tui("export", "--hardware", "rtx3060-12g", "--model", "qwen2.5-0.5b", "--dataset",
                   REPO / "tests" / "data" / "s2", "--out", tmp_path, "--name", "planned", "--json")
    assert done.returncode == 0, done.stderr
    (row,) = History().runs()
    assert (row["run_id"], row["outcome"], row["method"]) == ("planned", "planned", "lora")
    assert "3060" in row["device"] and row["vendor"] == "nvidia"
    assert row["est_per_device_gib"] > 0 and row["est_seconds"] > 0 and row["est_tokens_per_second"] > 0
    assert set(row["est_breakdown"]) >= {"weights", "activations"}


def test_a_corrupt_history_never_fails_status_or_history(tmp_path, private_run_history):
    private_run_history.write_bytes(b"\x00garbage" * 1000)
    run_dir = recorded_run(tmp_path, "finished")
    done = sft_tui("status", run_dir.parent)
    assert done.returncode == 0 and "finished  finished  8/8" in done.stdout
    assert len(done.stderr.splitlines()) == 1 and "moved aside" in done.stderr and "Traceback" not in done.stderr
    shown = sft_tui("history", "--json")
    assert shown.returncode == 0 and shown.stderr == "" and len(json.loads(shown.stdout)) == 1
