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

from textual import work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Button, Footer, Header, Input, TabbedContent

from tui.app.wizard import compose_steps
from tui.app.wizard.state import STEPS, WizardState
from tui.app.wizard.widgets import Confirm

# Steps whose box must be filled before anything else makes sense: they open on it while empty.
TYPE_FIRST = {"model": "#model-input", "dataset": "#dataset-input"}


class SftTuiApp(App):
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

    def __init__(self, monitor: Path | None = None, state: WizardState | None = None):
        super().__init__()
        self.monitor_dir = Path(monitor) if monitor else None
        self.state = state or WizardState()
        self.saved_choices = self.choices()  # what quitting may drop without asking: the start, or the last export
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
            self.push_screen(MonitorScreen(self.monitor_dir))

    def notify(self, message: str, *, title: str = "", severity="information", timeout=None, markup: bool = True) -> None:
        """Every message here is plain text (paths, LLaMA-Factory's errors, model output): never markup."""
        super().notify(message, title=title, severity=severity, timeout=timeout, markup=False)

    def check_action(self, action: str, parameters) -> bool | None:
        """The wizard's step keys do not exist on the monitor alone (`sft-tui monitor`)."""
        if self.monitor_dir is not None and action in ("next_step", "previous_step", "demo"):
            return False
        return True

    # --- quitting ----------------------------------------------------------------------------

    def choices(self) -> tuple:
        """What the user chose in the wizard that an export would keep."""
        s = self.state
        return (s.hardware, s.gpu_indices, getattr(s, "gpus", None), s.model, tuple(s.datasets), s.drop_errors,
                s.recipe, sorted(s.overrides.items()))

    def mark_exported(self) -> None:
        self.saved_choices = self.choices()

    def action_quit(self) -> None:
        """Every way to quit (keys, the palette's Quit) comes here."""
        if self.screen is self.quit_question:  # asked already: a second quit key means it
            self.exit()
            return
        if self.monitor_dir is not None or self.choices() == self.saved_choices:
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

    def entry_refusal(self, step_id: str) -> str | None:
        """Why the wizard cannot go to `step_id` yet, or None. The steps after the dataset need a
        dataset that passes the one dataset gate (tui.datasets.gate, as `sft-tui export` does);
        the run step is open once a bundle is exported (the demo exports its own)."""
        from tui.datasets.gate import dataset_refusal

        ids = self.step_ids()
        if step_id not in ids or ids.index(step_id) <= ids.index("dataset"):
            return None
        if step_id == "run" and self.state.run_dir is not None:
            return None
        return dataset_refusal(self.state.report, self.state.drop_errors, drop_hint="'Drop the rows with errors'")

    def go_to(self, step_id: str) -> None:
        refusal = self.entry_refusal(step_id)
        if refusal:
            self.notify(refusal, title="Dataset", severity="error", timeout=12)
            step_id = "dataset"
        # Focus left inside the old step would pull the tabs back to it: drop it first.
        self.set_focus(None)
        self.query_one("#steps", TabbedContent).active = step_id

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
        if self.entry_refusal(event.pane.id):  # a click on the step bar goes through the same gate
            self.go_to(event.pane.id)
            return
        step = self.query_one(f"#{event.pane.id}-step")
        self.sub_title = str(event.tab.label)
        step.shown()
        self.focus_on_open(event.pane.id, step)

    def focus_on_open(self, step_id: str, step) -> None:
        """A step opens on the box to type in while it is empty and needed (typing starts at
        once), else on its primary button (Enter goes on)."""
        if self.query_one("#steps", TabbedContent).active != step_id:
            return  # moved on since: focus inside another step would pull the tabs back to it
        needed = TYPE_FIRST.get(step_id)
        if needed and not step.query_one(needed, Input).value.strip():
            step.query_one(needed, Input).focus()
            return
        buttons = [b for b in step.query(Button) if b.display and b.variant in ("primary", "success")]
        if buttons:
            buttons[0].focus()

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
            self.query_one("#review-step").export()

    # --- the demo ------------------------------------------------------------------------------

    def action_demo(self) -> None:
        if self.monitor_dir is None:
            self.start_demo()

    def start_demo(self) -> None:
        self.notify("preparing the demo: tiny model, sample data, plan, bundle…", title="Demo")
        self.run_demo()

    @work(thread=True, exclusive=True, group="demo")
    def run_demo(self) -> None:
        from tui.runs.demo import DemoError, prepare_demo

        try:
            status = prepare_demo(progress=lambda step, message: self.call_from_thread(self.notify, message, title="Demo"))
        except DemoError as err:
            self.call_from_thread(self.notify, str(err), title="Demo", severity="error", timeout=30)
            return
        self.call_from_thread(self._demo_started, Path(status.run_dir))

    def _demo_started(self, run_dir: Path) -> None:
        self.state.run_dir = run_dir
        self.go_to("run")
        self.query_one("#run-step").attach(run_dir)
