"""The sft-tui Textual app: the wizard (tui.app.wizard) or, for `sft-tui monitor RUN_DIR`, the
monitor screen alone (tui.app.monitor).

Keys: ctrl+n / ctrl+b next and previous step (or click the step bar), ctrl+p the command
palette, ctrl+q (or q outside a text box) quit: the run, if any, goes on, and choices not yet
exported are only lost once the user says so. Nothing here imports torch, transformers or
llamafactory; every slow call runs in a thread worker.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Button, Footer, Header, TabbedContent

from tui.app.wizard import compose_steps
from tui.app.wizard.review import ReviewStep
from tui.app.wizard.run import RunStep
from tui.app.wizard.state import STEPS, Step, WizardState
from tui.app.wizard.widgets import Confirm
from tui.app.workers import WorkerErrors


class SftTuiApp(WorkerErrors, App):
    CSS_PATH = "app.tcss"
    TITLE = "sft-tui"
    SUB_TITLE = "fine-tune with LLaMA-Factory"
    BINDINGS = [
        Binding("ctrl+n", "next_step", "Next step"),
        Binding("ctrl+b", "previous_step", "Back"),
        Binding("ctrl+t", "demo", "Try the demo"),
        Binding("ctrl+q", "quit", "Quit", priority=True),
        Binding("q", "quit", "Quit", show=False),
    ]

    def __init__(self, monitor: Path | None = None, state: WizardState | None = None, auto_retry: int = 0):
        super().__init__()
        self.monitor_dir = Path(monitor) if monitor else None
        self.auto_retry = auto_retry  # `sft-tui monitor RUN_DIR --auto-retry N`
        self.state = state or WizardState()
        self.saved_choices = self.state.choices()  # what quitting may drop without asking: the start, or the last export
        self.quit_question: Confirm | None = None

    def compose(self) -> ComposeResult:
        yield Header()
        if self.monitor_dir is None:
            yield from compose_steps()
        yield Footer()

    def on_mount(self) -> None:
        if self.monitor_dir is not None:
            from tui.app.monitor import MonitorScreen

            self.sub_title = "monitor"
            self.push_screen(MonitorScreen(self.monitor_dir, auto_retry=self.auto_retry))

    def notify(self, message: str, *, title: str = "", severity="information", timeout=None, markup: bool = True) -> None:
        """Every message here is plain text (paths, LLaMA-Factory's errors, model output): never markup."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)

    def check_action(self, action: str, parameters) -> bool | None:
        """The wizard's step keys do not exist on the monitor alone (`sft-tui monitor`)."""
        if self.monitor_dir is not None and action in ("next_step", "previous_step", "demo"):
            return False
        return True

    # --- quitting ----------------------------------------------------------------------------

    def mark_exported(self) -> None:
        self.saved_choices = self.state.choices()

    def action_quit(self) -> None:  # type: ignore[override]  # Textual runs a plain action as it awaits its own
        """Every way to quit (keys, the palette's Quit) comes here."""
        if self.screen is self.quit_question:  # asked already: a second quit key means it
            self.exit()
            return
        if self.monitor_dir is not None or self.state.choices() == self.saved_choices:
            self.exit()
            return

        def answered(yes: bool | None) -> None:
            self.quit_question = None
            if yes:
                self.exit()

        self.quit_question = Confirm("Quit sft-tui? The choices you made are not exported yet and will be lost "
                                     "(Export in step 5 writes them to a bundle). A run in progress goes on.",
                                     "Quit", "Stay")
        self.push_screen(self.quit_question, answered)

    def action_help_quit(self) -> None:
        """ctrl+c (copy in a text box) hints at the quit key; Textual's own hint is markup, and
        notifications here are plain text."""
        self.notify("Press ctrl+q to quit", title="Do you want to quit?")

    # --- steps -------------------------------------------------------------------------------

    def step_ids(self) -> list[str]:
        return [step_id for step_id, _ in STEPS]

    def step(self, step_id: str) -> Step | RunStep:
        """The widget of step `step_id`: a Step, or the run step (a Vertical: it holds the monitor)."""
        widget = self.query_one(f"#{step_id}-step")
        assert isinstance(widget, (Step, RunStep)), widget
        return widget

    def refusal(self, step_id: str) -> tuple[str, str, str] | None:
        """Why the wizard cannot go to `step_id` yet, as (the step to fix it on, its title, the
        sentence), or None. The one gate every way of moving goes through (keys, buttons, the step
        bar, the palette): the steps after the hardware need a GPU count that is one (or none), the
        steps after the model a resolved model, and the steps after the dataset a dataset that
        passes the one dataset gate (tui.datasets.gate, as `sft-tui export` does); the run step is
        open once a bundle is exported (the demo exports its own). Each step words its own refusal
        (Step.refusal)."""
        ids = self.step_ids()
        if step_id not in ids or (step_id == "run" and self.state.run_dir is not None):
            return None
        for earlier, label in STEPS[:ids.index(step_id)]:
            problem = self.step(earlier).refusal()
            if problem:
                return earlier, label.split(" ", 1)[1], problem
        return None

    def entry_refusal(self, step_id: str) -> str | None:
        """The sentence of `refusal`, or None."""
        refusal = self.refusal(step_id)
        return refusal[2] if refusal else None

    _steps_open = False  # the step bar's first activation handled (until then Textual may still reset it)
    _pending_step: str | None = None

    def go_to(self, step_id: str) -> None:
        if not self._steps_open:  # asked for before the bar's first activation came, which would undo it
            self._pending_step = step_id
            return
        refusal = self.refusal(step_id)
        if refusal:
            step_id, title, message = refusal
            self.notify(message, title=title, severity="error", timeout=12)
        tabs = self.query_one("#steps", TabbedContent)
        if tabs.active == step_id:  # staying: a refused move puts focus where the fix is typed
            if refusal:
                self.focus_on_open(step_id, self.step(step_id))
            return
        # Focus left inside the old step would pull the tabs back to it: drop it first.
        self.set_focus(None)
        tabs.active = step_id

    def action_next_step(self) -> None:
        self._move(+1)

    def action_previous_step(self) -> None:
        self._move(-1)

    def _move(self, delta: int) -> None:
        if self.monitor_dir is not None:
            return
        ids = self.step_ids()
        current = self.query_one("#steps", TabbedContent).active
        position = min(max(ids.index(current) + delta, 0), len(ids) - 1) if current in ids else 0
        self.go_to(ids[position])

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if not self._steps_open:
            self._steps_open = True
            if self._pending_step is not None:
                step_id, self._pending_step = self._pending_step, None
                self.go_to(step_id)
                return
        pane_id = event.pane.id
        assert pane_id is not None  # every step's pane has its id (tui.app.wizard.compose_steps)
        if self.entry_refusal(pane_id):  # a click on the step bar goes through the same gate
            self.go_to(pane_id)
            return
        step = self.step(pane_id)
        self.sub_title = str(event.tab.label)
        step.shown()
        self.focus_on_open(pane_id, step)

    def focus_on_open(self, step_id: str, step: Step | RunStep) -> None:
        """A step opens (or a refused move stays) on what the user must fill next, so that typing
        starts at once and nothing typed is lost: the GPU count while it is no count, the model
        box until a model is resolved, the dataset box until the files pass (the drop-errors
        choice when only their errors stop them), Review's run name while it is empty (Enter
        there exports). Else on the step's primary button (Enter goes on)."""
        if self.query_one("#steps", TabbedContent).active != step_id:
            return  # moved on since: focus inside another step would pull the tabs back to it
        target = self.needs_input(step_id, step)
        if target is None:
            buttons = [b for b in step.query(Button) if b.display and b.variant in ("primary", "success")]
            target = buttons[0] if buttons else None
        if target is not None:
            # The step opens at its top (the verdict, the boxes): focusing a button below the fold
            # must not scroll it away, which happened or not depending on whether layout had run.
            # At once, not through Widget.focus (which waits for the message queue): a focus that lands
            # after the user moved on would sit in a hidden step and pull the tabs back to it.
            self.set_focus(target, scroll_visible=False)
            self.call_after_refresh(self._keep_in_view, step_id, target)

    def _keep_in_view(self, step_id: str, widget) -> None:
        """Focus is never on a control off screen (the steps' ways on are docked, so this is the
        exception): once laid out, a focused control below the fold is scrolled to."""
        if self.query_one("#steps", TabbedContent).active != step_id or not widget.has_focus:
            return
        if not self.screen.region.contains_region(widget.region):
            widget.scroll_visible(animate=False, immediate=True)

    def needs_input(self, step_id: str, step: Step | RunStep) -> Widget | None:
        """The control of `step` the user must fill before going on (Step.first_input), or None."""
        return step.first_input()

    # --- the command palette ------------------------------------------------------------------

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        """Textual's own commands, then every key of the screen the palette was opened on (the
        wizard's Next, Back, Demo; the monitor's Stop, Detach...), and Export."""
        yield from super().get_system_commands(screen)
        listed = {"quit", "command_palette"}  # Textual lists Quit and the palette itself
        for key, active in screen.active_bindings.items():
            binding = active.binding
            if not active.enabled or not binding.description or binding.system or binding.action in listed:
                continue
            listed.add(binding.action)
            yield SystemCommand(binding.description, f"{binding.description} (key: {self.get_key_display(binding)})",
                                partial(self.run_action, binding.action, active.node))
        if self.monitor_dir is None:
            yield SystemCommand("Export", "Write the run bundle (step 5, Export)", self.action_export)

    def action_export(self) -> None:
        self.go_to("review")  # the dataset gate may stop on the dataset step instead
        if self.query_one("#steps", TabbedContent).active == "review":
            self.query_one("#review-step", ReviewStep).export()

    # --- the demo ------------------------------------------------------------------------------

    def action_demo(self) -> None:
        if self.monitor_dir is None:
            self.start_demo()

    def start_demo(self) -> None:
        self.notify("preparing the demo: tiny model, sample data, plan, bundle…", title="Demo")
        self.run_demo()

    @work(thread=True, exclusive=True, group="demo", exit_on_error=False)
    def run_demo(self) -> None:
        from tui.runs.demo import DemoError, prepare_demo

        try:
            status = prepare_demo(progress=lambda step, message: self.call_from_thread(self.notify, message, title="Demo"))
        except DemoError as err:
            self.call_from_thread(self.notify, str(err), title="Demo", severity="error", timeout=30)
            return
        self.call_from_thread(self._demo_started, Path(status.run_dir))

    def _demo_started(self, run_dir: Path) -> None:
        self.state.attach_run(run_dir)
        self.go_to("run")
        self.query_one("#run-step", RunStep).attach(run_dir)


if TYPE_CHECKING:
    from tui.app.wizard.state import WizardHost

    def _hosts_the_wizard(app: SftTuiApp) -> WizardHost:
        return app  # mypy checks that the app has what the steps ask of it (WizardHost)
