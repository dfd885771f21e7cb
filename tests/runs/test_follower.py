"""tui.trainlog on recorded LLaMA-Factory/torch logs and on the awkward ways files grow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tui.runs.follower import Follower, parse_metric_dict
from tui.runs.logfiles import LogTail, last_lines, tail_offset

LOGS = Path(__file__).parents[1] / "data" / "logs"
BANNER = "[INFO|trainer.py:1478] 2026-11-22 18:15:19,508 >>   Total optimization steps = 4\n"


def follow_recorded(tmp_path: Path, name: str, exit_code: int = 1):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "train.log").write_bytes((LOGS / name).read_bytes())
    follower = Follower(run_dir, None)  # no output dir: a copied run directory
    events = follower.poll()
    return follower, events, follower.failure(exit_code)


@pytest.mark.parametrize("name, allocate, free", [
    ("cuda_oom.log", "2.32 GiB", "1.04 GiB"),
    ("cuda_oom_torch2.0.log", "20.00 MiB", None),
    ("hip_oom.log", "1.95 GiB", "1.21 GiB"),
])
def test_out_of_memory_is_recognised(tmp_path, name, allocate, free):
    follower, events, failure = follow_recorded(tmp_path, name)
    ooms = [e for e in events if e.kind == "oom"]
    assert len(ooms) == 1
    assert ooms[0].data["tried_to_allocate"] == allocate
    assert ooms[0].data.get("free") == free
    assert failure.data["cause"] == "oom" and "out of GPU memory" in failure.text
    # the real steps before the crash were followed too (tqdm bars separated by carriage returns)
    assert follower.total_steps == 12 and follower.step >= 3
    assert [e.data["loss"] for e in events if e.kind == "metrics"][:2] == [6.256, 6.248]


@pytest.mark.parametrize("name, words", [
    ("undefined_dataset.log", "no dataset named tiny_alpacca in dataset_info.json"),
    ("no_valid_samples.log", "No row survived"),
    ("missing_column.log", "declares the column 'question'"),
])
def test_llamafactory_data_errors_become_one_sentence(tmp_path, name, words):
    follower, events, failure = follow_recorded(tmp_path, name)
    assert failure.data["cause"] == "data"
    assert words in failure.text
    assert "Traceback" not in failure.text and "\n" not in failure.text
    assert not [e for e in events if e.kind == "oom"]


def test_bf16_on_a_machine_without_it_is_one_sentence_with_the_fix(tmp_path):
    _, _, failure = follow_recorded(tmp_path, "bf16_unsupported.log")
    assert failure.data["cause"] == "setup"
    assert failure.text.startswith("This machine cannot train in bf16 (it has no GPU, or one without bf16): run it on "
                                   "the hardware it was planned for, or export it again for this machine")
    assert "Traceback" not in failure.text and "\n" not in failure.text
    assert failure.data["exception"].startswith("ValueError: Your setup doesn't support bf16/gpu.")


def test_dropped_rows_warn_once(tmp_path):
    follower, events, _ = follow_recorded(tmp_path, "no_valid_samples.log")
    assert [e.kind for e in events].count("data_warning") == 1
    assert follower.dropped_rows == 8


def test_an_unknown_crash_names_the_exception_line(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "train.log").write_text('some output\nTraceback (most recent call last):\n  File "x.py", line 1, in <module>\n'
                                       "    boom()\nRuntimeError: the flux capacitor is empty\n")
    follower = Follower(run_dir, None)
    follower.poll()
    failure = follower.failure(1)
    assert failure.data["cause"] == "exception"
    assert failure.text == "RuntimeError: the flux capacitor is empty (exit 1)"
    assert failure.data["context"][-1] == "    boom()"


def test_console_metric_dicts_with_string_values():
    assert parse_metric_dict("{'loss': '6.111', 'grad_norm': '1.2', 'learning_rate': '3e-06', 'epoch': '0.5'}") == {
        "loss": 6.111, "grad_norm": 1.2, "learning_rate": 3e-06, "epoch": 0.5}
    assert parse_metric_dict("{'loss': 6.111}") == {"loss": 6.111}
    assert parse_metric_dict("{'loss': nan}") is None  # not a literal: ignored, not raised


def test_partial_lines_wait_for_their_end(tmp_path):
    path = tmp_path / "log"
    tail = LogTail(path)
    assert tail.read_lines() == []  # not there yet
    path.write_bytes(b"first line\nsecond ha")
    assert tail.read_lines() == ["first line"]
    with open(path, "ab") as f:
        f.write(b"lf\r 10%|#| 1/10 [00:01<00:09]\r")
    assert tail.read_lines() == ["second half", " 10%|#| 1/10 [00:01<00:09]"]


def test_a_truncated_file_is_read_again_from_the_start(tmp_path):
    run_dir, out = tmp_path / "run", tmp_path / "out"
    run_dir.mkdir()
    out.mkdir()
    rows = [{"current_steps": i, "total_steps": 4, "loss": 5.0 - i, "lr": 1e-4, "epoch": i / 4} for i in (1, 2, 3)]
    jsonl = out / "trainer_log.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows))
    (run_dir / "train.log").write_text("x" * 500 + "\n" + BANNER)
    follower = Follower(run_dir, out)
    assert [e.data["loss"] for e in follower.poll() if e.kind == "metrics"] == [4.0, 3.0, 2.0]
    # overwrite_output_dir on a restart: both files start again, shorter than before
    jsonl.write_text(json.dumps(rows[0]) + "\n")
    (run_dir / "train.log").write_text("restarted\n" + BANNER)
    events = follower.poll()
    assert events[0].kind == "restarted"
    assert [e.data["loss"] for e in events if e.kind == "metrics"] == [4.0]


def test_trainer_log_is_the_source_of_numbers_and_the_console_adds_grad_norm(tmp_path):
    run_dir, out = tmp_path / "run", tmp_path / "out"
    run_dir.mkdir()
    out.mkdir()
    (run_dir / "train.log").write_text(BANNER + "{'loss': '6.256', 'grad_norm': '1.228', 'learning_rate': '0', 'epoch': '0.25'}\n")
    (out / "trainer_log.jsonl").write_text(json.dumps(
        {"current_steps": 1, "total_steps": 8, "loss": 6.256377696990967, "lr": 0.0, "epoch": 0.25}) + "\n")
    metrics = [e for e in Follower(run_dir, out).poll() if e.kind == "metrics"]
    assert len(metrics) == 1  # not once from each file
    assert metrics[0].data["loss"] == 6.256377696990967 and metrics[0].data["grad_norm"] == 1.228


def test_tail_offset_reads_only_the_end_of_a_big_file(tmp_path):
    path = tmp_path / "big.log"
    with open(path, "wb") as f:
        for i in range(200_000):
            f.write(b"line %d\n" % i)
    offset = tail_offset(path, 3)
    assert path.read_bytes()[offset:] == b"line 199997\nline 199998\nline 199999\n"
    assert last_lines(path, 2) == ["line 199998", "line 199999"]
    assert tail_offset(path, 10**7) == 0


def test_a_previous_runs_trainer_log_is_not_read_before_training_starts(tmp_path):
    run_dir, out = tmp_path / "run", tmp_path / "out"
    run_dir.mkdir()
    out.mkdir()
    (out / "trainer_log.jsonl").write_text(json.dumps({"current_steps": 9, "total_steps": 9, "loss": 1.0}) + "\n")
    (run_dir / "train.log").write_text("loading the model\n")
    follower = Follower(run_dir, out)
    assert [e.kind for e in follower.poll()] == ["line"]
    # LLaMA-Factory deletes the old file (overwrite_output_dir), then training starts and logs
    (out / "trainer_log.jsonl").write_text(json.dumps({"current_steps": 1, "total_steps": 4, "loss": 5.0}) + "\n")
    with open(run_dir / "train.log", "a") as f:
        f.write(BANNER)
    events = follower.poll()
    assert [(e.kind, e.data.get("loss")) for e in events if e.kind != "line"] == [("started", None), ("metrics", 5.0)]


def test_the_eta_after_resume_comes_from_the_steps_since_the_resume(tmp_path):
    """A real run of the tiny model stopped at step 29 and resumed from checkpoint-20 (40 steps):
    trainer_log.jsonl holds the first run's rows, then the resumed run's, whose elapsed_time starts
    again at the resume. At step 30 LLaMA-Factory says 0:00:01 left: 3 s since the resume divided by
    all 30 steps. 10 steps took those 3 s, so the 10 steps left take 3 s."""
    recorded = LOGS / "resumed"
    run_dir, output_dir = tmp_path / "run", tmp_path / "saves"
    run_dir.mkdir()
    output_dir.mkdir()
    rows = (recorded / "trainer_log.jsonl").read_text().splitlines()
    until_step_30 = rows[:rows.index(next(r for r in rows if '"current_steps": 30,' in r)) + 1]
    (output_dir / "trainer_log.jsonl").write_text("\n".join(until_step_30) + "\n")
    assert json.loads(until_step_30[-1])["remaining_time"] == "0:00:01"
    log = (recorded / "train.log").read_text()
    banner_end = log[:log.index("| 31/40")]  # still training, at step 30
    (run_dir / "train.log").write_text(banner_end)
    follower = Follower(run_dir, output_dir)
    events = follower.poll()
    assert follower.resumed_at == 20 and follower.step == 30
    assert follower.eta == pytest.approx(3.0)
    assert [e.data["remaining"] for e in events if e.kind == "metrics"][-1] == pytest.approx(3.0)
