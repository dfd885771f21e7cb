"""Estimated against measured speed, live and at the end, on recorded runs whose plan.json has a time
estimate: `monitor --plain` progress lines, `--json`, state.json's estimate_vs_actual, the app."""

from __future__ import annotations

import json
from pathlib import Path

from tests.runs.test_health import recorded_health_run
from tests.runs.test_runs import sft_tui
from tui.runs.follower import Follower
from tui.runs.speed import speed_text

ESTIMATE = {"seconds": 75, "tokens": 180000, "tokens_per_second": 2400.0, "assumptions": [], "mfu": 0.58,
            "gpu_hours": 0.02}


def with_estimate(tmp_path: Path, name: str) -> Path:
    """health/<name>'s logs in a run whose plan estimated 180,000 tokens (3,000 a step) at 2,400 tok/s."""
    run_dir = recorded_health_run(tmp_path, name)
    plan = json.loads((run_dir / "plan.json").read_text())
    plan["plan"]["time_estimate"] = ESTIMATE
    (run_dir / "plan.json").write_text(json.dumps(plan))
    return run_dir


def test_plain_shows_llamafactorys_throughput_beside_the_estimate_and_the_time_left(tmp_path):
    """healthy/: LLaMA-Factory logged throughput 2,000 tok/s (1.5 s a step of 3,000 tokens)."""
    run_dir = with_estimate(tmp_path, "healthy")
    done = sft_tui("monitor", run_dir, "--plain")
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert "step 20/60  loss 1.4215  lr 2.00e-04  ETA 0:01:00  2,000 tok/s measured, 2,400 estimated; 1 min left" in lines
    assert "step 50/60  loss 1.2250  lr 2.00e-04  ETA 0:00:15  2,000 tok/s measured, 2,400 estimated; 15 s left" in lines
    state = json.loads((run_dir / "state.json").read_text())
    assert state["estimate_vs_actual"] == {"estimated_seconds": 75.0, "measured_seconds": 90.0,
                                           "estimated_tokens_per_second": 2400.0, "measured_tokens_per_second": 2000.0}
    last = json.loads(sft_tui("monitor", run_dir, "--json").stdout.splitlines()[-1])
    assert last["event"] == "finished" and last["estimate_vs_actual"] == state["estimate_vs_actual"]


def test_without_logged_throughput_the_rate_is_steps_per_second_times_the_plans_tokens_per_step(tmp_path):
    """spike/ logs no throughput: 2 s a step x 3,000 planned tokens a step = 1,500 tok/s."""
    run_dir = with_estimate(tmp_path, "spike")
    rows = [json.loads(line) for line in sft_tui("monitor", run_dir, "--json").stdout.splitlines()]
    at_30 = next(r for r in rows if r["event"] == "metrics" and r["current_steps"] == 30)
    assert at_30["speed"] == {"measured_tokens_per_second": 1500.0, "estimated_tokens_per_second": 2400.0,
                              "remaining_s": 60.0}
    assert speed_text(at_30["speed"]) == "1,500 tok/s measured, 2,400 estimated; 1 min left"
    versus = json.loads((run_dir / "state.json").read_text())["estimate_vs_actual"]
    assert versus["measured_seconds"] == 120.0 and versus["measured_tokens_per_second"] == 1500.0


def test_a_plan_without_an_estimate_shows_and_records_nothing(tmp_path):
    run_dir = recorded_health_run(tmp_path, "spike")
    done = sft_tui("monitor", run_dir, "--plain")
    assert "tok/s" not in done.stdout and not (run_dir / "state.json").exists()


def test_after_a_resume_the_rate_counts_the_steps_since_it(tmp_path):
    run_dir = with_estimate(tmp_path, "spike")
    follower = Follower(run_dir, None)
    follower.total_steps, follower.step, follower.elapsed, follower.resumed_at = 60, 40, 20.0, 30
    assert follower.speed.now(follower)["measured_tokens_per_second"] == 1500.0  # 10 steps in 20 s, x 3,000


async def test_the_apps_status_line_shows_the_speed(tmp_path, monkeypatch):
    from textual.widgets import Static

    from tui.app.main import SftTuiApp
    from tui.runs.lifecycle import RunStatus

    run_dir = with_estimate(tmp_path, "healthy")
    (run_dir / "train.log").write_text((run_dir / "train.log").read_text().split("***** train metrics")[0])
    monkeypatch.chdir(tmp_path)
    # a run still going: its status says running whatever the recorded exit code
    monkeypatch.setattr("tui.runs.watch.run_status", lambda run_dir, output_dir=None: RunStatus(
        str(run_dir), "running", 1, None, str(output_dir), None, ""))
    monkeypatch.setattr("tui.app.monitor.RunMonitor.poll_gpus", lambda self: None)
    app = SftTuiApp(monitor=run_dir)
    async with app.run_test(size=(120, 32)) as pilot:
        for _ in range(30):
            await pilot.pause(0.1)
            status = str(app.screen.query_one("#run-status", Static).render())
            if "tok/s" in status:
                break
        assert "step 60/60" in status and "2,000 tok/s measured, 2,400 estimated; 0 s left" in status
