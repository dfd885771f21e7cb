"""The History screen (`sft-tui history --app`): the runs the history recorded from their files, in a
DataTable, estimated against measured; enter opens a run's monitor, two marked runs go to compare."""

from __future__ import annotations

from textual.widgets import DataTable, Static

from tests.runs.recorded import recorded_run
from tui.app.compare import CompareScreen
from tui.app.history import HistoryApp, HistoryScreen, RunScreen


async def settle(pilot) -> None:
    await pilot.pause(0.3)
    await pilot.app.workers.wait_for_complete()
    await pilot.pause(0.2)


async def test_the_history_screen_lists_runs_opens_one_and_compares_two(tmp_path):
    finished, oom = recorded_run(tmp_path, "finished"), recorded_run(tmp_path, "oom")
    app = HistoryApp(finished.parent)  # records the runs of that folder first, as `history RUNS_DIR` does
    async with app.run_test(size=(140, 30)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, HistoryScreen)
        table = screen.query_one(DataTable)
        assert table.row_count == 2
        rows = [table.get_row_at(i) for i in range(2)]
        by_outcome = {row[2]: row for row in rows}
        assert set(by_outcome) == {"finished", "failed"}
        assert by_outcome["finished"][1:5] == ["tiny-lora", "finished", "CPU", "lora"]
        assert by_outcome["finished"][5] == "0.00 / 0.00" and by_outcome["finished"][7] == "- / 0.2 s"
        assert str(screen.query_one("#history-title", Static).render()).startswith("2 runs in the history")

        await pilot.press("space", "down", "space")
        assert [table.get_row_at(i)[0] for i in range(2)] == ["•", "•"]
        await pilot.press("c")
        await settle(pilot)
        assert isinstance(app.screen, CompareScreen)
        assert sorted(str(p) for p in app.screen.run_dirs) == sorted([str(finished), str(oom)])
        await pilot.press("escape")
        await pilot.pause(0.2)
        assert app.screen is screen

        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, RunScreen) and str(app.screen.run_dir) == screen.runs[1]["run_dir"]
        await pilot.press("escape")
        await pilot.pause(0.2)
        assert app.screen is screen


async def test_the_screen_takes_the_same_filters_as_the_command(tmp_path):
    finished = recorded_run(tmp_path, "finished")
    for hardware, rows in (("cpu", 1), ("rtx", 0)):
        app = HistoryApp(finished.parent, hardware=hardware)
        async with app.run_test(size=(120, 20)) as pilot:
            await settle(pilot)
            assert app.screen.query_one(DataTable).row_count == rows


async def test_an_empty_history_says_what_records_runs(tmp_path):
    app = HistoryApp()
    async with app.run_test(size=(120, 20)) as pilot:
        await settle(pilot)
        assert "no runs in the history yet" in str(app.screen.query_one("#history-title", Static).render())


def test_snapshot_of_the_history_screen(snap_compare, tmp_path, monkeypatch):
    finished = recorded_run(tmp_path, "finished")
    recorded_run(tmp_path, "oom")
    monkeypatch.chdir(tmp_path)

    async def run_before(pilot):
        await settle(pilot)

    assert snap_compare(HistoryApp(finished.parent), terminal_size=(120, 16), run_before=run_before)


async def test_a_run_watched_in_the_monitor_screen_is_recorded_at_its_end(tmp_path):
    from tui.app.monitor import MonitorScreen
    from tui.history.store import History

    run_dir = recorded_run(tmp_path, "finished")

    class Monitor(HistoryApp):
        def on_mount(self) -> None:
            self.push_screen(MonitorScreen(run_dir))

    app = Monitor()
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(30):
            await settle(pilot)
            if History().runs():
                break
    (row,) = History().runs()
    assert (row["run_dir"], row["outcome"], row["steps_done"]) == (str(run_dir), "finished", 8)
