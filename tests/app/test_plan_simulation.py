"""The plan step judges its plan on a simulated training step in the background (issue 27, item 5;
tui/app/wizard/simulation.py): the analytic plan is shown at once, the simulated one replaces it
when it answers, Escape kills the subprocess and keeps the analytic plan, a changed setting never
gets the stale answer, and an export says which plan it wrote.

The simulation is on here (the suite's SFT_TUI_SIMULATE=0 is lifted) with the cache in the test's
tmp dir. One test runs the real simulate_step.py on the tiny model; the others put a fake python at
the subprocess boundary that waits for a file the test writes (never for a time)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
from textual.widgets import Input

from tests.app.test_snapshots import CPU, REPO, RTX_4080
from tests.support.pilot import focus_is, notes, press, settle, text_of, until
from tui.app.main import SftTuiApp
from tui.app.wizard.simulation import CANCELLED, RUNNING
from tui.app.wizard.state import WizardState
from tui.common.profiles import load_profiles
from tui.datasets.validate import validate_paths
from tui.hardware.device import Detection
from tui.models.resolve import resolve_model

GIB = 1024**3
# A python that answers like simulate_step.py, once the test writes `release` (each start leaves
# started-<pid> with the settings it was asked to simulate).
FAKE_PYTHON = """#!{python}
import json, os, sys, time
from pathlib import Path

here = Path({folder!r})
settings = json.loads(sys.stdin.read())["settings"]
(here / f"started-{{os.getpid()}}").write_text(json.dumps(settings))
while not (here / "release").exists():
    time.sleep(0.05)
print(json.dumps({{"peak_bytes": 3 * {gib}, "phase": "backward", "step": 2, "settings": settings,
                  "breakdown": {{"weights": 1 * {gib}, "activations": 2 * {gib}}}, "model_class": "FakeForCausalLM",
                  "attn_implementation": "sdpa", "optim": "adamw_torch", "seconds": 0.5, "stand_ins": []}}))
