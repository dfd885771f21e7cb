"""The monitor screen on a resumed run (the recorded real one, tests/runs/test_resume.py): the log says
where it resumed, and the curve drops the earlier run's points past the checkpoint instead of running
back on itself."""

from __future__ import annotations

from tests.runs.test_resume import resumed_run
from tests.support.pilot import until
from tui.app.main import SftTuiApp


async def test_the_monitor_says_where_the_run_resumed_and_its_curve_goes_forward(tmp_path, monkeypatch):
    run_dir, _ = resumed_run(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("tui.app.monitor.RunMonitor.poll_gpus", lambda self: None)
    app = SftTuiApp(monitor=run_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.screen.query("RunMonitor") and app.screen.query_one("RunMonitor").ended_event,
                    "the recorded run read")
        monitor = app.screen.query_one("RunMonitor")
        steps = monitor.curve.steps
        assert steps == sorted(steps) and len(steps) == len(set(steps)) and steps[-1] == 40, steps
        assert 22 in steps and 28 in steps, str(steps)  # the resumed run's, logged again after checkpoint-20
        log = "\n".join("".join(segment.text for segment in line) for line in monitor.query_one("#run-log").lines)
        assert "── resumed from checkpoint-20 at step 20 (steps 21-29 are trained again)" in log
