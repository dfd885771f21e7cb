"""Step 6: start the exported run, and watch it in the monitor.

The step follows the bundle last written in step 5: after a second export it offers Start for
the new bundle, and keeps the previous run's monitor one button away (training goes on there).
Once the plan has changed since the export, it says so instead of offering Start for the old
bundle as if it were current; the old bundle is one button away, labelled as such.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.widgets import (
    Button,
    Select,
    Static,
)

from tui.app.wizard.state import WizardState, shown_path
from tui.app.wizard.widgets import Confirm
from tui.app.wizard.wording import in_app_words
from tui.app.workers import WorkerErrors

if TYPE_CHECKING:
    from textual import getters
    from textual.widget import Widget

    from tui.app.wizard.state import WizardApp


class ConfirmOtherHardware(Confirm):
    """The run was planned for other hardware than this machine's: start it anyway?"""

    def __init__(self, planned: str, here: str):
        super().__init__(f"This run was {planned}; {here}. It will probably fail here: run it on that machine, "
                         "or start it anyway.", "Start anyway", "Cancel", variant="warning")
        self.planned, self.here = planned, here


class RunStep(WorkerErrors, Vertical):
    if TYPE_CHECKING:  # a step's `self.app` (tui.app.wizard.state.Step has the same)
        app = getters.app(WizardApp)

    """Start the exported run, then the monitor."""

    def compose(self) -> ComposeResult:
        yield Static("Export a bundle in step 5 first.", id="run-intro")
        # monitor --auto-retry N: the retry the run's verdict names, written and started by itself (tui.app.chain)
        yield Select([(f"retry by itself up to {n} time{'s' if n > 1 else ''}", n) for n in (1, 2, 3)],
                     prompt="never retry by itself", id="auto-retry")
        yield Button("Start training", variant="success", id="start-run")
        yield Button("", variant="warning", id="start-stale")  # the old bundle, once the plan changed
        yield Button("", id="show-previous")
        yield Vertical(id="monitor-slot")

    def on_mount(self) -> None:
        self.query_one("#show-previous").display = False
        self.query_one("#start-stale").display = False

    @property
    def state(self) -> WizardState:
        return self.app.state

    @property
    def monitored(self) -> Path | None:
        """The run directory whose monitor this step holds (started here), or None."""
        from tui.app.monitor import RunMonitor

        monitors = self.query(RunMonitor)
        return monitors.first().run_dir if monitors else None

    def stale_text(self) -> str:
        run_dir = self.state.run_dir
        assert run_dir is not None  # said of an exported bundle only
        return f"The plan changed since {shown_path(Path(run_dir))} was exported: export again (step 5)."

    def shown(self) -> None:
        run_dir = self.state.run_dir
        if run_dir is None:
            return
        watching = self.monitored
        started = watching is not None and Path(run_dir).resolve() == watching
        stale = self.state.export_is_stale()
        if started and not stale:
            return  # the bundle we monitor: the monitor is what this step shows
        intro = self.query_one("#run-intro", Static)
        intro.display = True
        old = self.query_one("#start-stale", Button)
        if stale:
            # The bundle is of an older plan: no Start as if it were the current one; the old
            # bundle stays one clearly labelled button away (or its monitor, when it ran here).
            intro.update(Text(self.stale_text()))
            self.query_one("#start-run").display = False
            old.label = f"Start the old bundle {shown_path(Path(run_dir))} anyway"
            old.display = not started
        else:
            # a bundle not started yet (the first, or one exported after a run started here)
            intro.update(Text(f"Run directory: {run_dir}"))
            self.query_one("#start-run").display = True
            self.query_one("#auto-retry").display = True
            old.display = False
        if watching is not None:
            self.query_one("RunMonitor").display = False
            previous = self.query_one("#show-previous", Button)
            previous.label = f"Back to the monitor of {watching.name}"
            previous.display = True

    @on(Button.Pressed, "#show-previous")
    def show_previous(self) -> None:
        self.query_one("#show-previous").display = False
        monitor = self.query_one("RunMonitor")
        monitor.display = True
        monitor.focus()

    @on(Button.Pressed, "#start-run")
    def start(self) -> None:
        if self.state.run_dir is None:
            self.notify("export the bundle first (step 5)", severity="warning")
            return
        if self.state.export_is_stale():
            self.notify(self.stale_text(), severity="warning")
            return
        self.start_in_background(self.state.run_dir)

    @on(Button.Pressed, "#start-stale")
    def start_stale(self) -> None:
        """The user asked for the old bundle by name: it starts as it was exported."""
        self.start_in_background(self.state.run_dir)

    @work(thread=True, exclusive=True, group="start", exit_on_error=False)
    def start_in_background(self, run_dir: Path, force: bool = False) -> None:
        from tui.runs.lifecycle import RunError, start_run
        from tui.runs.preflight import HardwareMismatch

        try:
            start_run(run_dir, force=force)
        except HardwareMismatch as mismatch:
            self.app.call_from_thread(self.confirm_other_hardware, run_dir, mismatch)
            return
        except RunError as err:
            self.app.call_from_thread(self.notify, in_app_words(str(err)), severity="error")
            return
        self.app.call_from_thread(self.attach, run_dir)

    def confirm_other_hardware(self, run_dir: Path, mismatch) -> None:
        def answered(yes: bool | None) -> None:
            if yes:
                self.start_in_background(run_dir, force=True)

        self.app.push_screen(ConfirmOtherHardware(mismatch.planned, mismatch.here), answered)

    def refusal(self) -> str | None:
        return None  # the last step

    def first_input(self) -> Widget | None:
        return None

    def attach(self, run_dir: Path) -> None:
        from tui.app.monitor import RunMonitor

        retries = self.query_one("#auto-retry", Select).value
        for selector in ("#start-run", "#start-stale", "#run-intro", "#show-previous", "#auto-retry"):
            self.query_one(selector).display = False
        for old in self.query("RunMonitor"):
            old.remove()
        monitor = RunMonitor(run_dir, auto_retry=retries if isinstance(retries, int) else 0)
        self.query_one("#monitor-slot").mount(monitor)
        monitor.focus()
