"""A run continued with `sft-tui run --resume`, on the recorded real resumed run (tests/data/logs/resumed:
40 steps, stopped at 29, resumed from checkpoint-20; trainer_log.jsonl holds the first run's rows, then
the resumed run's, whose elapsed_time starts again at the resume)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.runs.test_runs import sft_tui
from tests.runs.test_speed import ESTIMATE
from tui.runs.follower import Follower

LOGS = Path(__file__).parents[1] / "data" / "logs" / "resumed"


def resumed_run(tmp_path: Path, until: str | None = None) -> tuple[Path, Path]:
    """The recorded resumed run in the recorded finished run's bundle, with an estimate (3,000 tokens a
    step at 2,400 tok/s), cut at the resumed run's step `until` (train.log before that tqdm step, the
    jsonl's rows to it). Returns the run directory and its output directory."""
    from tests.runs.recorded import recorded_run
    from tui.runs.lifecycle import output_dir_of

    run_dir = recorded_run(tmp_path, "finished")
    output_dir = output_dir_of(run_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    plan = json.loads((run_dir / "plan.json").read_text())
    plan["plan"]["time_estimate"] = {**ESTIMATE, "tokens": 120000}
    (run_dir / "plan.json").write_text(json.dumps(plan))
    log = (LOGS / "train.log").read_text().replace("@ROOT@/saves/resumed", str(output_dir))
    rows = (LOGS / "trainer_log.jsonl").read_text().splitlines(keepends=True)
    if until:
        log = log[:min(log.index(f"| {n}/40") for n in range(int(until) + 1, 41) if f"| {n}/40" in log)]
        second = [i for i, r in enumerate(rows) if '"elapsed_time": "0:00:01"' in r][-1] - 1  # the resumed run's first row
        rows = rows[:next(i for i in range(second, len(rows)) if f'"current_steps": {until},' in rows[i]) + 1]
        (run_dir / "exit_code").unlink()
    (run_dir / "train.log").write_text(log.replace("@ROOT@", str(tmp_path)))
    (output_dir / "trainer_log.jsonl").write_text("".join(rows))
    return run_dir, output_dir


def test_the_monitor_says_where_a_run_resumed_when_the_steps_go_back(tmp_path):
    run_dir, _ = resumed_run(tmp_path)
    done = sft_tui("monitor", run_dir, "--plain")
    lines = done.stdout.splitlines()
    resumed = "resumed from checkpoint-20 at step 20 (steps 21-29 are trained again)"
    assert resumed in lines
    at = lines.index(resumed)
    # the first run's steps before it, counted on the first run's clock
    assert lines[at - 1].startswith("step 29/40  ETA 0:00:10  ")
    assert "step 22/40  loss 6.2141  lr 2.11e-05  ETA 0:00:19  " in "\n".join(lines[:at])
    # then the resumed run's, from step 22 again
    assert lines[at + 1].startswith("step 22/40  loss 6.2141  lr 2.11e-05  ")
    assert [line for line in lines if line.startswith("resumed")] == [resumed]


def test_between_the_resume_and_the_step_it_was_stopped_at_the_eta_is_the_resumed_runs(tmp_path):
    """At the resumed run's step 24 (4 steps in about 1 s), the first run's step 29 and its clock
    (27 s) are behind: 16 steps left take about 4 s, not the 33 s the first run's figures give."""
    run_dir, output_dir = resumed_run(tmp_path, until="24")
    follower = Follower(run_dir, output_dir)
    events = follower.poll()
    assert follower.step == 24 and follower.resumed_at == 20
    assert follower.eta == pytest.approx(4.0)
    speed = follower.speed.now(follower)
    assert speed["remaining_s"] == pytest.approx(4.0)
    again = "resumed from checkpoint-20 at step 20 (steps 21-29 are trained again)"
    assert [e.text for e in events if e.kind == "resumed"] == [again]


def test_a_log_of_the_resumed_run_alone_says_it_resumed_once(tmp_path):
    """The monitor opened on a resumed run whose output directory has only the resumed run's rows
    (or none: a post-mortem of the run directory alone)."""
    run_dir, output_dir = resumed_run(tmp_path)
    rows = (output_dir / "trainer_log.jsonl").read_text().splitlines(keepends=True)
    (output_dir / "trainer_log.jsonl").write_text("".join(rows[15:]))
    follower = Follower(run_dir, output_dir)
    events = follower.poll()
    assert [e.text for e in events if e.kind == "resumed"] == ["resumed from checkpoint-20 at step 20"]
    console = Follower(run_dir, None)
    events = console.poll()
    assert [e.text for e in events if e.kind == "resumed"] == ["resumed from checkpoint-20 at step 20"]
    assert console.resumed_at == 20
