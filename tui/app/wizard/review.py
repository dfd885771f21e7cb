"""Step 5: the bundle's files previewed, the run's name and environment, export."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.syntax import Syntax
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import (
    Button,
    Input,
    Label,
    Select,
    Static,
)

from tui.app.wizard.state import Step, shown_path
from tui.app.wizard.widgets import Confirm, PathInput, overrun, unless_it_does_not_fit
from tui.app.wizard.wording import in_app_words
from tui.common.text import plural, yaml_spelling

if TYPE_CHECKING:
    from tui.bundle.spec import LaunchOptions

LEXERS = {".yaml": "yaml", ".sh": "bash", ".json": "json", ".md": "markdown", ".sbatch": "bash"}


class ReviewStep(Step):
    def compose(self) -> ComposeResult:
        with Horizontal(classes="row"):
            yield Label("Run name", classes="label")
            yield Input(placeholder="default: <model>-<method>-<date>", id="run-name")
        with Horizontal(classes="row"):
            yield Label("Output", classes="label")
            yield PathInput(value=".", id="out-dir")
        with Horizontal(classes="row"):
            yield Label("Train env", classes="label")
            yield Input(placeholder="conda:NAME or venv:PATH (empty: llamafactory-cli on PATH)", id="train-env")
        with Horizontal(classes="row"):
            yield Button("Export", variant="primary", id="export")
            yield Button("Next: run", id="review-next")
        yield Static("", id="review-fit")
        yield Static("", id="export-result")
        yield Static("", id="plan-diff")
        yield Select([], prompt="file to preview", id="review-file")
        yield Static("", id="review-preview")

    def on_mount(self) -> None:
        self.default_env: str | None = None  # the environment filled in for the user, while they keep it
        self.result_for: tuple | None = None  # the choices() the export-result line is about
        self.query_one("#train-env", Input).value = self.state.env or self.fill_default_env()

    def fill_default_env(self) -> str:
        """The same default `sft-tui export` takes for the hardware chosen (tui.bundle.environment);
        empty means llamafactory-cli on PATH."""
        from tui.bundle.environment import default_env

        self.default_env = default_env(self.state.hardware)[0] or ""
        return self.default_env

    def shown(self) -> None:
        box = self.query_one("#train-env", Input)
        if self.default_env is not None and box.value == self.default_env:  # the hardware may have changed since
            box.value = self.fill_default_env()
        self.forget_stale_result()
        self.preview()

    def forget_stale_result(self) -> None:
        """The 'Wrote …' (or 'already exists') line is about the plan it was written for: once the
        plan has changed it goes, and the step says the bundle is of the old plan."""
        if self.result_for is None or self.result_for == self.state.choices():
            return
        self.result_for = None
        result = self.query_one("#export-result", Static)
        run_dir = self.state.run_dir
        if run_dir is not None and self.state.export_is_stale():
            result.update(Content.from_markup(
                "[yellow]The plan changed since $run was exported[/yellow]: Export writes the new plan "
                "(step 6 runs only what is exported).", run=shown_path(run_dir)))
        else:
            result.update("")

    def launch(self) -> LaunchOptions:
        """The review's choices (the environment, the output folder, the run name) into the state, and
        the bundle's launch options from them."""
        from tui.bundle.spec import LaunchOptions

        self.state.set_launch(self.query_one("#train-env", Input).value.strip(),
                              self.query_one("#out-dir", Input).value.strip(),
                              self.query_one("#run-name", Input).value.strip())
        return LaunchOptions(env=self.state.env or None)

    def spec(self) -> dict:
        """The spec the preview renders: the one export (tui.bundle.export) makes the same from the same choices."""
        from tui.bundle.spec import make_spec

        launch, s = self.launch(), self.state
        return make_spec(s.plan, s.request, s.report, launch, Path(s.out_dir).expanduser(), s.run_name or None,
                         hardware_name=s.hardware)

    @on(Input.Changed)
    def inputs_changed(self) -> None:
        if self.state.plan is not None:
            self.preview()

    def preview(self) -> None:
        from tui.bundle.spec import BundleError, render_bundle

        if self.state.plan is None:
            self.query_one("#plan-diff", Static).update("[yellow]make a plan first (step 4)[/yellow]")
            return
        try:
            self.files = render_bundle(self.spec())
        except BundleError as err:
            self.query_one("#plan-diff", Static).update(Text(in_app_words(str(err)), style="red"))
            return
        plan = self.state.plan
        estimate = plan.to_json()["estimate"]
        over = overrun(estimate, self._unit())
        self.query_one("#review-fit", Static).update(
            Content.from_markup("[b red]DOES NOT FIT[/b red]: $over (exporting asks first)", over=over) if over else
            Content.from_markup("[green]fits[/green]: needs $need GiB of the $usable GiB usable per $unit",
                                need=f"{estimate['per_device_gib']:.1f}", usable=f"{estimate['usable_gib']:.1f}",
                                unit=self._unit()))
        changed = [Content.from_markup("  $key = $value   [dim]($kind: $text)[/dim]", key=key, value=yaml_spelling(value),
                                       kind=plan.reasons[key].kind, text=in_app_words(plan.reasons[key].text))
                   for key, value in plan.settings.items() if key in plan.reasons and plan.reasons[key].kind not in ("recipe", "default")]
        self.query_one("#plan-diff", Static).update(
            Content("\n").join([Content.from_markup(f"[b]Differs from the {plan.recipe} recipe and LLaMA-Factory's defaults:[/b]"),
                                 *changed]))
        select = self.query_one("#review-file", Select)
        current = select.value
        select.set_options([(name, name) for name in self.files])
        select.value = current if current in self.files else "train.yaml"

    @on(Select.Changed, "#review-file")
    def show_file(self, event: Select.Changed) -> None:
        name = event.value
        if not isinstance(name, str) or name not in getattr(self, "files", {}):
            return
        lexer = LEXERS.get(Path(name).suffix, "text")
        self.query_one("#review-preview", Static).update(Syntax(self.files[name], lexer, line_numbers=True,
                                                                word_wrap=True, theme="ansi_dark"))

    def _unit(self) -> str:
        request = self.state.request
        return "GPU" if request is not None and request.devices[0].is_gpu else "device"

    @on(Input.Submitted, "#run-name")
    def name_submitted(self) -> None:
        """Enter in the run name exports, as the Export button does (and asks what it asks)."""
        self.export()

    @on(Button.Pressed, "#export")
    def export(self) -> None:
        if self.state.plan is None:
            self.notify("make a plan first (step 4)", severity="warning")
            return
        unless_it_does_not_fit(self.app, self.state.plan.to_json()["estimate"], "export", self.write, self._unit())

    def write(self, force: bool = False) -> None:
        """Write the bundle through the one export (tui.bundle.export, `sft-tui export`'s too); when the
        run directory is there already, ask whether to update it (as `sft-tui export --force`: files the
        user edited are kept, the new version beside them)."""
        from tui.bundle.export import export_bundle
        from tui.bundle.spec import NEW_SUFFIX, BundleError
        from tui.bundle.write import RunDirExists
        from tui.datasets.formats import DatasetFileError

        result = self.query_one("#export-result", Static)
        try:
            launch, s = self.launch(), self.state
            written = export_bundle(s.plan, s.request, s.report, launch, Path(s.out_dir).expanduser(),
                                    s.run_name or None, hardware_name=s.hardware, force=force,
                                    drop_errors=s.drop_errors).result
        except (BundleError, DatasetFileError, OSError) as err:
            self.result_for = self.state.choices()
            result.update(Text(in_app_words(str(err)), style="red"))
            if isinstance(err, RunDirExists):
                self.ask_to_update(err.run_dir)
            return
        self.state.exported(written.run_dir)
        self.result_for = self.state.choices()
        self.app.mark_exported()
        kept = "".join(f"\nkept your edited {name}; the new version is beside it as {name}{NEW_SUFFIX}"
                       for name in written.kept)
        result.update(Content.from_markup(
            "[green]$did $run[/green]: $files\nStart it here (step 6) or headless: sft-tui run $run\n"
            "For another machine: sft-tui pack $run (the bundle and its data, one archive)$kept",
            did="Updated" if force else "Wrote", run=str(written.run_dir), files=", ".join(written.written), kept=kept))
        for copy, rows in written.dropped.items():
            self.notify(f"{plural(rows, 'row')} with errors left out of the copy {copy}")
        self.notify(f"{'updated' if force else 'exported'} {written.run_dir}")

    def ask_to_update(self, run_dir: Path) -> None:
        def answered(yes: bool | None) -> None:
            if yes:
                self.write(force=True)
            else:
                self.query_one("#run-name", Input).focus()

        self.app.push_screen(Confirm(f"{shown_path(run_dir)} already exists. Update it with this plan (files you "
                                     "edited there are kept, the new version beside them), or choose another run "
                                     "name?", "Update it", "Choose another name"), answered)

    def first_input(self):
        name = self.query_one("#run-name", Input)  # Enter there exports
        return name if not name.value.strip() else None

    @on(Button.Pressed, "#review-next")
    def next_step(self) -> None:
        if self.state.run_dir is None:
            self.notify("export the bundle first", severity="warning")
            return
        self.app.action_next_step()