"""


@pytest.fixture
def simulation_on(monkeypatch, tmp_path):
    monkeypatch.setenv("SFT_TUI_SIMULATE", "1")
    monkeypatch.setenv("SFT_TUI_MODEL_FACTS", "0")  # the config-only counts: no model_facts subprocess
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # no answer cached by another test
    monkeypatch.chdir(REPO)


@pytest.fixture
def fake_python(simulation_on, monkeypatch, tmp_path):
    folder = tmp_path / "fake"
    folder.mkdir()
    python = folder / "python"
    python.write_text(FAKE_PYTHON.format(python=sys.executable, folder=str(folder), gib=GIB), encoding="utf-8")
    python.chmod(0o755)
    monkeypatch.setattr("tui.plan.simulated._training_python", lambda: python)
    yield folder
    (folder / "release").write_text("")  # a fake a failed test left waiting ends too


def started(folder: Path) -> list[tuple[int, dict]]:
    """(pid, settings) of each simulation the fake python started, in order."""
    found = sorted(folder.glob("started-*"), key=lambda p: p.stat().st_mtime_ns)
    return [(int(p.name.split("-")[1]), json.loads(p.read_text())) for p in found if p.read_text()]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def plan_state(model: str) -> WizardState:
    data = REPO / "tests" / "data" / "s2"
    return WizardState(detection=Detection([RTX_4080, CPU], []), model=model,
                       model_info=resolve_model(model, load_profiles()), datasets=[str(data)],
                       report=validate_paths([data]), run_name="simulated")


async def test_the_plan_step_shows_the_simulated_verdict_once_it_answers(simulation_on, tiny_model_dir):
    app = SftTuiApp(state=plan_state(str(tiny_model_dir)))
    async with app.run_test(size=(110, 40)) as pilot:
        app.go_to("plan")
        # the real simulate_step.py, run by the test virtualenv's python (the training environment here)
        await until(pilot, lambda: app.state.plan is not None and (app.state.plan.simulated or {}).get("peak_gib"),
                    "the simulated plan", 600)
        await settle(app, pilot)
        plan = app.state.plan
        assert plan.simulated["source"] == "simulated", plan.simulated
        assert any(n.startswith("memory: simulated") for n in plan.estimate.notes)
        line = text_of(app, "#plan-simulation")
        assert line.startswith("simulated (simulated") and f"{plan.simulated['peak_gib']:.2f} GiB in" in line, line
        assert app.query_one("#plan-simulation").display
        assert f"{plan.estimate.per_device_gib:.1f} GiB per device" in text_of(app, "#plan-verdict")
        legend = text_of(app, "#memory-legend")  # the simulated breakdown's
        assert all(f"{key} {value:.2f}" in legend for key, value in plan.estimate.breakdown.items()), legend
        assert app.is_running


async def test_escape_kills_a_running_simulation_and_keeps_the_analytic_plan(fake_python, tmp_path):
    app = SftTuiApp(state=plan_state("qwen2.5-0.5b"))
    async with app.run_test(size=(110, 40)) as pilot:
        app.go_to("plan")
        await until(pilot, lambda: started(fake_python) and "(Esc cancels)" in text_of(app, "#plan-simulation"),
                    "the simulation to start")
        analytic = app.state.plan
        # the analytic plan is shown meanwhile, and the wizard is usable
        assert analytic.simulated == {"peak_gib": None, "why_not": RUNNING}
        assert "fits" in text_of(app, "#plan-verdict") and "simulating one training step of" in text_of(
            app, "#plan-simulation")
        [(pid, _)] = started(fake_python)
        assert alive(pid)
        await pilot.press("escape")
        await until(pilot, lambda: not alive(pid), "the subprocess to be killed")
        await settle(app, pilot)
        assert app.state.plan is analytic and analytic.simulated == {"peak_gib": None, "why_not": CANCELLED}
        assert text_of(app, "#plan-simulation") == "analytic estimate: simulation cancelled"
        assert analytic.estimate.notes[-1] == f"memory: the analytic estimate, not simulated: {CANCELLED}"

        # the export writes the analytic plan, saying so (as `sft-tui plan --no-simulate` does)
        app.go_to("review")
        await settle(app, pilot)
        app.query_one("#out-dir", Input).value = str(tmp_path / "out")
        await press(app, pilot, "#export")
        await settle(app, pilot)
        assert app.state.run_dir is not None, (text_of(app, "#export-result"), notes(app))
        written = json.loads((app.state.run_dir / "plan.json").read_text())
        assert written["plan"]["estimate"]["simulated"] == {"peak_gib": None, "why_not": CANCELLED}
        (fake_python / "release").write_text("")
        assert len(started(fake_python)) == 1 and app.is_running


async def test_a_changed_setting_during_a_simulation_never_gets_the_stale_answer(fake_python, tmp_path):
    app = SftTuiApp(state=plan_state("qwen2.5-0.5b"))
    async with app.run_test(size=(110, 40)) as pilot:
        app.go_to("plan")
        await until(pilot, lambda: started(fake_python), "the first simulation to start")
        [(first, asked)] = started(fake_python)

        # exported while it runs: the analytic plan, and plan.json says the simulation had not answered
        app.go_to("review")
        await until(pilot, lambda: app.query_one("#steps").active == "review", "the review step")
        app.query_one("#out-dir", Input).value = str(tmp_path / "out")
        await press(app, pilot, "#export")
        await until(pilot, lambda: app.state.run_dir is not None, "the bundle")
        assert json.loads((app.state.run_dir / "plan.json").read_text())["plan"]["estimate"]["simulated"]["why_not"] == RUNNING
        assert alive(first)  # moving to another step changed nothing: the simulation goes on

        app.go_to("plan")
        await focus_is(app, pilot, "plan-next", "(the plan step opened)")
        box = app.query_one("#plan-set", Input)
        box.value = f"lora_rank={asked['lora_rank'] * 2}"
        box.focus()
        await until(pilot, lambda: box.has_focus, "the Set box to have the focus")
        await pilot.press("enter")
        await until(pilot, lambda: len(started(fake_python)) == 2, "the new plan's simulation")
        await until(pilot, lambda: not alive(first), "the stale simulation's subprocess to be killed")
        (fake_python / "release").write_text("")  # the new simulation answers
        await until(pilot, lambda: (app.state.plan.simulated or {}).get("peak_gib") is not None, "the answer")
        await settle(app, pilot)
        plan = app.state.plan
        assert plan.settings["lora_rank"] == asked["lora_rank"] * 2
        assert plan.simulated["settings"]["lora_rank"] == asked["lora_rank"] * 2  # the new plan's answer
        assert plan.estimate.per_device_gib > 3  # the fake's 3 GiB peak, plus the overhead
        assert text_of(app, "#plan-simulation").startswith("simulated (simulated, 0.5 s): one training step")
        assert app.is_running


def test_the_state_drops_an_answer_for_choices_that_changed():
    state = plan_state("qwen2.5-0.5b")
    shown, answer = object(), object()
    state.plan = shown
    choices = state.choices()
    state.set_overrides({"lora_rank": 16})  # the plan is dropped: another plan takes its place
    state.plan = shown
    assert not state.simulated(choices, shown, answer) and state.plan is shown
    assert not state.simulated(state.choices(), object(), answer) and state.plan is shown
    assert state.simulated(state.choices(), shown, answer) and state.plan is answer


async def test_quitting_while_a_simulation_runs_kills_its_subprocess(fake_python):
    import asyncio
    import time

    app = SftTuiApp(state=plan_state("qwen2.5-0.5b"))
    async with app.run_test(size=(110, 40)) as pilot:
        app.go_to("plan")
        await until(pilot, lambda: started(fake_python), "the simulation to start")
        [(pid, _)] = started(fake_python)
        app.exit()
    deadline = time.monotonic() + 120  # a condition, not a time: only there to end a hanging test
    while alive(pid) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert not alive(pid)
