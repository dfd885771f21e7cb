"""Step 3: dataset files, validated in a worker with progress; problems open in place."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.content import Content
from textual.widgets import (
    Button,
    Checkbox,
    DataTable,
    Input,
    Label,
    ProgressBar,
    Static,
)

from tui.app.table import Table
from tui.app.wizard.state import Step
from tui.app.wizard.widgets import PathInput
from tui.common.text import plural


def drop_label(drop: bool) -> str:
    if drop:
        return "Drop the rows with errors: yes  (a cleaned copy goes in the run's data/)"
    return "Drop the rows with errors: no  (space or a click drops them)"


class DatasetStep(Step):
    def compose(self) -> ComposeResult:
        yield Static("Dataset files or directories (.jsonl/.json; alpaca, sharegpt or openai format). A directory with "
                     "train/val/test files gives the splits.", classes="note")
        with Horizontal(classes="row"):
            yield Label("Files", classes="label")
            yield PathInput(placeholder="data/train.jsonl data/val.jsonl  (Tab completes paths)", id="dataset-input",
                            select_on_focus=False)  # focus comes back here after a refusal: typing goes on
            yield Button("Validate", id="validate")
        yield ProgressBar(total=100, show_eta=False, id="validate-progress")
        yield Static("", id="dataset-stats")
        problems = Table(id="dataset-problems", cursor_type="row", zebra_stripes=True)
        problems.add_columns("file", "line", "field", "severity", "message")
        yield problems
        yield Static("", id="problem-row", classes="note")
        # Textual's checkbox draws its X in both states (only the colour differs): the label says yes or no.
        yield Checkbox(drop_label(self.state.drop_errors), self.state.drop_errors, id="drop-errors")
        yield Button("Next: plan", variant="primary", id="dataset-next")

    def on_mount(self) -> None:
        self.problem_rows: dict = {}  # table row key -> (file, problem)
        self.query_one("#drop-errors").display = False
        if self.state.datasets:
            self.query_one("#dataset-input", Input).value = " ".join(self.state.datasets)

    @on(Button.Pressed, "#validate")
    @on(Input.Submitted, "#dataset-input")
    def start_validation(self) -> None:
        paths = self.query_one("#dataset-input", Input).value.split()
        if not paths:
            self.notify("type the dataset paths first", severity="warning")
            return
        self.state.choose_datasets(paths)
        self.query_one("#dataset-stats", Static).update("validating…")
        self.validate(paths)

    @work(thread=True, exclusive=True, group="validate", exit_on_error=False)
    def validate(self, paths: list[str]) -> None:
        from tui.datasets.validate import validate_paths

        bar = self.query_one("#validate-progress", ProgressBar)

        def progress(rows: int, done: int, total: int) -> None:
            self.app.call_from_thread(bar.update, total=max(total, 1), progress=done)

        report = validate_paths([Path(p).expanduser() for p in paths], progress=progress)
        self.app.call_from_thread(self.show, report)

    @on(Input.Changed, "#dataset-input")
    def paths_changed(self, event: Input.Changed) -> None:
        self.state.datasets_edited(event.value.split())  # other files: their report and plan are gone

    def show(self, report) -> None:
        self.state.dataset_validated(report)
        table = self.query_one("#dataset-problems", DataTable)
        table.clear()
        self.problem_rows = {}
        self.query_one("#problem-row", Static).update("")
        if report.file_errors:  # a path that cannot be read: its error alone, no statistics of nothing
            self.query_one("#dataset-stats", Static).update(Content("\n").join(
                Content.from_markup("[red]$error[/red]", error=error) for error in report.file_errors))
            self.query_one("#drop-errors").display = False
            return
        data = report.to_json()
        stats = data["stats"]
        lines: list[str | Content] = [f"{plural(stats['valid_rows'], 'valid row')} of {stats['rows']}"
                 + (f"; splits: {', '.join(f'{k} {v}' for k, v in stats['splits'].items())}" if stats["splits"] else ""),
                 f"recommended cutoff_len {data['recommended_cutoff_len']} ({stats['cutoff']['covers']}; "
                 f"{plural(stats['cutoff']['rows_truncated'], 'row')} longer)"]
        for f in report.files:  # a .json array that does not parse: LLaMA-Factory loads none of it
            if f.load_error:
                lines.append(Content.from_markup(
                    "[red]$name: $error[/red]; the statistics are of those rows, and dropping the rows with errors "
                    "trains on the $valid valid ones (a cleaned copy)", name=f.path.name, error=f.load_error,
                    valid=str(f.valid_rows)))
        lengths = stats["lengths"].get("row", {})
        if lengths.get("n"):
            lines.append(f"row length (tokens{'' if stats['lengths'].get('exact') else ', approximate'}): "
                         f"median {lengths.get('p50')}, p99 {lengths.get('p99')}, max {lengths.get('max')}")
        errors = sum(f.error_count for f in report.files)
        warnings = sum(f.problem_count for f in report.files) - errors
        said = plural(warnings, "warning")
        lines.append(Content.from_markup(f"[red]{plural(errors, 'error')}[/red], {said}") if errors else f"no errors, {said}")
        self.query_one("#dataset-stats", Static).update(Content("\n").join(lines))
        for f in report.files:
            for n, p in enumerate(f.problems):
                key = f"{f.path}:{n}"
                self.problem_rows[key] = (f.path, p)
                table.add_row(Text(f.path.name), str(p.line or ""), Text(p.field), p.severity, Text(p.message), key=key)
        self.query_one("#drop-errors").display = bool(errors)

    @on(DataTable.RowHighlighted, "#dataset-problems")
    @on(DataTable.RowSelected, "#dataset-problems")
    def open_row(self, event: DataTable.RowHighlighted | DataTable.RowSelected) -> None:
        """The problem under the cursor (moved, clicked or Enter) is shown below the table whole:
        the table's message column is cut to the terminal's width."""
        key = str(event.row_key.value)
        if key not in self.problem_rows:
            return
        path, problem = self.problem_rows[key]
        text = Text(f"{path}:{problem.line or '?'} {problem.field or '(row)'}: {problem.message}\n", style="bold")
        if problem.line:
            with open(path, encoding="utf-8", errors="replace") as f:
                row = next((line for n, line in enumerate(f, start=1) if n == problem.line), "")
            text.append(row[:2000].rstrip("\n") or "(empty line)")
        shown = self.query_one("#problem-row", Static)
        shown.update(text)
        if isinstance(event, DataTable.RowSelected):
            shown.scroll_visible()

    @on(Checkbox.Changed, "#drop-errors")
    def drop_changed(self, event: Checkbox.Changed) -> None:
        self.state.set_drop_errors(event.value)
        event.checkbox.label = drop_label(event.value)

    def refusal(self) -> str | None:
        """The one dataset gate (tui.datasets.gate, as `sft-tui export`)."""
        from tui.datasets.gate import dataset_refusal

        return dataset_refusal(self.state.report, self.state.drop_errors, drop_hint="'Drop the rows with errors'")

    def first_input(self):
        """The dataset box until the files pass; the drop-errors choice when only their errors stop them."""
        from tui.datasets.gate import dataset_refusal

        s = self.state
        box = self.query_one("#dataset-input", Input)
        if not box.value.strip() or s.report is None or s.report.file_errors:
            return box
        drop = self.query_one("#drop-errors")
        return drop if drop.display and dataset_refusal(s.report, s.drop_errors) else None

    @on(Button.Pressed, "#dataset-next")
    def next_step(self) -> None:
        self.app.action_next_step()  # the app's one dataset gate decides, as for ctrl+n and the step bar
