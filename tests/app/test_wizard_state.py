"""The wizard's choices change only through WizardState's methods, and every change the plan
depends on drops the plan (one method, WizardState.invalidate_plan): deselecting a GPU in step 1
after planning for two re-plans for one, in the plan step and in what Export writes."""

from __future__ import annotations

from textual.widgets import DataTable, Input

from tests.hardware.test_hardware import FakeNVML, gpu
from tests.support.pilot import settle, text_of, type_dataset, until
from tui.app.main import SftTuiApp
from tui.app.wizard.state import WizardState
from tui.hardware.cpu import probe_cpu
from tui.hardware.device import Detection
from tui.hardware.nvidia import probe_nvidia


def two_gpus() -> Detection:
    devices, problems = probe_nvidia(FakeNVML([gpu(uuid="GPU-0"), gpu(uuid="GPU-1")]))
    return Detection(devices=[*devices, probe_cpu()], problems=problems)


async def test_deselecting_a_gpu_after_planning_re_plans_for_the_gpus_left(tmp_path):
    app = SftTuiApp(state=WizardState(detection=two_gpus(), out_dir=str(tmp_path)))
    async with app.run_test(size=(110, 40)) as pilot:
        await settle(app, pilot)
        app.go_to("model")
        await settle(app, pilot)
        app.query_one("#model-input", Input).value = "qwen2.5-0.5b"
        await until(pilot, lambda: app.state.model_info is not None, "the model profile", 60)
        await type_dataset(app, pilot, "tests/data/s2")
        app.go_to("plan")
        await until(pilot, lambda: app.state.plan is not None, "the 2-GPU plan", 60)
        await settle(app, pilot)
        assert app.state.plan.n_gpus == 2 and "2 x NVIDIA GeForce RTX 4080" in text_of(app, "#plan-verdict")

        app.go_to("hardware")
        await settle(app, pilot)
        table = app.query_one("#devices", DataTable)
        table.focus()
        table.move_cursor(row=1)  # GPU 1
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.state.gpu_indices == [0] and [d.index for d in app.state.devices()] == [0]
        assert app.state.plan is None  # the 2-GPU plan is gone with the GPU

        app.go_to("plan")
        await until(pilot, lambda: app.state.plan is not None, "the 1-GPU plan", 60)
        await settle(app, pilot)
        assert app.state.plan.n_gpus == 1
        verdict = text_of(app, "#plan-verdict")
        assert "1 x NVIDIA GeForce RTX 4080" in verdict and "2 x" not in verdict
        app.go_to("review")
        await settle(app, pilot)
        spec = app.query_one("#review-step").spec()  # what Export writes
        assert spec["hardware"]["gpus"] == 1 and spec["launch"]["gpu_ids"] == [0]


def test_the_state_has_one_fingerprint_of_the_choices():
    state = WizardState()
    before = state.choices()
    state.choose_gpus([0])
    assert state.choices() != before
    assert not hasattr(state, "plan_key") and not hasattr(SftTuiApp, "choices")


def test_the_app_knows_no_steps_widgets():
    """A step owns its refusal and its first input (Step.refusal, Step.first_input): the app names
    only the step bar and the steps themselves, never a control inside one."""
    import re
    from pathlib import Path

    import tui.app.main

    source = Path(tui.app.main.__file__).read_text(encoding="utf-8")
    ids = set(re.findall(r"#[\w{}.-]+", source))
    assert ids and all(i == "#steps" or i.endswith("-step") for i in ids), ids
