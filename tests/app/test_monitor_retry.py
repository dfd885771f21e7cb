"""The monitor's "Retry with this fix": it names and makes the fix the run's own files call for
(tui.runs.verdict: oom, host-oom, nan, diverged), and a run no retry fixes is refused in one
notification. Recorded logs (tests/data/logs) laid into exported bundles, the Textual Pilot."""

from __future__ import annotations

import pytest
import yaml

from tests.runs.test_retry import export_for
from tests.runs.test_retry_fixes import HEALTH, lay
from tests.support.pilot import settle, until
from tui.app.main import SftTuiApp


def notes(app) -> list[str]:
    return [str(n.message) for n in app._notifications]


async def open_monitor(app, pilot):
    await until(pilot, lambda: app.screen.query("RunMonitor") and app.screen.query_one("RunMonitor").ended_event,
                "the recorded run read")
    await settle(app, pilot)
    return app.screen.query_one("RunMonitor")


@pytest.mark.parametrize("fix", ["nan", "host-oom"])
async def test_the_button_offers_and_makes_the_fix_the_verdict_names(fix, tmp_path, monkeypatch):
    if fix == "nan":
        run_dir = lay(export_for(tmp_path, "run", "per_device_train_batch_size=2"), HEALTH / "nan_off", 0, tmp_path)
    else:
        run_dir = lay(export_for(tmp_path, "run", "preprocessing_num_workers=16", "dataloader_num_workers=4"),
                      HEALTH / "healthy", 137, tmp_path)
    before = yaml.safe_load((run_dir / "train.yaml").read_text())
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("tui.app.monitor.RunMonitor.poll_gpus", lambda self: None)
    app = SftTuiApp(monitor=run_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        monitor = await open_monitor(app, pilot)
        button = monitor.query_one("#retry")
        assert button.display and str(button.label) == f"Retry with this fix ({fix})"
        await pilot.click("#retry")
        await until(pilot, lambda: any("wrote " in n for n in notes(app)), "the retry written", 40)
        said = next(n for n in notes(app) if "wrote " in n)
        assert f"(--fix {fix})" in said and "Traceback" not in said, said
    config = yaml.safe_load((run_dir.parent / "run-retry1" / "train.yaml").read_text())
    if fix == "nan":
        assert config["learning_rate"] == before["learning_rate"] / 2
        assert "starts over: run run saved no checkpoint before the loss went NaN at step" in said
    else:
        assert (config["preprocessing_num_workers"], config["dataloader_num_workers"]) == (8, 2)


async def test_a_run_no_retry_fixes_is_refused_in_one_notification(tmp_path, monkeypatch):
    run_dir = export_for(tmp_path, "bad", "per_device_train_batch_size=2")
    (tmp_path / "t.log").write_text("Traceback (most recent call last):\n  File \"/home/me/my_callback.py\", line 3\n"
                                    "RuntimeError: my callback broke\n")
    lay(run_dir, tmp_path / "t.log", 1, tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("tui.app.monitor.RunMonitor.poll_gpus", lambda self: None)
    app = SftTuiApp(monitor=run_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        monitor = await open_monitor(app, pilot)
        assert not monitor.query_one("#retry").display  # nothing to offer
        monitor.focus()
        await pilot.press("f")  # the key still asks
        await until(pilot, lambda: any("is not retried" in n for n in notes(app)), "the refusal", 40)
        said = [n for n in notes(app) if "is not retried" in n]
    assert said == ["bad is not retried: it failed: RuntimeError: my callback broke (exit 1) (no retry fixes that: "
                    "read the traceback in train.log: no change of settings is known to fix it)."]
    assert not list(run_dir.parent.glob("*-retry*"))


async def test_the_monitor_told_to_retry_by_itself_says_why_a_run_is_not_retried(tmp_path, monkeypatch):
    """`sft-tui monitor RUN_DIR --auto-retry 1` (the app): a failure no retry fixes ends the chain, said."""
    run_dir = export_for(tmp_path, "bad", "per_device_train_batch_size=2")
    (tmp_path / "t.log").write_text("Traceback (most recent call last):\nRuntimeError: my callback broke\n")
    lay(run_dir, tmp_path / "t.log", 1, tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("tui.app.monitor.RunMonitor.poll_gpus", lambda self: None)
    app = SftTuiApp(monitor=run_dir, auto_retry=1)
    async with app.run_test(size=(120, 40)) as pilot:
        await open_monitor(app, pilot)
        await until(pilot, lambda: any("is not retried" in n for n in notes(app)), "the chain's end", 40)
        assert [n for n in notes(app) if "is not retried" in n] == [
            "run bad ended and is not retried: it failed: RuntimeError: my callback broke (exit 1) (no retry fixes that: "
            "read the traceback in train.log: no change of settings is known to fix it)"]
    assert not list(run_dir.parent.glob("*-retry*"))
