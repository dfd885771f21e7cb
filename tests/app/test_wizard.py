"""The whole wizard driven by the Pilot for scenario S2 (a small alpaca dataset with val/test
splits, the tiny model as a local model, this machine's CPU): every step, an edit on the plan
step, export, `sft-tui check` on the bundle, and the run step following a real run to the end."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from textual.widgets import Button, Checkbox, DataTable, Input, Label

from tests.app.test_snapshots import wizard_state
from tests.support.llamafactory import BIN, SAMPLE_ALPACA_ROWS, offline_env, write_jsonl
from tests.support.pilot import (
    fill_to_review,
    focus_is,
    notes,
    press,
    settle,
    text_of,
    type_dataset,
    until,
)
from tui.app.main import SftTuiApp
from tui.app.wizard.widgets import Confirm

HEAVY = {"torch", "transformers", "llamafactory"}


def s2_data(root):
    data = root / "data"
    data.mkdir()
    write_jsonl(data / "train.jsonl", SAMPLE_ALPACA_ROWS)
    write_jsonl(data / "val.jsonl", SAMPLE_ALPACA_ROWS[:2])
    write_jsonl(data / "test.jsonl", SAMPLE_ALPACA_ROWS[2:4])
    return data


@pytest.mark.llamafactory
async def test_the_wizard_goes_from_hardware_to_a_finished_run(tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    data = s2_data(tmp_path)
    app = SftTuiApp()
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(app, pilot)
        assert app.query_one("#devices", DataTable).row_count >= 1  # 1 Hardware
        await pilot.press("ctrl+n")  # 2 Model: typed into the focused input
        await focus_is(app, pilot, "model-input")
        await pilot.press(*str(tiny_model_dir))
        await settle(app, pilot)
        info = text_of(app, "#model-info")
        assert "qwen2" in info and "weights     complete" in info and "template    qwen" in info
        await pilot.press("ctrl+n")  # 3 Dataset
        await focus_is(app, pilot, "dataset-input")
        await pilot.press(*str(data), "enter")
        await settle(app, pilot)
        stats = text_of(app, "#dataset-stats")
        assert "20 valid rows of 20" in stats and "train 16" in stats and "no errors" in stats
        await pilot.press("ctrl+n")  # 4 Plan
        await settle(app, pilot)
        assert "fits" in text_of(app, "#plan-verdict")
        settings = app.query_one("#plan-settings", DataTable)
        assert settings.get_row("per_device_train_batch_size")[2] == "fitted"
        await focus_is(app, pilot, "plan-next")  # a step opens on its primary button
        app.query_one("#plan-set", Input).focus()
        await pilot.press(*"num_train_epochs=1", "enter")  # an edit re-plans at once
        await settle(app, pilot)
        assert [str(cell) for cell in settings.get_row("num_train_epochs")[1:3]] == ["1", "user"]
        assert app.state.plan.settings["num_train_epochs"] == 1
        await pilot.press("ctrl+n")  # 5 Review
        await settle(app, pilot)
        app.query_one("#out-dir", Input).value = str(tmp_path / "out")
        app.query_one("#run-name", Input).value = "s2-wizard"
        await pilot.pause()
        assert "Differs from the small-dataset recipe" in text_of(app, "#plan-diff")
        await press(app, pilot, "#export")
        await settle(app, pilot)
        run_dir = tmp_path / "out" / "runs" / "s2-wizard"
        assert app.state.run_dir == run_dir and (run_dir / "run_sft.sh").is_file()
        assert json.loads((run_dir / "plan.json").read_text())["plan"]["settings"]["num_train_epochs"] == 1
        await pilot.press("ctrl+n")  # 6 Run
        await settle(app, pilot)
        assert app.query_one("#steps").active == "run", (app.focused, app.screen)
        await press(app, pilot, "#start-run")
        await settle(app, pilot)
        # follow the real run to its end: seconds on an idle machine, minutes on a busy one
        await until(pilot, lambda: app.query("RunMonitor") and app.query_one("RunMonitor").ended_event is not None,
                    "the real run to end", 900)
        assert app.query("RunMonitor"), [n.message for n in app._notifications]
        monitor = app.query_one("RunMonitor")
        assert monitor.ended_event is not None and monitor.ended_event.kind == "finished", monitor.ended_event
        assert monitor.curve.losses and "finished" in text_of(app, "#run-status")
        # after training: a prompt answered by the base and the fine-tuned model, side by side
        assert "sft-tui merge" in text_of(app, "#serve-commands")
        app.query_one("#try-prompt", Input).value = "Write a function that adds two numbers."
        app.query_one("#try-prompt", Input).focus()
        await pilot.press("enter")
        await settle(app, pilot)
        assert text_of(app, "#answer-base").startswith("base") and text_of(app, "#answer-tuned").startswith("fine-tuned")
        # and the test split evaluated into a table
        app.query_one("#evaluate").press()
        await settle(app, pilot)
        assert "test split (2 rows)" in text_of(app, "#eval-metrics"), text_of(app, "#eval-metrics")
        assert app.query_one("#eval-rows", DataTable).row_count == 2
        await pilot.press("ctrl+q")
    assert not HEAVY & set(sys.modules), "the TUI process imported a training library"
    check = subprocess.run([str(BIN / "sft-tui"), "check", str(run_dir)], capture_output=True, text=True,
                           env=offline_env(), timeout=300)
    assert check.returncode == 0, check.stdout + check.stderr


# --- the one dataset gate, and what the dataset step shows ---------------------------------------

REPO = Path(__file__).resolve().parents[2]
BROKEN = REPO / "tests" / "data" / "s2-broken" / "train.jsonl"


def gated_app(**changes) -> SftTuiApp:
    """The app with the fake hardware and, unless `model` says otherwise, a resolved model: the
    steps after the model need one."""
    from tui.common.profiles import load_profiles
    from tui.models.resolve import resolve_model

    changes.setdefault("model", "qwen2.5-0.5b")
    if changes["model"]:
        changes.setdefault("model_info", resolve_model(changes["model"], load_profiles()))
    return SftTuiApp(state=wizard_state(**changes))


async def test_no_way_past_the_dataset_step_with_errors_until_they_are_dropped(tmp_path):
    app = gated_app()
    async with app.run_test(size=(100, 32)) as pilot:
        await type_dataset(app, pilot, str(BROKEN))
        assert "1 error" in text_of(app, "#dataset-stats")
        await pilot.press("ctrl+n")
        await settle(app, pilot)
        assert app.query_one("#steps").active == "dataset"
        assert "the dataset has 1 error" in notes(app) and "'Drop the rows with errors'" in notes(app)
        app.query_one("#dataset-next", Button).press()
        await settle(app, pilot)
        assert app.query_one("#steps").active == "dataset"
        await pilot.click("#--content-tab-review")  # the step bar goes through the same gate
        await settle(app, pilot)
        assert app.query_one("#steps").active == "dataset"
        app.query_one("#drop-errors", Checkbox).value = True
        await pilot.pause()
        await pilot.press("ctrl+n")
        await settle(app, pilot)
        assert app.query_one("#steps").active == "plan"


async def test_a_missing_dataset_path_shows_only_the_error_and_goes_nowhere(tmp_path):
    missing = tmp_path / "nothing-here.jsonl"
    app = gated_app()
    async with app.run_test(size=(100, 32)) as pilot:
        await type_dataset(app, pilot, str(REPO / "tests" / "data" / "s2"))
        await pilot.press("ctrl+n")
        await settle(app, pilot)
        assert app.query_one("#steps").active == "plan"  # a plan was made for the good files
        await type_dataset(app, pilot, str(missing))
        stats = text_of(app, "#dataset-stats")
        assert str(missing) in stats and "valid rows" not in stats and "no errors" not in stats
        await pilot.press("ctrl+n")
        await settle(app, pilot)
        assert app.query_one("#steps").active == "dataset" and app.state.plan is None


async def test_dropping_the_rows_with_errors_exports_a_cleaned_copy(tmp_path):
    data = tmp_path / "mine.jsonl"
    shutil.copy(BROKEN, data)
    before = data.read_bytes()
    app = gated_app(hardware="rtx3060-12g", env="")
    async with app.run_test(size=(100, 32)) as pilot:
        app.go_to("model")
        await settle(app, pilot)
        app.query_one("#model-input", Input).value = "qwen2.5-0.5b"
        await settle(app, pilot)
        await type_dataset(app, pilot, str(data))
        app.query_one("#drop-errors", Checkbox).value = True
        await pilot.pause()
        app.go_to("plan")
        await settle(app, pilot)
        app.go_to("review")
        await settle(app, pilot)
        app.query_one("#out-dir", Input).value = str(tmp_path / "out")
        app.query_one("#run-name", Input).value = "dropped"
        await settle(app, pilot)
        app.query_one("#export", Button).press()
        await settle(app, pilot)
        run_dir = tmp_path / "out" / "runs" / "dropped"
        assert app.state.run_dir == run_dir, text_of(app, "#export-result")
    copy = run_dir / "data" / "mine.jsonl"
    assert json.loads((run_dir / "dataset_info.json").read_text())["mine"]["file_name"] == "data/mine.jsonl"  # relative: it moves with the bundle
    assert len(copy.read_text().splitlines()) == len(before.splitlines()) - 1 and data.read_bytes() == before


# --- a plan that does not fit, dialogs --------------------------------------------------------------


async def test_exporting_a_plan_that_does_not_fit_asks_first_and_says_by_how_much(tmp_path):
    app = gated_app(hardware="rtx3060-12g", overrides={"finetuning_type": "full"})
    async with app.run_test(size=(100, 32)) as pilot:
        await fill_to_review(app, pilot, "qwen2.5-7b", str(REPO / "tests" / "data" / "s2"), tmp_path, "too-big")
        estimate = app.state.plan.to_json()["estimate"]
        over = estimate["per_device_gib"] - estimate["usable_gib"]
        assert "DOES NOT FIT" in text_of(app, "#review-fit") and f"{over:.1f} GiB over" in text_of(app, "#review-fit")
        app.query_one("#export", Button).press()
        await settle(app, pilot)
        assert isinstance(app.screen, Confirm)
        question = str(app.screen.query_one(Label).render())
        assert f"needs {estimate['per_device_gib']:.1f} GiB of the {estimate['usable_gib']:.1f} GiB usable per GPU" in question
        await pilot.press("escape")  # go back: nothing written
        await settle(app, pilot)
        assert app.state.run_dir is None and not (tmp_path / "runs").exists()
        app.query_one("#export", Button).press()
        await settle(app, pilot)
        await pilot.press("y")
        await settle(app, pilot)
        assert app.state.run_dir == tmp_path / "runs" / "too-big"


async def test_a_long_question_wraps_inside_its_dialog():
    from tui.app.monitor import ConfirmStop

    app = gated_app()
    async with app.run_test(size=(100, 32)) as pilot:
        for dialog in (ConfirmStop(), Confirm("word " * 40, "Yes")):
            app.push_screen(dialog)
            await pilot.pause()
            label, box = dialog.query_one(Label), dialog.query_one("#confirm")
            assert label.outer_size.width <= box.content_size.width and label.size.height >= 2
            await pilot.press("escape")
            await pilot.pause()


# --- quitting -------------------------------------------------------------------------------------


async def test_quitting_with_choices_not_exported_asks_first():
    app = gated_app(model="")
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(app, pilot)
        app.state.model = "qwen2.5-0.5b"  # a choice, not exported
        app.query_one("#devices", DataTable).focus()
        await pilot.press("q")  # from a table: used to quit at once
        await pilot.pause()
        assert isinstance(app.screen, Confirm) and "not exported" in str(app.screen.query_one(Label).render())
        await pilot.press("escape")  # stay: every choice kept
        await pilot.pause()
        assert app.return_code is None and app.state.model == "qwen2.5-0.5b"
        await pilot.press("ctrl+q")
        await pilot.pause()
        await pilot.press("y")
        await pilot.pause()
        assert app.return_code == 0


async def test_quitting_with_nothing_chosen_is_at_once_and_ctrl_c_says_how_in_plain_words():
    app = gated_app(model="")
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(app, pilot)
        app.query_one("#devices", DataTable).focus()
        await pilot.press("ctrl+c")
        await pilot.pause()
        assert "Press ctrl+q to quit" in notes(app) and "[b]" not in notes(app)
        await pilot.press("q")
        await pilot.pause()
        assert app.return_code == 0


# --- focus, the problems table, the command palette ---------------------------------------------


async def test_each_step_opens_on_its_primary_button_or_the_box_it_needs():
    app = gated_app(model="")
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(app, pilot)
        await focus_is(app, pilot, "hardware-next")
        await pilot.press("ctrl+n")
        await settle(app, pilot)
        await focus_is(app, pilot, "model-input")  # nothing chosen yet: typing starts at once
        await pilot.press(*"qwen2.5-0.5b")
        await settle(app, pilot)
        await type_dataset(app, pilot, str(REPO / "tests" / "data" / "s2"))
        # Review opens on the run name while it is empty (Enter there exports), then on Export
        for step, primary in (("model", "model-next"), ("plan", "plan-next"), ("review", "run-name"),
                              ("dataset", "dataset-next")):
            app.go_to(step)
            await settle(app, pilot)
            await focus_is(app, pilot, primary, f"in {step} ")
        app.query_one("#run-name", Input).value = "named"
        app.go_to("review")
        await settle(app, pilot)
        await focus_is(app, pilot, "export")


async def test_the_problem_under_the_cursor_is_shown_whole():
    app = gated_app()
    async with app.run_test(size=(80, 24)) as pilot:
        await type_dataset(app, pilot, str(BROKEN))
        table = app.query_one("#dataset-problems", DataTable)
        table.focus()
        await pilot.press("down")  # moving the cursor is enough: no Enter needed
        await pilot.pause()
        second = app.query_one("#dataset-step").problem_rows[str(table.coordinate_to_cell_key((1, 0)).row_key.value)]
        assert second[1].message in text_of(app, "#problem-row")


async def test_the_command_palette_holds_the_app_s_own_actions():
    app = gated_app()
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(app, pilot)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        assert {"Next step", "Back", "Try the demo", "Export"} <= set(titles), titles
        assert titles.count("Quit") <= 1
        command = next(c for c in app.get_system_commands(app.screen) if c.title == "Next step")
        await app.run_action("command_palette")
        await pilot.pause()
        await pilot.press(*"Next step")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.query_one("#steps").active == "model", command


async def test_the_review_s_environment_follows_the_hardware_as_export_s_does():
    from tui.bundle.environment import default_env

    app = gated_app(env="")
    async with app.run_test(size=(100, 32)) as pilot:
        await type_dataset(app, pilot, str(REPO / "tests" / "data" / "s2"))
        app.go_to("review")
        await settle(app, pilot)
        assert app.query_one("#train-env", Input).value == (default_env("detected")[0] or "")
        app.state.hardware = "rtx3060-12g"  # planning for another machine: its PATH, not this venv
        app.go_to("review")
        await settle(app, pilot)
        app.go_to("dataset")
        await settle(app, pilot)
        app.go_to("review")
        await settle(app, pilot)
        assert app.query_one("#train-env", Input).value == ""
