"""The wizard's hardware step on this machine's real detection, driven by the Pilot."""

from __future__ import annotations

import sys

from textual.widgets import DataTable, Static

from tui.app.main import SftTuiApp


async def test_hardware_step_lists_this_machine():
    app = SftTuiApp()
    async with app.run_test(size=(100, 32)) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        table = app.query_one("#devices", DataTable)
        assert table.row_count >= 1
        last = table.get_row_at(table.row_count - 1)
        assert last[2] == "cpu"  # the CPU is always listed, last
        summary = str(app.query_one("#summary", Static).render())
        assert "CPU with" in summary
        await pilot.press("ctrl+q")
    assert not {"torch", "transformers", "llamafactory"} & set(sys.modules)
