"""Step 6: start the exported run, and watch it in the monitor."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import (
    Button,
    Static,
)

from tui.app.wizard.state import WizardState


class RunStep(Vertical):
    """Start the exported run, then the monitor."""

    def compose(self) -> ComposeResult:
        yield Static("Export a bundle in step 5 first.", id="run-intro")
        yield Button("Start training", variant="success", id="start-run")
        yield Vertical(id="monitor-slot")

    @property
    def state(self) -> WizardState:
        return self.app.state

    def shown(self) -> None:
        run_dir = self.state.run_dir
        if run_dir is not None and not self.query("RunMonitor"):
            self.query_one("#run-intro", Static).update(Text(f"Run directory: {run_dir}"))

    @on(Button.Pressed, "#start-run")
    def start(self) -> None:
        if self.state.run_dir is None:
            self.notify("export the bundle first (step 5)", severity="warning")
            return
        from tui.app.wizard.widgets import unless_it_does_not_fit
        from tui.bundle.spec import BundleError, load_spec

        run_dir = self.state.run_dir
        try:
            spec = load_spec(run_dir / "plan.json")
        except BundleError as err:
            self.notify(str(err), severity="error")
            return
        unit = "device" if spec["hardware"]["vendor"] == "cpu" else "GPU"
        unless_it_does_not_fit(self.app, spec["plan"]["estimate"], "start", lambda: self.start_in_background(run_dir), unit)

    @work(thread=True, exclusive=True, group="start")
    def start_in_background(self, run_dir: Path) -> None:
        from tui.runs.lifecycle import RunError, start_run

        try:
            start_run(run_dir)
        except RunError as err:
            self.app.call_from_thread(self.notify, str(err), severity="error")
            return
        self.app.call_from_thread(self.attach, run_dir)

    def attach(self, run_dir: Path) -> None:
        from tui.app.monitor import RunMonitor

        self.query_one("#start-run").display = False
        self.query_one("#run-intro").display = False
        for old in self.query("RunMonitor"):
            old.remove()
        monitor = RunMonitor(run_dir)
        self.query_one("#monitor-slot").mount(monitor)
        monitor.focus()
