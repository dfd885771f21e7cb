"""One confirm dialog (tui.app.wizard.widgets.Confirm): every yes/no question of the app is it, or a
subclass that only words the question; Enter gives the safe answer, `y` the other."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

from textual.screen import ModalScreen

from tests.app.test_snapshots import wizard_state
from tests.support.pilot import focus_is
from tui.app.main import SftTuiApp
from tui.app.monitor import ConfirmStop
from tui.app.wizard.run import ConfirmOtherHardware
from tui.app.wizard.widgets import Confirm

APP = Path(__file__).resolve().parents[2] / "tui" / "app"


def test_every_modal_question_of_the_app_is_the_one_confirm_dialog():
    modals = []
    for path in sorted(APP.rglob("*.py")):
        module = importlib.import_module(".".join(path.relative_to(APP.parents[1]).with_suffix("").parts))
        modals += [cls for _, cls in inspect.getmembers(module, inspect.isclass)
                   if issubclass(cls, ModalScreen) and cls.__module__ == module.__name__]
    assert Confirm in modals and all(issubclass(cls, Confirm) for cls in modals), modals
    for cls in modals:  # the subclasses only word the question
        assert not {"compose", "answer", "on_mount", "BINDINGS"} & set(vars(cls)) or cls is Confirm, cls


async def test_enter_gives_the_safe_answer_and_y_the_other():
    answers = []
    app = SftTuiApp(state=wizard_state())
    async with app.run_test(size=(100, 32)) as pilot:
        for question in (ConfirmStop(), ConfirmOtherHardware("planned for 1 x RTX 4080", "this machine has no GPU")):
            app.push_screen(question, answers.append)
            await focus_is(app, pilot, "no")
            await pilot.press("enter")
            await pilot.pause()
            app.push_screen(type(question)() if isinstance(question, ConfirmStop) else
                            ConfirmOtherHardware("planned for 1 x RTX 4080", "this machine has no GPU"), answers.append)
            await pilot.pause()
            await pilot.press("y")
            await pilot.pause()
    assert answers == [False, True, False, True]
