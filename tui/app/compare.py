"""Runs side by side in the app (`sft-tui compare RUN_DIR... --app`): every run's train loss (and
eval loss, dotted) on one chart, one colour per run, with the settings that differ and each run's
results beside it. What is compared is tui.runs.compare's, the same as the CLI's table."""

from __future__ import annotations

from pathlib import Path

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.content import Content
from textual.screen import Screen
from textual.widgets import Footer, Header, Static
from textual_plotext import PlotextPlot

from tui.app.workers import WorkerErrors

# plotext colour names, and the same colours for the side panel's markers
COLOURS = [("blue+", "#5f87ff"), ("orange+", "#ffaf00"), ("green+", "#5fd75f"), ("magenta+", "#ff5fff"),
           ("cyan+", "#5fd7ff"), ("red+", "#ff5f5f"), ("yellow+", "#ffff5f"), ("white", "#d0d0d0")]


def colour(index: int) -> tuple[str, str]:
    return COLOURS[index % len(COLOURS)]


def short(value) -> str:
    from tui.runs.run_settings import shown_value

    text = shown_value(value)
    return text if len(text) <= 28 else "…" + text[-27:]


class CompareScreen(WorkerErrors, Screen):
    """The loss curves of several runs on one chart, the differing settings beside it."""

    BINDINGS = [Binding("r", "reload", "Reload"), Binding("escape", "back", "Back")]
    DEFAULT_CSS = """
    CompareScreen #compare-title { height: auto; padding: 0 1; }
    CompareScreen #compare-body { height: 1fr; }
    CompareScreen #compare-plot { width: 1fr; min-width: 30; }
    CompareScreen #compare-side { width: 42; padding: 0 1; }
    """

    def __init__(self, run_dirs: list[Path], closable: bool = False, **kwargs):
        super().__init__(**kwargs)
        self.run_dirs = [Path(p) for p in run_dirs]
        self.comparison = None
        self.closable = closable  # opened over another screen (the monitor): escape goes back to it

    def action_back(self) -> None:
        if self.closable:
            self.app.pop_screen()
        else:
            self.app.exit()

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("reading the runs…", id="compare-title")
        with Horizontal(id="compare-body"):
            yield PlotextPlot(id="compare-plot")
            with VerticalScroll(id="compare-side"):
                yield Static("", id="compare-runs")
                yield Static("", id="compare-settings")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#compare-plot", PlotextPlot).plt.title("train loss (dots: eval loss)")
        self.load()

    def action_reload(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, group="compare", exit_on_error=False)
    def load(self) -> None:
        from tui.runs.compare import CompareError, compare_runs

        try:
            comparison = compare_runs(self.run_dirs)
        except CompareError as err:
            self.app.call_from_thread(self.show_error, str(err))
            return
        self.app.call_from_thread(self.show, comparison)

    def show_error(self, message: str) -> None:
        self.query_one("#compare-title", Static).update(Content.from_markup("[red]$m[/red]", m=message))

    def show(self, comparison) -> None:
        self.comparison = comparison
        runs = comparison.runs
        self.query_one("#compare-title", Static).update(Content.from_markup(
            "[b]$n runs[/b]  loss by step; settings that differ on the right (r: reload)", n=str(len(runs))))
        plot = self.query_one("#compare-plot", PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        for i, run in enumerate(runs):
            name, _ = colour(i)
            if run.loss_curve:
                plt.plot([s for s, _ in run.loss_curve], [v for _, v in run.loss_curve], label=run.name,
                         marker="braille", color=name)
            if run.eval_curve:
                plt.scatter([s for s, _ in run.eval_curve], [v for _, v in run.eval_curve], marker="dot", color=name)
        plt.xlabel("step")
        plot.refresh()

        lines = [Content.from_markup("[b]Runs[/b]")]
        for i, run in enumerate(runs):
            _, hex_colour = colour(i)
            done = f"{run.resumed_at + 1}-{run.steps_done or 0}" if run.resumed_at else f"{run.steps_done or 0}"
            steps = f"steps {done}/{run.total_steps or '?'}"  # a resumed run: the steps it trained itself
            final = f"{run.final_loss:.4f}" if run.final_loss is not None else "-"
            best = f"{run.best_eval_loss:.4f}" if run.best_eval_loss is not None else None
            lines.append(Content.from_markup(f"[{hex_colour}]━━[/] [b]$name[/b]", name=run.name))
            lines.append(Content(f"   {run.status}, {steps}, loss {final}" + (f", eval {best}" if best else "")))
        self.query_one("#compare-runs", Static).update(Content("\n").join(lines))

        if comparison.differences:
            rows = [Content.from_markup("\n[b]Settings that differ[/b] ($n)", n=str(len(comparison.differences)))]
            for key, values in comparison.differences.items():
                rows.append(Content(key))
                for i, (run, value) in enumerate(zip(runs, values)):
                    _, hex_colour = colour(i)
                    rows.append(Content.from_markup(f"  [{hex_colour}]━[/] $value", value=short(value)))
        else:
            rows = [Content("\nNo setting differs between these runs.")]
        self.query_one("#compare-settings", Static).update(Content("\n").join(rows))


class CompareApp(App):
    """`sft-tui compare RUN_DIR... --app`: the compare screen alone."""

    TITLE = "sft-tui"
    SUB_TITLE = "compare runs"
    BINDINGS = [Binding("q", "quit", "Quit"), Binding("ctrl+q", "quit", "Quit", show=False, priority=True)]

    def __init__(self, run_dirs: list[Path]):
        super().__init__()
        self.run_dirs = run_dirs

    def on_mount(self) -> None:
        self.push_screen(CompareScreen(self.run_dirs))


def run_compare_app(run_dirs: list[Path]) -> int:
    CompareApp(run_dirs).run()
    return 0
