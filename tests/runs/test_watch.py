"""`sft-tui monitor --plain` on recorded run directories (a post-mortem, as of a copied run)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.runs.recorded import recorded_run
from tests.runs.test_runs import sft_tui


def test_the_finished_line_says_finished_once(tmp_path):
    run_dir = recorded_run(tmp_path, "finished")
    done = sft_tui("monitor", run_dir, "--plain")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1] == (f"finished: 8/8 steps, train_loss 6.2494; adapter and checkpoints in "
                                            f"{tmp_path / 'saves' / 'tiny-lora'}")
    assert [line.split(":")[0] for line in done.stdout.splitlines()].count("finished") == 1
    # the numbers come from the recorded trainer_log.jsonl
    assert "step 8/8  loss 6.2397  lr 2.10e-05  ETA 0:00:00" in done.stdout.splitlines()


def test_status_gives_the_eta_from_the_steps_since_a_resume(tmp_path):
    """`sft-tui status` on a resumed run at step 30 of 40 (the recorded real run): 3 s for the 10 steps
    since checkpoint-20, so 3 s left, where LLaMA-Factory's remaining_time says 1 s."""
    import json
    import subprocess

    from tui.runs.summary import run_summary

    recorded = Path(__file__).parents[1] / "data" / "logs" / "resumed"
    run_dir, output_dir = tmp_path / "runs" / "resumed", tmp_path / "saves" / "resumed"
    run_dir.mkdir(parents=True)
    output_dir.mkdir(parents=True)
    rows = (recorded / "trainer_log.jsonl").read_text().splitlines()
    (output_dir / "trainer_log.jsonl").write_text("\n".join(rows[:rows.index(next(r for r in rows if '"current_steps": 30,' in r)) + 1]) + "\n")
    (run_dir / "plan.json").write_text(json.dumps({"paths": {"run_dir": str(run_dir), "output_dir": str(output_dir)}}))
    log = (recorded / "train.log").read_text().replace("@ROOT@", str(tmp_path))
    (run_dir / "train.log").write_text(log[:log.index("| 31/40")])  # still training, at step 30
    # a stand-in for the training run_sft.sh: alive, and named so
    (run_dir / "run_sft.sh").write_text('echo "$$" > "$(dirname "$0")/run.pid"\nwhile :; do sleep 0.2; done\n')
    script = subprocess.Popen(["bash", str(run_dir / "run_sft.sh")])
    try:
        for _ in range(50):
            if (run_dir / "run.pid").exists():
                break
            time.sleep(0.1)
        summary = run_summary(run_dir)
        assert summary["status"] == "running" and summary["step"] == 30
        assert summary["eta_s"] == pytest.approx(3.0)
    finally:
        script.kill()
        script.wait()
