"""The compare screen (`sft-tui compare RUN_DIR... --app`): two recorded runs' loss curves on one
chart, the settings that differ beside it; and one SVG snapshot at 100x32."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Static

from tests.runs.recorded import recorded_run
from tui.app.compare import CompareApp, CompareScreen


def two_runs(tmp_path: Path) -> tuple[Path, Path]:
    """The recorded finished run (trainer_log.jsonl, 8 steps) and the recorded OOM (its console only,
    4 of 12 steps), the second with another learning rate in its train.yaml and its own output directory."""
    finished = recorded_run(tmp_path, "finished")
    oom = recorded_run(tmp_path, "oom")
    (oom / "train.yaml").write_text(f"output_dir: {tmp_path / 'saves' / 'oom'}\nlearning_rate: 1.0e-4\n")
    return finished, oom


async def settle(pilot) -> None:
    await pilot.pause(0.3)
    await pilot.app.workers.wait_for_complete()
    await pilot.pause(0.2)


def text(screen, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


async def test_two_runs_curves_on_one_chart_and_the_setting_that_differs(tmp_path):
    finished, oom = two_runs(tmp_path)
    app = CompareApp([finished, oom])
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, CompareScreen)
        runs = screen.comparison.runs
        assert [run.name for run in runs] == ["finished", "oom"]
        assert runs[0].loss_curve == [(2.0, 6.2521), (4.0, 6.25), (6.0, 6.25557), (8.0, 6.23968)]
        # the console's rows are placed by epoch: 3 epochs of 4 steps, logged every step
        assert runs[1].loss_curve == [(1.0, 6.256), (2.0, 6.248), (3.0, 6.261), (4.0, 6.239), (5.0, 6.258)]
        assert text(screen, "#compare-runs").splitlines() == [
            "Runs", "━━ finished", "   finished, steps 8/8, loss 6.2397", "━━ oom", "   failed, steps 4/12, loss 6.2580"]
        assert text(screen, "#compare-settings").splitlines() == [
            "", "Settings that differ (1)", "learning_rate", "  ━ 3e-05", "  ━ 0.0001"]
        shown = app.export_screenshot()
        assert "finished" in shown and "oom" in shown and "step" in shown  # the legend and the x axis

        (oom / "train.yaml").write_text(f"output_dir: {tmp_path / 'saves' / 'oom'}\nlearning_rate: 3.0e-5\n")
        await pilot.press("r")
        await settle(pilot)
        assert text(screen, "#compare-settings").strip() == "No setting differs between these runs."


async def test_a_run_that_is_not_one_is_said_in_the_screen(tmp_path):
    finished, _ = two_runs(tmp_path)
    app = CompareApp([finished, tmp_path / "nowhere"])
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(pilot)
        assert text(app.screen, "#compare-title") == f"{tmp_path / 'nowhere'} does not exist"


def test_compare_app_flag_opens_the_screen_on_the_runs(tmp_path, monkeypatch, capsys):
    import tui.app.compare
    from tui.cli.main import main

    finished, oom = two_runs(tmp_path)
    opened = []
    monkeypatch.setattr(tui.app.compare, "run_compare_app", lambda dirs: opened.append(dirs) or 0)
    assert main(["compare", str(finished), str(oom), "--app"]) == 0
    assert opened == [[finished, oom]]
    assert capsys.readouterr().out == ""  # the table is the app's, not printed
    assert main(["compare", str(finished), str(oom), "--app", "--json"]) == 2
    assert "--app and --json: choose one" in capsys.readouterr().err


def test_snapshot_of_the_compare_screen(snap_compare, tmp_path, monkeypatch):
    finished, oom = two_runs(tmp_path)
    monkeypatch.chdir(tmp_path)

    async def run_before(pilot):
        await settle(pilot)

    assert snap_compare(CompareApp([finished, oom]), terminal_size=(100, 32), run_before=run_before)


def test_the_run_mean_loss_of_a_resumed_run_counts_only_its_own_steps(tmp_path):
    """transformers' train_loss after resuming at step N is the loss summed over steps N+1.. divided
    by the global step: compare puts it back over the steps this run trained."""
    from tui.runs.compare import read_run

    run_dir = recorded_run(tmp_path, "finished")
    assert read_run(run_dir).mean_train_loss == 6.2494
    log = run_dir / "train.log"
    log.write_text(f"Resuming from {tmp_path}/saves/earlier/checkpoint-4\n" + log.read_text())
    resumed = read_run(run_dir)
    assert resumed.resumed_at == 4 and resumed.steps_done == 8
    assert resumed.mean_train_loss == 6.2494 * 2
    assert resumed.to_json()["resumed_at"] == 4


async def test_the_monitor_compares_its_run_with_the_others_beside_it_and_escape_goes_back(tmp_path):
    from tui.app.main import SftTuiApp

    finished, oom = two_runs(tmp_path)
    app = SftTuiApp(monitor=finished)
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(pilot)
        monitor = app.screen.query_one("RunMonitor")
        monitor.focus()
        await pilot.press("c")
        await settle(pilot)
        assert isinstance(app.screen, CompareScreen)
        assert sorted(run.name for run in app.screen.comparison.runs) == ["finished", "oom"]
        await pilot.press("escape")
        await settle(pilot)
        assert not isinstance(app.screen, CompareScreen) and app.is_running


async def test_a_run_alone_in_its_folder_has_nothing_to_compare_with(tmp_path):
    from tui.app.main import SftTuiApp

    finished, oom = two_runs(tmp_path)
    import shutil

    shutil.rmtree(oom)
    app = SftTuiApp(monitor=finished)
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(pilot)
        app.screen.query_one("RunMonitor").focus()
        await pilot.press("c")
        await settle(pilot)
        assert not isinstance(app.screen, CompareScreen)
