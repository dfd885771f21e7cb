"""The wizard's step 6 with real bundles and the real LLaMA-Factory: Start for the bundle just
exported (also after a second export, with the first run's monitor one button away), and a
confirmation naming both machines before starting a run planned for other hardware."""

from __future__ import annotations

import pytest
from textual.widgets import Button, Label, Static

from tests.runs.test_runs import export
from tests.support.pilot import press, settle, until
from tui.app.main import SftTuiApp
from tui.app.wizard.run import ConfirmOtherHardware
from tui.app.wizard.state import WizardState
from tui.hardware.detect import detect

pytestmark = pytest.mark.llamafactory


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    for name in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.setenv(name, "1")


async def wait_until(pilot, predicate, what, seconds=900):
    """A real run of the tiny model takes seconds on an idle machine and minutes on a busy one: wait for
    the condition itself, with a deadline only there to end a test that would hang."""
    await until(pilot, predicate, what, seconds)


def shown(app, selector) -> bool:
    return bool(app.query_one(selector).display)


async def test_a_second_export_offers_start_for_it_and_keeps_the_first_runs_monitor(tiny_model_dir, tmp_path):
    first = export(tmp_path, tiny_model_dir, "first", 1)
    second = export(tmp_path, tiny_model_dir, "second", 1)
    app = SftTuiApp(state=WizardState(run_dir=first))
    async with app.run_test(size=(100, 40)) as pilot:
        app.go_to("run")
        await settle(app, pilot)
        await press(app, pilot, "#start-run")
        await settle(app, pilot)
        await wait_until(pilot, lambda: app.query("RunMonitor") and app.query_one("RunMonitor").ended_event, "the first run")
        assert app.query_one("RunMonitor").run_dir == first and not shown(app, "#start-run")

        app.state.run_dir = second  # what step 5's Export does
        app.go_to("review")
        await settle(app, pilot)
        app.go_to("run")
        await settle(app, pilot)
        assert shown(app, "#start-run") and str(second) in str(app.query_one("#run-intro", Static).render())
        assert not app.query_one("RunMonitor").display
        previous = app.query_one("#show-previous", Button)
        assert previous.display and str(previous.label) == "Back to the monitor of first"

        await press(app, pilot, "#show-previous")
        await settle(app, pilot)
        assert app.query_one("RunMonitor").display and app.query_one("RunMonitor").run_dir == first
        assert shown(app, "#start-run")  # the new bundle's Start stays offered

        await press(app, pilot, "#start-run")
        await settle(app, pilot)
        await wait_until(pilot, lambda: app.query_one("RunMonitor").run_dir == second, "the second run's monitor")
        monitor = app.query_one("RunMonitor")
        await wait_until(pilot, lambda: monitor.ended_event is not None, "the second run")
        assert monitor.ended_event.kind == "finished", monitor.ended_event
        assert not shown(app, "#start-run") and not shown(app, "#show-previous")


async def test_start_asks_before_a_run_planned_for_other_hardware(tiny_model_dir, tmp_path):
    if detect().gpus:
        pytest.skip("this machine has a GPU: the question names it")
    run_dir = export(tmp_path, tiny_model_dir, "elsewhere", 1, None, "--hardware", "rtx4080-16g")
    app = SftTuiApp(state=WizardState(run_dir=run_dir))
    async with app.run_test(size=(100, 40)) as pilot:
        app.go_to("run")
        await settle(app, pilot)
        await press(app, pilot, "#start-run")
        await settle(app, pilot)
        assert isinstance(app.screen, ConfirmOtherHardware)
        question = str(app.screen.query_one("#confirm-text", Label).render())
        assert question.startswith("This run was planned for 1 x NVIDIA GeForce RTX 4080 (16 GiB) with bf16; "
                                   "this machine has no GPU.")
        await pilot.press("escape")  # cancel: nothing starts
        await settle(app, pilot)
        assert not (run_dir / "run.pid").exists() and not app.query("RunMonitor")

        await press(app, pilot, "#start-run")
        await settle(app, pilot)
        await press(app, pilot, "#yes")
        await settle(app, pilot)
        await wait_until(pilot, lambda: app.query("RunMonitor") and app.query_one("RunMonitor").ended_event, "the run")
        ended = app.query_one("RunMonitor").ended_event
        assert ended.kind == "failed" and ended.text.startswith("This machine cannot train in bf16")
        assert "This machine cannot train in bf16" in str(app.query_one("#diagnosis-text", Static).render())


async def test_the_switch_retries_a_nan_run_by_itself_and_the_monitor_follows_the_retry(tiny_model_dir, tmp_path):
    from textual.widgets import Select

    run_dir = export(tmp_path, tiny_model_dir, "nan", 2, None, "--set", "learning_rate=1e30", "--set", "max_grad_norm=0",
                     "--set", "logging_nan_inf_filter=false", "--set", "save_steps=1")
    app = SftTuiApp(state=WizardState(run_dir=run_dir))
    async with app.run_test(size=(100, 40)) as pilot:
        app.go_to("run")
        await settle(app, pilot)
        app.query_one("#auto-retry", Select).value = 1  # "retry by itself up to 1 time"
        await press(app, pilot, "#start-run")

        def retry_ended():
            monitors = app.query("RunMonitor")
            return monitors and monitors.first().run_dir.name == "nan-retry1" and monitors.first().ended_event

        await wait_until(pilot, retry_ended, "the retry started by itself, followed to its end")
        await wait_until(pilot, lambda: any("no automatic retry is left" in str(n.message) for n in app._notifications),
                         "the chain's end said")
        said = [str(n.message) for n in app._notifications]
        assert ("run nan ended: the loss went NaN at step 3; started retry nan-retry1 from checkpoint-1 with "
                "learning_rate 5e+29, max_grad_norm 1") in said, said
        assert len(app.query("RunMonitor")) == 1
    assert sorted(p.name for p in run_dir.parent.iterdir()) == ["nan", "nan-retry1"]
