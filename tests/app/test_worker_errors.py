"""One worker-error policy (tui/app/workers.py): an unexpected exception in any worker of the app
closes nothing and loses no choice; the app says what failed in one sentence, a notification.
Each case makes the function a worker calls raise, and starts that worker."""

from __future__ import annotations

import pytest
from textual.widgets import Input

from tests.app.test_snapshots import wizard_state
from tests.runs.recorded import recorded_run
from tests.support.pilot import notes, settle, type_dataset, until
from tui.app.compare import CompareScreen
from tui.app.main import SftTuiApp
from tui.app.wizard.state import WizardState

FAILURE = "injected failure 22"


def boom(*args, **kwargs):
    raise RuntimeError(FAILURE)


async def start_model(app, pilot):
    app.go_to("model")
    await settle(app, pilot)
    app.query_one("#model-input", Input).value = "qwen2.5-0.5b"


async def start_validation(app, pilot):
    await start_model(app, pilot)
    await until(pilot, lambda: app.state.model_info is not None, "the model", 60)
    await type_dataset(app, pilot, "tests/data/s2")


async def start_plan(app, pilot):
    app.go_to("model")
    await settle(app, pilot)
    app.query_one("#model-input", Input).value = "qwen2.5-0.5b"
    await until(pilot, lambda: app.state.model_info is not None, "the model", 60)
    await type_dataset(app, pilot, "tests/data/s2")
    app.go_to("plan")


async def start_run(app, pilot, run_dir):
    app.query_one("#run-step").start_in_background(run_dir)


async def start_demo(app, pilot):
    app.start_demo()


async def start_compare(app, pilot, run_dir):
    app.push_screen(CompareScreen([run_dir], closable=True))


def monitor_of(app):
    return app.screen.query_one("RunMonitor")


async def start_try(app, pilot, run_dir):
    from tui.app.after_training import AfterTraining

    monitor_of(app).query_one(AfterTraining).try_prompt("hello")


async def start_eval(app, pilot, run_dir):
    from tui.app.after_training import AfterTraining

    monitor_of(app).query_one(AfterTraining).run_eval()


async def start_stop(app, pilot, run_dir):
    monitor_of(app).stop_run()


async def start_retry(app, pilot, run_dir):
    monitor_of(app).retry_run()


async def nothing(app, pilot, *args):
    """The worker starts by itself when the app (or the monitor) opens."""


WIZARD = [  # (the worker's group, what to make raise, how to start it, the words of the sentence)
    ("detect", "tui.hardware.detect.detect", nothing, "detecting the hardware"),
    ("model", "tui.models.resolve.resolve_model", start_model, "looking up the model"),
    ("validate", "tui.datasets.validate.validate_paths", start_validation, "validating the dataset"),
    ("plan", "tui.plan.planner.plan", start_plan, "planning"),
    ("simulate", "tui.plan.simulated.apply_simulation", start_plan, "simulating the plan's training step"),
    ("demo", "tui.runs.demo.prepare_demo", start_demo, "preparing the demo"),
]
WITH_A_RUN = [
    ("start", "tui.runs.lifecycle.start_run", start_run, "starting the run"),
    ("compare", "tui.runs.compare.compare_runs", start_compare, "comparing the runs"),
]
MONITOR = [
    ("open", "tui.runs.watch.RunWatcher.__init__", nothing, None),  # the monitor says it in its status line
    ("follow", "tui.runs.watch.RunWatcher.poll", nothing, "following the run"),
    ("gpu", "tui.hardware.usage.UsageSampler.sample", nothing, "reading the GPUs"),
    ("try", "tui.after.chat.try_run", start_try, "trying the prompt"),
    ("eval", "tui.after.evaluate.eval_run", start_eval, "evaluating"),
    ("stop", "tui.runs.lifecycle.stop_run", start_stop, "stopping the run"),
    ("retry", "tui.runs.verdict.read_verdict", start_retry, None),  # its own sentence: it words every failure
]


