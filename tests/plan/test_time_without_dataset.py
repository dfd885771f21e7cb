"""Without a dataset the number of steps is unknown, so there is no total time; the speed still is: the
plan's tokens/s and the time per 1,000 rows at its length (issue 26, item 4)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def plan(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tui.cli.main", "plan", "--hardware", "rtx4080-16g", "--model",
                           "qwen2.5-0.5b", *args], capture_output=True, text=True, cwd=REPO, timeout=120)


def test_no_dataset_gives_the_speed_and_the_time_per_1000_rows():
    t = json.loads(plan("--set", "cutoff_len=1024", "--json").stdout)["time_estimate"]
    assert t["seconds"] is None and t["tokens"] is None
    assert t["tokens_per_second"] > 0 and t["seconds_per_1000_rows"] > 0
    # consistent: without lengths a row is cutoff_len long, so 1,000 rows are 1,024,000 tokens at that rate
    assert abs(t["seconds_per_1000_rows"] - 1000 * 1024 / t["tokens_per_second"]) < 0.01 * t["seconds_per_1000_rows"]
    longer = json.loads(plan("--set", "cutoff_len=2048", "--json").stdout)["time_estimate"]
    assert longer["seconds_per_1000_rows"] > t["seconds_per_1000_rows"]
    text = plan("--set", "cutoff_len=1024").stdout
    assert "Time: not estimated (the number of steps is unknown (no dataset)" in text
    assert "per 1,000 rows of 1024 tokens" in text
