"""The plan step's Set box goes through the settings gate: a bad setting shows one line per
problem under the box, the plan stays as it was, and the app never exits; whatever is typed."""

from __future__ import annotations

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from textual.widgets import Input, Static

from tests.app.test_snapshots import CPU, REPO, RTX_4080
from tests.support.pilot import settle, submit, text_of
from tui.app.main import SftTuiApp
from tui.app.wizard.state import WizardState
from tui.common.profiles import load_profiles
from tui.datasets.validate import validate_paths
from tui.hardware.device import Detection
from tui.models.resolve import resolve_model
from tui.plan.settings import schema


def plan_state() -> WizardState:
    data = REPO / "tests" / "data" / "s2"
    return WizardState(detection=Detection([RTX_4080, CPU], []), model="qwen2.5-0.5b",
                       model_info=resolve_model("qwen2.5-0.5b", load_profiles()),
                       datasets=[str(data)], report=validate_paths([data]))


async def type_setting(app, pilot, text: str) -> str:
    await submit(app, pilot, "#plan-set", text)
    return text_of(app, "#set-problem")


async def test_bad_settings_show_under_the_box_and_keep_the_plan():
    app = SftTuiApp(state=plan_state())
    async with app.run_test(size=(100, 32)) as pilot:
        app.go_to("plan")
        await settle(app, pilot)
        before = app.state.plan
        assert before is not None and before.fits
        for text, message in [("lora_rank=abc", "lora_rank: 'abc' is not an integer"),
                              ("lora_rnak=8", "unknown setting 'lora_rnak': did you mean lora_rank?"),
                              ("cutoff_len=4k", "cutoff_len: '4k' is not an integer")]:
            assert await type_setting(app, pilot, text) == message
            assert app.state.plan is before and app.query_one("#plan-set", Input).value == text
        assert await type_setting(app, pilot, "lora_rank=16") == ""
        assert app.state.plan.settings["lora_rank"] == 16 and app.state.plan.reasons["lora_rank"].kind == "user"
        assert await type_setting(app, pilot, "lora_rank=") == ""  # key= clears yours
        assert app.state.plan.reasons["lora_rank"].kind != "user"


NAMES = sorted(schema()["properties"])
settings_text = st.tuples(
    st.one_of(st.sampled_from(NAMES), st.sampled_from(NAMES).map(lambda n: n + "s"),
              st.text(string.ascii_letters + "_", min_size=1, max_size=10)),
    st.one_of(st.just(""), st.integers(-10**20, 10**20).map(str),
              st.sampled_from(["[1, 2]", "${HOME}", "$(touch pwned)", "日本語", "4k", "--help", "1e999", "true"]),
              st.text(max_size=12)),
).map(lambda kv: f"{kv[0]}={kv[1]}")


@settings(max_examples=3, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(settings_text, min_size=12, max_size=12))
async def test_whatever_is_typed_the_app_stays_and_nothing_runs(tmp_path, monkeypatch, texts):
    monkeypatch.chdir(tmp_path)
    app = SftTuiApp(state=plan_state())
    async with app.run_test(size=(80, 24)) as pilot:
        app.go_to("plan")
        await settle(app, pilot)
        for text in texts:
            problem = await type_setting(app, pilot, text)
            assert app.is_running
            assert problem == "" or all(line and "\n" not in line for line in problem.splitlines())
            verdict = str(app.query_one("#plan-verdict", Static).render())
            assert "could not plan" not in verdict, verdict
    assert not (tmp_path / "pwned").exists()


async def test_picking_a_cutoff_option_plans_with_it():
    from textual.widgets import DataTable

    app = SftTuiApp(state=plan_state())
    async with app.run_test(size=(100, 32)) as pilot:
        app.go_to("plan")
        await settle(app, pilot)
        table = app.query_one("#cutoff-options", DataTable)
        options = app.state.plan.cutoff_options
        assert table.row_count == len(options) >= 1
        table.focus()
        table.move_cursor(row=0)
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.state.overrides["cutoff_len"] == options[0]["cutoff_len"]
        assert app.state.plan.settings["cutoff_len"] == options[0]["cutoff_len"]
