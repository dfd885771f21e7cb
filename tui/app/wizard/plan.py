"""Step 4: the plan, with a reason per setting, the memory bar and a box to set any value."""

from __future__ import annotations

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import (
    Button,
    DataTable,
    Input,
    Label,
    Select,
    Static,
)

from tui.app.table import Table
from tui.app.wizard.simulation import PlanSimulation
from tui.app.wizard.state import Step
from tui.app.wizard.widgets import BAR_COLOURS, MemoryBar
from tui.app.wizard.wording import in_app_words
from tui.common.text import yaml_spelling


class PlanStep(PlanSimulation, Step):
    # Escape cancels the plan's simulation (tui.app.wizard.simulation) while one runs.
    BINDINGS = [Binding("escape", "cancel_simulation", "Cancel the simulation", show=False)]

    def check_action(self, action: str, parameters) -> bool | None:
        if action == "cancel_simulation":
            return self.simulating is not None
        return super().check_action(action, parameters)

    def compose(self) -> ComposeResult:
        with Horizontal(classes="row"):
            yield Label("Recipe", classes="label")
            yield Select([], prompt="chosen from the dataset size", id="recipe")
        yield Static("", id="plan-verdict")
        simulation = Static("", id="plan-simulation", classes="note")  # the simulated step's progress, then its answer
        simulation.display = False
        yield simulation
        yield MemoryBar(id="memory-bar")
        yield Static("", id="memory-legend", classes="note")
        with Horizontal(classes="row"):
            yield Label("Set", classes="label")
            yield Input(placeholder="key=value, e.g. per_device_train_batch_size=8 (Enter re-plans; key= clears)",
                        id="plan-set")
        yield Static("", id="set-problem")
        settings = Table(id="plan-settings", cursor_type="row", zebra_stripes=True)
        settings.add_columns("setting", "value", "why", "reason")
        yield settings
        yield Static("", id="setting-detail", classes="note")
        yield Static("", id="plan-warnings")
        yield Static("", id="cutoff-title", classes="note")
        cutoffs = Table(id="cutoff-options", cursor_type="row", zebra_stripes=True)
        cutoffs.add_columns("cutoff_len", "rows truncated", "GiB per device", "fits")
        yield cutoffs
        with Horizontal(id="plan-nav"):  # docked: on screen however long the tables are
            yield Button("Next: review", variant="primary", id="plan-next")

    def on_mount(self) -> None:
        from tui.common.profiles import load_profiles

        self.query_one("#recipe", Select).set_options([(n, n) for n in load_profiles().names("recipes")])

    def shown(self) -> None:
        if self.state.plan is None:
            self.replan()
        else:
            self.show(self.state.plan)

    @on(Select.Changed, "#recipe")
    def recipe_changed(self, event: Select.Changed) -> None:
        recipe = event.value if isinstance(event.value, str) else None  # blank: chosen from the data
        if self.state.choose_recipe(recipe):
            self.replan()

    @on(Input.Submitted, "#plan-set")
    def set_value(self, event: Input.Submitted) -> None:
        """The Set box goes through the settings gate: a problem shows under the box, the text
        stays for fixing, and the plan is unchanged."""
        from tui.plan.requests import RequestError, parse_overrides

        text = event.value.strip()
        if not text:
            return
        key, _, value = text.partition("=")
        problem = self.query_one("#set-problem", Static)
        if not value.strip() and key.strip() in self.state.overrides:
            self.state.clear_override(key.strip())
        else:
            try:
                self.state.set_overrides(parse_overrides([text]))
            except RequestError as err:
                problem.update(Text(in_app_words(str(err)), style="red"))
                return
        problem.update("")
        event.input.value = ""
        self.replan()

    def replan(self) -> None:
        if self.state.model_info is None:
            self.query_one("#plan-verdict", Static).update("[yellow]choose a model first (step 2)[/yellow]")
            return
        self.query_one("#plan-verdict", Static).update("planning…")
        self.stop_simulation()  # of a plan that is going
        self.make_plan(self.state.choices())

    @work(thread=True, exclusive=True, group="plan", exit_on_error=False)
    def make_plan(self, choices: tuple) -> None:
        from tui.plan.calibrated import apply_history
        from tui.plan.planner import plan
        from tui.plan.requests import RequestError, build_request

        s = self.state
        try:
            request, _ = build_request(s.hardware, s.model, None, s.recipe, dict(s.overrides), report=s.report,
                                       devices=s.devices(), host_ram_gib=s.host_ram_gib())
            # the time and the memory verdict from your own runs like it (the run history), as `sft-tui plan`
            result = apply_history(plan(request), request)
        except (RequestError, ValueError) as err:
            self.app.call_from_thread(self.query_one("#plan-verdict", Static).update,
                                      Text(in_app_words(str(err)), style="red"))
            return
        self.app.call_from_thread(self.planned, choices, request, result)

    def worker_failed(self, worker, sentence: str) -> None:
        """A planner bug (tui.app.workers' one policy): said in the verdict too, where the plan would be."""
        if worker.group == "plan":
            self.query_one("#plan-verdict", Static).update(Text(sentence, style="red"))
        elif worker.group == "simulate":
            self.simulation_failed(sentence)

    def planned(self, choices: tuple, request, result) -> None:
        if self.state.planned(choices, request, result):
            self.show(result)  # at once; then judged on its simulated step, in the background
            self.simulate(choices, request, result)
        else:  # the choices changed while it planned: plan them
            self.replan()

    def show(self, plan) -> None:
        est = plan.estimate
        usable = plan.usable_gib
        assert self.state.request is not None  # a plan is shown once it is kept, with its request
        device = self.state.request.devices[0]
        where = f"{plan.n_gpus} x {device.name}" if device.is_gpu else device.name
        if plan.fits:
            verdict = Content.from_markup(
                f"[b green]fits[/b green]: {est.per_device_gib:.1f} GiB per device of {usable:.1f} usable on $where; "
                f"recipe {plan.recipe}" + (f"; {plan.steps} optimizer steps" if plan.steps else "")
                + "\n$time", where=where, time=self.time_text(plan))
        else:
            verdict = Content.from_markup(
                f"[b white on red] DOES NOT FIT [/b white on red] {est.per_device_gib:.1f} GiB per device, "
                f"{usable:.1f} usable on $where.\n[b]What would fit:[/b]\n$suggestions",
                where=where, suggestions="\n".join(f"  • {in_app_words(s)}" for s in plan.suggestions))
        self.query_one("#plan-verdict", Static).update(verdict)
        self.query_one("#memory-bar", MemoryBar).set(est.breakdown, plan.capacity_gib)
        legend = Text()
        for key, value in est.breakdown.items():
            legend.append("█ ", style=BAR_COLOURS.get(key, "white"))
            legend.append(f"{key} {value:.2f}  ")
        legend.append("· free  (GiB)", style="green")
        if plan.host_ram is not None:
            ram = plan.host_ram
            of = "" if ram.available_gib is None else f" of {ram.available_gib:.0f}"
            legend.append(f"\nhost RAM {ram.total_gib:.1f}{of} GiB per node; merging needs {ram.parts['merge']:.1f}")
        self.query_one("#memory-legend", Static).update(legend)
        table = self.query_one("#plan-settings", DataTable)
        table.clear()
        for key, value in plan.settings.items():
            reason = plan.reasons.get(key)
            shown = yaml_spelling(value)
            table.add_row(key, Text(shown), reason.kind if reason else "", Text(in_app_words(reason.text)) if reason else "",
                          key=key)
        self.query_one("#plan-warnings", Static).update(
            Content("\n").join(Content.from_markup("[yellow]warning:[/yellow] $w", w=in_app_words(w)) for w in plan.warnings))
        self.show_cutoffs(plan)

    def show_cutoffs(self, plan) -> None:
        """The cost of each cutoff_len (with a dataset): Enter on a row plans with it."""
        options = self.query_one("#cutoff-options", DataTable)
        options.clear()
        options.display = bool(plan.cutoff_options)
        self.query_one("#cutoff-title", Static).update(
            "Cutoff options: Enter on a row plans with that cutoff_len" if plan.cutoff_options else "")
        for option in plan.cutoff_options:
            planned = option["cutoff_len"] == plan.settings.get("cutoff_len")
            options.add_row(f"{option['cutoff_len']}{' (planned)' if planned else ''}", str(option["rows_truncated"]),
                            f"{option['per_device_gib']:.1f}", "yes" if option["fits"] else "no",
                            key=str(option["cutoff_len"]))

    @on(DataTable.RowSelected, "#cutoff-options")
    def pick_cutoff(self, event: DataTable.RowSelected) -> None:
        self.state.set_overrides({"cutoff_len": int(str(event.row_key.value))})
        self.replan()

    @staticmethod
    def time_text(plan) -> str:
        """The time estimate's line (tui.plan.timing.summary_line), or '' without one."""
        from tui.plan.timing import summary_line

        return summary_line(plan.time_estimate) if plan.time_estimate is not None else ""

    @on(DataTable.RowHighlighted, "#plan-settings")
    def explain_row(self, event: DataTable.RowHighlighted) -> None:
        plan = self.state.plan
        key = str(event.row_key.value)
        reason = plan.reasons.get(key) if plan else None
        if reason:
            self.query_one("#setting-detail", Static).update(
                Content.from_markup("[b]$key[/b] ($kind, rule $rule): $text.  Enter edits it.",
                                    key=key, kind=reason.kind, rule=reason.rule, text=in_app_words(reason.text)))

    @on(DataTable.RowSelected, "#plan-settings")
    def edit_row(self, event: DataTable.RowSelected) -> None:
        """Enter on a setting puts `key=value` in the Set box to edit."""
        key = str(event.row_key.value)
        assert self.state.plan is not None  # the table lists the plan's settings
        value = self.state.plan.settings.get(key)
        box = self.query_one("#plan-set", Input)
        box.value = f"{key}={yaml_spelling(value)}"
        box.focus()

    @on(Button.Pressed, "#plan-next")
    def next_step(self) -> None:
        if self.state.plan is None:
            self.notify("no plan yet", severity="warning")
            return
        if not self.state.plan.fits:
            self.notify("this plan does not fit: the bundle can still be written, and will warn", severity="warning")
        self.app.action_next_step()
