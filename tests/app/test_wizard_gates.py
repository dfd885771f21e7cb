"""What the QA walkthrough found, driven by the Pilot: a bundle exported before the plan changed
is not started as if it were current, no step is left with a value it cannot use (a GPU count,
a model), focus is where the user types next, the app speaks of its own controls rather than
the CLI's flags, and the drop-errors choice says yes or no in words."""

from __future__ import annotations

from pathlib import Path

from textual.widgets import Button, Input

from tests.app.test_snapshots import wizard_state
from tests.support.pilot import fill_to_review, focus_is, notes, settle, submit, text_of
from tui.app.main import SftTuiApp

REPO = Path(__file__).resolve().parents[2]
S2 = str(REPO / "tests" / "data" / "s2")


def active(app) -> str:
    return app.query_one("#steps").active


# --- 1. a bundle exported before the plan changed ---------------------------------------------------


async def test_the_run_step_does_not_start_a_bundle_of_an_older_plan(tmp_path, monkeypatch):
    import tui.runs.lifecycle

    started = []

    def fake_start(run_dir, force=False):
        started.append(Path(run_dir))
        raise tui.runs.lifecycle.RunError("not started in this test")

    monkeypatch.setattr(tui.runs.lifecycle, "start_run", fake_start)
    app = SftTuiApp(state=wizard_state(env=""))
    async with app.run_test(size=(100, 40)) as pilot:
        await fill_to_review(app, pilot, "qwen2.5-0.5b", S2, tmp_path, "first")
        app.query_one("#export", Button).press()
        await settle(app, pilot)
        first = tmp_path / "runs" / "first"
        assert app.state.run_dir == first and "Wrote" in text_of(app, "#export-result")

        app.go_to("plan")
        await settle(app, pilot)
        await submit(app, pilot, "#plan-set", "lora_rank=8")
        assert app.state.plan.settings["lora_rank"] == 8
        app.go_to("review")
        await settle(app, pilot)
        result = text_of(app, "#export-result")
        assert "Wrote" not in result and f"The plan changed since {first} was exported" in result

        app.go_to("run")
        await settle(app, pilot)
        assert active(app) == "run"
        assert text_of(app, "#run-intro") == f"The plan changed since {first} was exported: export again (step 5)."
        assert not app.query_one("#start-run").display
        old = app.query_one("#start-stale", Button)
        assert old.display and str(old.label) == f"Start the old bundle {first} anyway"
        app.query_one("#run-step").start()  # Start by any other way says the same
        await settle(app, pilot)
        assert not started and "The plan changed since" in notes(app)
        old.press()  # the old bundle, asked for by name
        await settle(app, pilot)
        assert started == [first]

        app.go_to("review")  # exported again: the new bundle is the current one
        await settle(app, pilot)
        app.query_one("#run-name", Input).value = "second"
        app.query_one("#export", Button).press()
        await settle(app, pilot)
        app.go_to("run")
        await settle(app, pilot)
        second = tmp_path / "runs" / "second"
        assert app.query_one("#start-run").display and not app.query_one("#start-stale").display
        assert text_of(app, "#run-intro") == f"Run directory: {second}"
        assert "lora_rank: 8" in (second / "train.yaml").read_text()
        assert "lora_rank: 8" not in (first / "train.yaml").read_text()


# --- 2. and 3. no step is left with a value it cannot use ------------------------------------------


async def test_an_invalid_gpu_count_keeps_the_wizard_on_the_hardware_step():
    from textual.widgets import Select

    sentence = "GPUs: a GPU count is a whole number from 1 to 64 per node, or empty for the profile's"
    app = SftTuiApp(state=wizard_state())
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(app, pilot)
        app.query_one("#hardware-profile", Select).value = "rtx3060-12g"
        await settle(app, pilot)
        box = app.query_one("#gpu-count", Input)
        box.focus()
        await pilot.press("8", "0")
        await settle(app, pilot)
        assert text_of(app, "#profile-note") == sentence
        for move in ("ctrl+n", "button", "step bar", "palette"):
            if move == "button":
                app.query_one("#hardware-next", Button).press()
            elif move == "step bar":
                await pilot.click("#--content-tab-model")
            elif move == "palette":
                app.action_export()
            else:
                await pilot.press(move)
            await settle(app, pilot)
            assert active(app) == "hardware", move
            await focus_is(app, pilot, box, f"after {move} ")  # typing goes on in the box to fix
        assert notes(app).count(sentence) == 4 and app.state.gpus is None
        await pilot.press("backspace", "backspace", "2")  # a count: the wizard goes on, for 2 GPUs
        await pilot.press("ctrl+n")
        await settle(app, pilot)
        assert active(app) == "model" and app.state.gpus == 2


