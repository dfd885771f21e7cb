"""`sft-tui status`: the same sentence as the monitor for a failed run, the runs in export's --out
folder, and the resumed run's ETA (tui/runs/summary.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.runs.test_resume import resumed_run
from tests.runs.test_runs import sft_tui

RECORDED = Path(__file__).parents[1] / "data" / "runs"


def oom_run(root: Path) -> Path:
    """The recorded out-of-memory run (tests/data/runs/oom over finished's bundle) as root/runs/oom."""
    run_dir = root / "runs" / "oom"
    shutil.copytree(RECORDED / "finished", run_dir)
    shutil.copytree(RECORDED / "oom", run_dir, dirs_exist_ok=True)
    for path in run_dir.iterdir():
        path.write_text(path.read_text(encoding="utf-8").replace("@ROOT@", str(root)), encoding="utf-8")
    return run_dir


def test_status_of_a_failed_run_gives_the_monitors_sentence(tmp_path):
    run_dir = oom_run(tmp_path)
    monitor = next(line for line in sft_tui("monitor", run_dir, "--plain").stdout.splitlines() if line.startswith("failed: "))
    assert monitor.startswith("failed: out of GPU memory (exit 1)")
    done = sft_tui("status", tmp_path / "runs")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "  " + monitor in done.stdout.splitlines()
    assert "exit code 1" not in done.stdout
    rows = json.loads(sft_tui("status", tmp_path / "runs", "--json").stdout)
    assert "failed: " + rows[0]["detail"] == monitor


@pytest.mark.parametrize("given", [".", "runs"])
def test_status_finds_the_runs_in_exports_out_folder(tmp_path, given):
    """`sft-tui export --out OUT` writes OUT/runs/<run-id>: `status OUT` lists them, as `status OUT/runs` does."""
    oom_run(tmp_path / "out")
    done = sft_tui("status", tmp_path / "out" / given)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[1].startswith("oom  failed")


def test_status_eta_after_a_resume_is_the_resumed_runs(tmp_path):
    """Between the resume (checkpoint-20) and the step the first run was stopped at (29), status gives the
    resumed run's step and time left, as the monitor does (step 24: 16 steps in about 4 s)."""
    import subprocess
    import time

    from tui.runs.summary import run_summary

    run_dir, _ = resumed_run(tmp_path, until="24")
    # a stand-in for the training run_sft.sh: alive, and named so
    (run_dir / "run_sft.sh").write_text('echo "$$" > "$(dirname "$0")/run.pid"\nwhile :; do sleep 0.2; done\n')
    (run_dir / "run.pid").unlink()
    script = subprocess.Popen(["bash", str(run_dir / "run_sft.sh")])
    try:
        deadline = time.monotonic() + 30
        while not (run_dir / "run.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        summary = run_summary(run_dir)
        assert summary["status"] == "running" and summary["step"] == 24
        assert summary["eta_s"] == pytest.approx(4.0)
    finally:
        script.kill()
        script.wait()
