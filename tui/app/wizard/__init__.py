"""The wizard: six steps (hardware, model, dataset, plan, review, run), one module each; the
app composes them with `compose_steps`."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import TabbedContent, TabPane

from tui.app.wizard.dataset import DatasetStep
from tui.app.wizard.hardware import HardwareStep
from tui.app.wizard.model import ModelStep
from tui.app.wizard.plan import PlanStep
from tui.app.wizard.review import ReviewStep
from tui.app.wizard.run import RunStep
from tui.app.wizard.state import STEPS, WizardState

__all__ = ["STEPS", "WizardState", "compose_steps"]

STEP_CLASSES = {"hardware": HardwareStep, "model": ModelStep, "dataset": DatasetStep, "plan": PlanStep,
                "review": ReviewStep, "run": RunStep}


def compose_steps() -> ComposeResult:
    with TabbedContent(id="steps"):
        for step_id, title in STEPS:
            with TabPane(title, id=step_id):
                yield STEP_CLASSES[step_id](id=f"{step_id}-step")