async def test_an_unknown_model_keeps_the_wizard_on_the_model_step():
    app = SftTuiApp(state=wizard_state())
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(app, pilot)
        await pilot.press("ctrl+n")
        await settle(app, pilot)
        box = app.query_one("#model-input", Input)
        assert active(app) == "model"
        await focus_is(app, pilot, box)
        await pilot.press(*"qwen2.5-7")
        await settle(app, pilot)
        assert "unknown model 'qwen2.5-7': did you mean qwen2.5-7b" in text_of(app, "#model-info")
        for move in ("ctrl+n", "button", "step bar"):
            if move == "button":
                app.query_one("#model-next", Button).press()
            elif move == "step bar":
                await pilot.click("#--content-tab-plan")
            else:
                await pilot.press(move)
            await settle(app, pilot)
            assert active(app) == "model", move
            await focus_is(app, pilot, box, f"after {move} ")
        assert notes(app).count("unknown model 'qwen2.5-7': did you mean qwen2.5-7b") == 3
        await pilot.press("b")  # typed on in the box that kept the focus
        await settle(app, pilot)
        assert app.state.model == "qwen2.5-7b", box.value
        await pilot.press("ctrl+n")
        await settle(app, pilot)
        assert active(app) == "dataset"

        app.go_to("model")  # a resolved model typed over: the next steps wait for the new one
        await settle(app, pilot)
        box.value = "qwen2.5-7"
        await settle(app, pilot)
        await pilot.press("ctrl+n")
        await settle(app, pilot)
        assert active(app) == "model" and app.state.model_refusal().startswith("unknown model 'qwen2.5-7'")


# --- 4. focus where the user types next -------------------------------------------------------------


async def test_focus_is_where_the_user_types_next_and_enter_in_the_run_name_exports(tmp_path):
    from tui.app.wizard.widgets import Confirm

    app = SftTuiApp(state=wizard_state(env=""))
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(app, pilot)
        await pilot.press("ctrl+n")
        await settle(app, pilot)
        await focus_is(app, pilot, "model-input")
        await pilot.press(*"qwen2.5-0.5b")
        await settle(app, pilot)
        await pilot.press("ctrl+n")  # the dataset step opens on its box
        await settle(app, pilot)
        box = app.query_one("#dataset-input", Input)
        assert active(app) == "dataset"
        await focus_is(app, pilot, box)
        await pilot.press(*S2[:-1])
        await pilot.press("ctrl+n")  # refused (not validated yet): the box keeps the focus and the text
        await settle(app, pilot)
        assert active(app) == "dataset" and "validate the dataset first" in notes(app)
        await focus_is(app, pilot, box)
        await pilot.press(S2[-1], "enter")  # typing goes on
        await settle(app, pilot)
        assert box.value == S2 and "20 valid rows of 20" in text_of(app, "#dataset-stats")
        app.go_to("plan")
        await settle(app, pilot)
        app.go_to("review")
        await settle(app, pilot)
        await focus_is(app, pilot, "run-name")  # empty: typed first, Enter exports
        app.query_one("#out-dir", Input).value = str(tmp_path)
        await pilot.press(*"typed-name", "enter")
        await settle(app, pilot)
        assert app.state.run_dir == tmp_path / "runs" / "typed-name"
        assert (app.state.run_dir / "train.yaml").is_file()

        app.go_to("plan")  # a plan that does not fit: Enter asks first, as Export does
        await settle(app, pilot)
        await submit(app, pilot, "#plan-set", "finetuning_type=full")
        await submit(app, pilot, "#plan-set", "per_device_train_batch_size=1024")
        assert not app.state.plan.fits
        app.go_to("review")
        await settle(app, pilot)
        name = app.query_one("#run-name", Input)
        name.value = ""
        name.focus()
        await pilot.press(*"too-big", "enter")
        await settle(app, pilot)
        assert isinstance(app.screen, Confirm)
        await pilot.press("escape")
        await settle(app, pilot)
        assert not (tmp_path / "runs" / "too-big").exists()


