"""`sft-tui monitor --plain` on recorded run directories (a post-mortem, as of a copied run)."""

from __future__ import annotations

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
