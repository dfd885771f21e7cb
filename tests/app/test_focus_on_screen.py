"""Focus is never on a widget off screen: at 80x24 each wizard step opens with its focused control
drawn whole (step 1's Next included), and the monitor's search box shows where it can be typed in."""

from __future__ import annotations

import pytest

from tests.app.test_wizard import gated_app
from tests.runs.recorded import recorded_run
from tests.support.pilot import on_screen, settle, type_dataset, until
from tui.app.main import SftTuiApp

SMALL = (80, 24)


async def test_step_1_opens_on_its_next_button_in_view():
    app = gated_app()
    async with app.run_test(size=SMALL) as pilot:
        await until(pilot, lambda: app.focused is not None and app.focused.id == "hardware-next", "focus on Next")
        await until(pilot, lambda: on_screen(app), f"Next drawn whole on the screen ({app.focused.region})", 20)
        assert on_screen(app, app.query_one("#summary"))  # the step still opens at its top


@pytest.mark.parametrize("step", ["model", "dataset", "plan", "review"])
async def test_every_step_opens_with_its_focus_in_view(step):
    app = gated_app()
    async with app.run_test(size=SMALL) as pilot:
        await settle(app, pilot)
        await type_dataset(app, pilot, "tests/data/s2")
        app.go_to(step)
        await until(pilot, lambda: app.focused is not None and app.query_one("#steps").active == step
                    and app.focused in app.query_one(f"#{step}-step").query("*"), f"focus inside {step}")
        await until(pilot, lambda: on_screen(app), f"the focused {app.focused} drawn whole on the screen", 20)


async def test_the_monitors_search_box_is_in_view(tmp_path, monkeypatch):
    run_dir = recorded_run(tmp_path, "finished")
    monkeypatch.chdir(tmp_path)
    app = SftTuiApp(monitor=run_dir)
    async with app.run_test(size=SMALL) as pilot:
        await until(pilot, lambda: app.screen.query("RunMonitor") and app.screen.query_one("RunMonitor").ended_event,
                    "the recorded run read")
        await pilot.press("slash")
        await until(pilot, lambda: app.focused is not None and app.focused.id == "log-search", "focus in the search box")
        await until(pilot, lambda: on_screen(app), f"the search box drawn whole on the screen ({app.focused.region})", 20)
        await pilot.press(*"loss", "enter")
        await settle(app, pilot)
        assert app.screen.query_one("RunMonitor").search == "loss"