# --- 5. the app's words, not the CLI's flags ---------------------------------------------------------


async def test_the_app_names_its_own_controls_not_the_cli_s_flags(tmp_path, monkeypatch):
    import tui.runs.lifecycle
    from tui.app.wizard.widgets import Confirm
    from tui.runs.preflight import check_environment

    # Start with no environment named and no llamafactory-cli on PATH: the real preflight message
    monkeypatch.setattr(tui.runs.lifecycle, "start_run", lambda run_dir, force=False: check_environment(None, {"PATH": ""}))
    app = SftTuiApp(state=wizard_state(env=""))
    async with app.run_test(size=(100, 40)) as pilot:
        await fill_to_review(app, pilot, "qwen2.5-0.5b", S2, tmp_path, "same")
        app.query_one("#train-env", Input).value = ""
        app.query_one("#export", Button).press()
        await settle(app, pilot)
        run_dir = tmp_path / "runs" / "same"
        edited = (run_dir / "train.yaml").read_text() + "# my edit\n"
        (run_dir / "train.yaml").write_text(edited)

        app.query_one("#export", Button).press()  # the same name again
        await settle(app, pilot)
        result = text_of(app, "#export-result")
        assert "choose another run name in step 5, or Update it" in result
        assert "--name" not in result and "--force" not in result
        assert isinstance(app.screen, Confirm) and "Update it" in str(app.screen.query_one("#yes", Button).label)
        await pilot.click("#no")  # choose another name: nothing written, the name box to type in
        await settle(app, pilot)
        assert (run_dir / "train.yaml").read_text() == edited
        await focus_is(app, pilot, "run-name")
        app.query_one("#export", Button).press()
        await settle(app, pilot)
        await pilot.click("#yes")  # update it, as export --force: the edited file is kept
        await settle(app, pilot)
        assert (run_dir / "train.yaml").read_text() == edited
        assert (run_dir / "train.yaml.sft-tui-new").is_file()
        assert text_of(app, "#export-result").startswith(f"Updated {run_dir}")

        app.go_to("run")
        await settle(app, pilot)
        await pilot.click("#start-run")
        await settle(app, pilot)
        said = notes(app)
        assert "llamafactory-cli is not on PATH" in said and "set the training environment in step 5" in said
        assert "--env" not in said

        app.go_to("plan")
        await settle(app, pilot)
        await submit(app, pilot, "#plan-set", "4096")
        problem = text_of(app, "#set-problem")
        assert problem == "'4096': expected key=value, with a LLaMA-Factory argument name as key"
        assert "--set" not in problem and "KEY=VALUE" not in problem


# --- 6. the drop-errors choice in words --------------------------------------------------------------


async def test_the_drop_errors_choice_says_yes_or_no():
    from textual.widgets import Checkbox

    from tui.common.profiles import load_profiles
    from tui.models.resolve import resolve_model

    app = SftTuiApp(state=wizard_state(model="qwen2.5-0.5b", model_info=resolve_model("qwen2.5-0.5b", load_profiles())))
    async with app.run_test(size=(100, 32)) as pilot:
        app.go_to("dataset")
        await settle(app, pilot)
        await focus_is(app, pilot, "dataset-input")
        await pilot.press(*str(REPO / "tests" / "data" / "s2-broken" / "train.jsonl"), "enter")
        await settle(app, pilot)
        drop = app.query_one("#drop-errors", Checkbox)
        assert drop.display and str(drop.label).startswith("Drop the rows with errors: no")
        await pilot.press("ctrl+n")  # refused: focus on the choice that lets the wizard go on
        await settle(app, pilot)
        assert active(app) == "dataset"
        await focus_is(app, pilot, drop)
        await pilot.press("space")
        await pilot.pause()
        assert app.state.drop_errors and str(drop.label).startswith("Drop the rows with errors: yes")
        await pilot.press("space")
        await pilot.pause()
        assert not app.state.drop_errors and str(drop.label).startswith("Drop the rows with errors: no")
