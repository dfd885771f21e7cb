"""The monitor's panel after a finished run: the commands to merge and serve it, a prompt the base
model and the fine-tuned one answer side by side (tui.after.chat), and an evaluation on the test
split (tui.after.evaluate). Both run in thread workers under the app's one worker-error policy."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Button, DataTable, Input, Static

from tui.app.table import Table
from tui.app.workers import WorkerErrors
from tui.common.text import plural


class AfterTraining(WorkerErrors, Vertical):
    """Shown by the monitor (tui.app.monitor.RunMonitor) once its run has finished."""

    def __init__(self, run_dir: Path, shown_dir: Path, **kwargs):
        super().__init__(**kwargs)
        self.run_dir, self.shown_dir = run_dir, shown_dir

    def compose(self) -> ComposeResult:
        yield Static("", id="serve-commands")
        with Horizontal(classes="after-row"):
            yield Input(placeholder="Try a prompt: the base model and the fine-tuned one answer (Enter)", id="try-prompt")
            yield Button("Evaluate on the test split", id="evaluate")
        with Horizontal(id="answers"):
            yield Static("", id="answer-base", classes="answer")
            yield Static("", id="answer-tuned", classes="answer")
        yield Static("", id="eval-metrics")
        eval_rows = Table(id="eval-rows", cursor_type="row", zebra_stripes=True)
        eval_rows.add_columns("#", "expected", "generated")
        yield eval_rows

    def show(self, output_dir: str | None, shown_output_dir: Path | None) -> None:
        """The serving commands for the run's merged model, and the panel itself."""
        from tui.after.run import AfterError, Run
        from tui.bundle.spec import serving_commands

        try:
            template = Run.open(self.run_dir).yaml_file("export.yaml").get("template")
        except AfterError:  # no plan.json or export.yaml (a copied log): the commands still help
            template = None
        if output_dir:
            commands = "\n".join(f"  {c}" for c in serving_commands(f"{shown_output_dir}-merged", template))
            self.query_one("#serve-commands", Static).update(Content.from_markup(
                "[b]After training[/b]: merge with `sft-tui merge $run`, then serve:\n$commands",
                run=str(self.shown_dir), commands=commands))
        self.display = True

    @on(Input.Submitted, "#try-prompt")
    def ask(self, event: Input.Submitted) -> None:
        prompt = event.value.strip()
        if not prompt:
            return
        for selector in ("#answer-base", "#answer-tuned"):
            self.query_one(selector, Static).update("generating…")
        self.try_prompt(prompt)

    @work(thread=True, exclusive=True, group="try", exit_on_error=False)
    def try_prompt(self, prompt: str) -> None:
        from tui.after.chat import try_run
        from tui.after.run import AfterError

        try:
            answers = try_run(self.run_dir, [prompt], compare=True, generation={"max_new_tokens": 128})
        except AfterError as err:
            self.app.call_from_thread(self.query_one("#answer-base", Static).update,
                                      Content.from_markup("[red]$err[/red]", err=str(err)))
            return
        by_variant = {a.variant: a.answer for a in answers}
        self.app.call_from_thread(self.query_one("#answer-base", Static).update,
                                  Content.from_markup("[b]base[/b]\n$answer", answer=by_variant.get("base", "").strip() or "(empty)"))
        self.app.call_from_thread(self.query_one("#answer-tuned", Static).update,
                                  Content.from_markup("[b]fine-tuned[/b]\n$answer",
                                                      answer=by_variant.get("fine-tuned", "").strip() or "(empty)"))

    @on(Button.Pressed, "#evaluate")
    def evaluate(self) -> None:
        self.query_one("#eval-metrics", Static).update("evaluating on the test split…")
        self.run_eval()

    @work(thread=True, exclusive=True, group="eval", exit_on_error=False)
    def run_eval(self) -> None:
        from tui.after.evaluate import eval_run
        from tui.after.run import AfterError

        try:
            result = eval_run(self.run_dir)
        except AfterError as err:
            self.app.call_from_thread(self.query_one("#eval-metrics", Static).update,
                                      Content.from_markup("[red]$err[/red]", err=str(err)))
            return
        self.app.call_from_thread(self.show_eval, result)

    def show_eval(self, result) -> None:
        metrics = ", ".join(f"{k.removeprefix('predict_')} {v:.4g}" for k, v in result.metrics.items()
                            if isinstance(v, (int, float)) and ("rouge" in k or "bleu" in k))
        note = result.empty_note()
        self.query_one("#eval-metrics", Static).update(Content.from_markup(
            "[b]test split[/b] ($rows): $metrics  saved in $where" + ("\n[yellow]$note[/yellow]" if note else ""),
            rows=plural(len(result.rows), "row"), metrics=metrics, where=str(result.out_dir), note=note or ""))
        table = self.query_one("#eval-rows", DataTable)
        table.clear()
        for n, row in enumerate(result.rows, start=1):
            table.add_row(str(n), Text(row.get("label", "").strip()[:200]), Text(row.get("predict", "").strip()[:200]))