async def failed_and_stayed(app, pilot, group: str, words: str | None) -> None:
    await until(pilot, lambda: FAILURE in notes(app) or FAILURE in screen_text(app), f"the {group} failure said", 40)
    await settle(app, pilot)
    assert app.is_running and app.return_code is None
    if words is not None:
        said = [str(n.message) for n in app._notifications if FAILURE in str(n.message)]
        assert said and words in said[0] and "RuntimeError" in said[0] and "Traceback" not in said[0], said
        assert said[0].count(". ") == 0, said[0]  # one sentence


def screen_text(app) -> str:
    from textual.widgets import Static

    return "\n".join(str(s.render()) for s in app.screen.query(Static))


@pytest.mark.parametrize("group, target, start, words", WIZARD, ids=[c[0] for c in WIZARD])
async def test_a_wizard_worker_that_raises_keeps_the_app_and_the_choices(group, target, start, words, monkeypatch):
    monkeypatch.setattr(target, boom)
    app = SftTuiApp(state=WizardState() if group == "detect" else wizard_state())
    async with app.run_test(size=(110, 40)) as pilot:
        await settle(app, pilot)
        await start(app, pilot)
        await failed_and_stayed(app, pilot, group, words)
        before = app.state.choices()
        await pilot.press("ctrl+b")
        await settle(app, pilot)
        assert app.state.choices() == before  # every choice kept


@pytest.mark.parametrize("group, target, start, words", WITH_A_RUN, ids=[c[0] for c in WITH_A_RUN])
async def test_a_run_worker_that_raises_keeps_the_app(group, target, start, words, monkeypatch, tmp_path):
    run_dir = recorded_run(tmp_path, "finished")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(target, boom)
    app = SftTuiApp(state=wizard_state(run_dir=run_dir))
    async with app.run_test(size=(110, 40)) as pilot:
        await settle(app, pilot)
        await start(app, pilot, run_dir)
        await failed_and_stayed(app, pilot, group, words)


async def test_the_history_worker_that_raises_keeps_the_screen(monkeypatch, tmp_path):
    from tui.app.history import HistoryApp

    monkeypatch.setattr("tui.app.history.read_history", boom)
    app = HistoryApp(tmp_path)
    async with app.run_test(size=(110, 40)) as pilot:
        await failed_and_stayed(app, pilot, "history", "reading the run history")


@pytest.mark.parametrize("group, target, start, words", MONITOR, ids=[c[0] for c in MONITOR])
async def test_a_monitor_worker_that_raises_keeps_the_monitor(group, target, start, words, monkeypatch, tmp_path):
    run_dir = recorded_run(tmp_path, "finished")
    monkeypatch.chdir(tmp_path)
    if group != "gpu":
        monkeypatch.setattr("tui.app.monitor.RunMonitor.poll_gpus", lambda self: None)
    monkeypatch.setattr(target, boom)
    app = SftTuiApp(monitor=run_dir)
    async with app.run_test(size=(120, 40)) as pilot:
        await until(pilot, lambda: app.screen.query("RunMonitor"), "the monitor")
        await settle(app, pilot)
        await start(app, pilot, run_dir)
        await failed_and_stayed(app, pilot, group, words)


def test_every_worker_is_under_the_one_policy():
    """Every `@work` in tui/app says exit_on_error=False, its class has the one handler
    (tui.app.workers.WorkerErrors), and each worker group has its case above."""
    import ast
    import importlib
    from pathlib import Path

    from tui.app.workers import DOING, WorkerErrors

    root = Path(__file__).resolve().parents[2]
    groups = set()
    for path in sorted((root / "tui" / "app").rglob("*.py")):
        module = None
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ClassDef):
                continue
            for function in node.body:
                for decorator in getattr(function, "decorator_list", []):
                    if not (isinstance(decorator, ast.Call) and getattr(decorator.func, "id", None) == "work"):
                        continue
                    keywords = {k.arg: k.value for k in decorator.keywords}
                    where = f"{path.name}: {node.name}.{function.name}"
                    assert isinstance(keywords.get("exit_on_error"), ast.Constant), where
                    assert keywords["exit_on_error"].value is False, where
                    groups.add(keywords["group"].value)
                    module = module or importlib.import_module(".".join(path.relative_to(root).with_suffix("").parts))
                    assert issubclass(getattr(module, node.name), WorkerErrors), where
    assert groups == {case[0] for case in WIZARD + WITH_A_RUN + MONITOR} | {"history"} == set(DOING)
