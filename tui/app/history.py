"""The run history in the app (`sft-tui history --app`): one row per run the history knows, its estimated
against measured memory and time with the errors (tui.history, the same rows as the CLI's table). Enter
opens a run's monitor; space marks runs, and `c` compares the two (or more) marked."""

from __future__ import annotations

from pathlib import Path

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.coordinate import Coordinate
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Header, Static

from tui.app.monitor import MonitorScreen
from tui.app.table import Table
from tui.app.workers import WorkerErrors

COLUMNS = ("", "run", "outcome", "device", "method", "memory GiB est/measured", "err", "time est/measured", "err",
           "tok/s measured")


def _gib(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def _seconds(value) -> str:
    if value is None:
        return "-"
    from tui.plan.timing import human_duration

    return f"{value:.1f} s" if value < 59.5 else human_duration(value)


def _pct(value) -> str:
    return "" if value is None else f"{value:+.0f} %"


def cells(run: dict, marked: bool) -> tuple:
    m, t = run["memory"], run["time"]
    measured = m["measured_gib"] if m["measured_gib"] is not None else (  # NVML's, else RECORD_VRAM's (a CPU's 0)
        m["measured_reserved_gib"] if m["measured_reserved_gib"] is not None else m["measured_allocated_gib"])
    rate = t["measured_tokens_per_second"]
    return ("•" if marked else " ", run["run_id"], run["outcome"] or "-", run["device"] or "-", run["method"] or "-",
            f"{_gib(m['estimated_gib'])} / {_gib(measured)}", _pct(m["error_pct"]),
            f"{_seconds(t['estimated_seconds'])} / {_seconds(t['measured_seconds'])}", _pct(t["error_pct"]),
            "-" if rate is None else f"{rate:,.0f}")


def read_history(runs_dir: Path | None = None, model: str | None = None,
                 hardware: str | None = None) -> tuple[list[dict], str | None]:
    """The runs, newest first, after recording those in runs_dir; and a sentence when the history was not usable."""
    from tui.history.record import compared
    from tui.history.store import History, HistoryProblem
    from tui.runs.lifecycle import find_runs
    from tui.runs.recording import record_runs

    note = record_runs(find_runs(runs_dir) or find_runs(runs_dir / "runs")) if runs_dir else None
    try:
        with History() as history:
            return [compared(row) for row in history.runs(model=model, hardware=hardware)], note or (history.notes[0] if history.notes else None)
    except HistoryProblem as problem:
        return [], str(problem)


class HistoryScreen(WorkerErrors, Screen):
    """Every run the history knows, estimated against measured."""

    BINDINGS = [Binding("enter", "open_run", "Monitor"), Binding("space", "mark", "Mark"),
                Binding("c", "compare", "Compare marked"), Binding("r", "reload", "Reload"),
                Binding("escape", "back", "Back")]
    DEFAULT_CSS = """
    HistoryScreen #history-title { height: auto; padding: 0 1; }
    HistoryScreen DataTable { height: 1fr; }
    """

    def __init__(self, runs_dir: Path | None = None, closable: bool = False, model: str | None = None,
                 hardware: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.runs_dir = runs_dir
        self.filters = {"model": model, "hardware": hardware}  # `history --model M --hardware H`
        self.closable = closable
        self.runs: list[dict] = []
        self.marked: set[str] = set()  # run directories

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static("reading the run history…", id="history-title")
        yield Table(id="history-table", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        self.load()

    def action_reload(self) -> None:
        self.load()

    def action_back(self) -> None:
        if self.closable:
            self.app.pop_screen()
        else:
            self.app.exit()

    @work(thread=True, exclusive=True, group="history", exit_on_error=False)
    def load(self) -> None:
        runs, note = read_history(self.runs_dir, **self.filters)
        self.app.call_from_thread(self.show, runs, note)

    def show(self, runs: list[dict], note: str | None) -> None:
        self.runs = runs
        table = self.query_one(DataTable)
        table.clear(columns=True)
        rows = [cells(run, run["run_dir"] in self.marked) for run in runs]
        for i, label in enumerate(COLUMNS):  # widths from the cells: drawn the same at once, every time
            table.add_column(label, width=max([len(label)] + [len(str(row[i])) for row in rows]))
        for run, row in zip(runs, rows):
            table.add_row(*row, key=run["run_dir"] + "\0" + run["run_id"])
        title = f"{len(runs)} run{'s' if len(runs) != 1 else ''} in the history" if runs else \
            "no runs in the history yet (export, run, status and monitor record the runs they see)"
        title += "  ·  enter: monitor  space: mark  c: compare the marked"
        self.query_one("#history-title", Static).update(title + (f"\n{note}" if note else ""))

    def _current(self) -> dict | None:
        table = self.query_one(DataTable)
        if not self.runs or table.cursor_row is None or table.cursor_row >= len(self.runs):
            return None
        return self.runs[table.cursor_row]

    def action_mark(self) -> None:
        run = self._current()
        if run is None:
            return
        self.marked ^= {run["run_dir"]}
        table = self.query_one(DataTable)
        table.update_cell_at(Coordinate(table.cursor_row, 0), "•" if run["run_dir"] in self.marked else " ")

    def action_open_run(self) -> None:
        run = self._current()
        if run is None:
            return
        if not Path(run["run_dir"], "run_sft.sh").is_file():
            self.notify(f"{run['run_dir']} is not there any more", severity="warning")
            return
        self.app.push_screen(RunScreen(Path(run["run_dir"])))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.action_open_run()

    def action_compare(self) -> None:
        marked = [run["run_dir"] for run in self.runs if run["run_dir"] in self.marked]
        if len(marked) < 2:
            self.notify("mark two runs with space to compare them", severity="warning")
            return
        from tui.app.compare import CompareScreen

        self.app.push_screen(CompareScreen([Path(p) for p in marked], closable=True))


class RunScreen(MonitorScreen):
    """A run's monitor opened from the history: escape goes back to the history."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back to the history")]


class HistoryApp(App):
    """`sft-tui history --app`: the history screen alone."""

    TITLE = "sft-tui"
    SUB_TITLE = "run history"
    BINDINGS = [Binding("q", "quit", "Quit"), Binding("ctrl+q", "quit", "Quit", show=False, priority=True)]

    def __init__(self, runs_dir: Path | None = None, model: str | None = None, hardware: str | None = None):
        super().__init__()
        self.runs_dir = runs_dir
        self.filters = {"model": model, "hardware": hardware}

    def on_mount(self) -> None:
        self.push_screen(HistoryScreen(self.runs_dir, model=self.filters["model"], hardware=self.filters["hardware"]))


def run_history_app(runs_dir: Path | None = None, model: str | None = None, hardware: str | None = None) -> int:
    HistoryApp(runs_dir, model, hardware).run()
    return 0
