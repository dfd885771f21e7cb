"""The run monitor: progress and ETA, loss curve, learning rate, GPU memory, the live log; Stop
and Detach; a diagnosis panel with "retry with this fix" when the run fails.

Everything slow happens in thread workers: the log follower (tui.runs.watch) every POLL_S, the GPU
sampler every second. Events are applied in batches, so the screen redraws at most a few times
a second whatever the log rate; the log view keeps the last LOG_LINES lines.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import Screen
from textual.widgets import (
    Button,
    Footer,
    Header,
    Input,
    ProgressBar,
    RichLog,
    Sparkline,
    Static,
)
from textual_plotext import PlotextPlot

from tui.app.after_training import AfterTraining
from tui.app.chain import RetryChain
from tui.app.health import HealthPanel, alert, retry_for_verdict
from tui.app.loss_curve import LossCurve
from tui.app.wizard.widgets import Confirm
from tui.app.wizard.wording import in_app_words
from tui.runs.lifecycle import (
    ENDED,  # a run's last event is named after its ended status
)
from tui.runs.logfiles import format_duration
from tui.runs.speed import speed_text

if TYPE_CHECKING:
    from tui.runs.watch import RunWatcher

POLL_S = 0.5
GPU_POLL_S = 1.0
LOG_LINES = 2000
def shown_path(path: Path | str) -> Path:
    """A path as the screen shows it: relative to the working directory when under it (shorter,
    and the same wherever the runs folder is), else absolute."""
    path = Path(path)
    try:
        return path.relative_to(Path.cwd())
    except ValueError:
        return path


class ConfirmStop(Confirm):
    def __init__(self):
        super().__init__("Stop this run? The trainer finishes its step and saves a checkpoint, which "
                         "`sft-tui run RUN_DIR --resume` continues from later.", "Stop the run", "Keep training")


class RunMonitor(RetryChain, Vertical):
    """Follows one run directory. Used by the wizard's Run step and by `sft-tui monitor`."""

    BINDINGS = [
        Binding("s", "stop", "Stop"),
        Binding("d", "detach", "Detach"),
        Binding("p", "toggle_pause", "Pause log"),
        Binding("slash", "search", "Search log"),
        Binding("f", "retry", "Retry with fix", show=False),
        Binding("c", "compare", "Compare runs"),
    ]
    can_focus = True

    def __init__(self, run_dir: Path, auto_retry: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.run_dir = Path(run_dir).resolve()
        self.auto_retry = auto_retry  # retries left to start by themselves (tui.app.chain)
        self.watcher: RunWatcher | None = None
        self.live = False
        self.curve = LossCurve()
        self.gpu_history: dict[int, list[float]] = {}
        self.peak_mib: dict[int, int] = {}
        self.paused = False
        self.search: str | None = None
        self.ended_event = None
        self._dirty_plot = False
        self._estimate_gib = self._plan_estimate()
        self.shown_dir = shown_path(self.run_dir)

    def _plan_estimate(self) -> float | None:
        import json

        try:
            return json.loads((self.run_dir / "plan.json").read_text())["plan"]["estimate"]["per_device_gib"]
        except (OSError, ValueError, KeyError):
            return None

    def compose(self) -> ComposeResult:
        yield Static(Content.from_markup("[b]$name[/b]  $where", name=self.run_dir.name, where=str(self.shown_dir)), id="run-title")
        yield Static("connecting…", id="run-status")
        yield ProgressBar(total=None, show_eta=False, id="run-progress")
        yield HealthPanel(id="health")
        with Horizontal(id="run-charts"):
            yield PlotextPlot(id="loss-plot")
            with Vertical(id="run-side"):
                yield Static("", id="run-numbers")
                yield Static("GPU memory", id="gpu-title")
                yield Vertical(id="gpu-lines")
        with Vertical(id="diagnosis"):
            yield Static("", id="diagnosis-text")
            with Horizontal(id="diagnosis-actions"):
                yield Button("Retry with this fix", variant="warning", id="retry")
        yield AfterTraining(self.run_dir, self.shown_dir, id="after")
        yield Input(placeholder="search the log (Enter), Esc to close", id="log-search")
        yield RichLog(id="run-log", max_lines=LOG_LINES, wrap=False, markup=False, highlight=False)

    def on_mount(self) -> None:
        self.query_one("#diagnosis").display = False
        self.query_one("#after").display = False
        self.query_one("#log-search").display = False
        plot = self.query_one("#loss-plot", PlotextPlot)
        plot.plt.title("loss")
        self.start_following()

    @work(thread=True, exclusive=True, group="open", exit_on_error=False)
    def start_following(self) -> None:
        from tui.runs.watch import RunWatcher

        try:
            watcher = RunWatcher(self.run_dir)
        except Exception as err:  # not a run directory: say so, in the screen
            self.app.call_from_thread(self._set_status, Content.from_markup("[red]$err[/red]", err=str(err)))
            return
        self.watcher = watcher
        self.live = watcher.status.status not in ENDED  # a post-mortem rings no bell
        self.app.call_from_thread(self._started)

    def _started(self) -> None:
        self.set_interval(POLL_S, self.poll_logs)
        self.set_interval(GPU_POLL_S, self.poll_gpus)
        self.set_interval(1.0, self._redraw_plot)
        self.poll_logs()

    def _set_status(self, text: str | Content) -> None:
        self.query_one("#run-status", Static).update(text)

    @work(thread=True, exclusive=True, group="follow", exit_on_error=False)
    def poll_logs(self) -> None:
        if self.watcher is None:
            return
        events = self.watcher.poll()
        status = self.watcher.status
        self.app.call_from_thread(self.apply_events, events, status)

    def apply_events(self, events, status) -> None:
        assert self.watcher is not None  # its poll gave the events
        lines = []
        follower = self.watcher.follower
        for event in events:
            if event.kind == "line":
                lines.append(event.text)
            elif event.kind == "metrics" and not event.data.get("final"):
                self.curve.add(event.data)
                self._dirty_plot = True
            elif event.kind == "resumed":  # the steps after its checkpoint are trained (and logged) again
                self.curve.resumed_at(event.data.get("step"))
                self._dirty_plot = True
                lines.append(f"── {event.text}")
            elif event.kind in ENDED:
                self.ended(event)
                if self.live:
                    alert(self, event, self.run_dir)
            elif event.kind == "health":
                self.query_one(HealthPanel).add(event.text)
                lines.append(f"── health: {event.text}")
                if self.live:
                    alert(self, event, self.run_dir)
            elif event.kind in ("oom", "data_error", "data_warning", "checkpoint"):
                lines.append(f"── {event.kind}: {event.text}")
        if lines and not self.paused:
            log = self.query_one("#run-log", RichLog)
            shown = [line for line in lines if not self.search or self.search in line]
            if shown:
                log.write("\n".join(shown[-LOG_LINES:]))
        total = follower.total_steps
        bar = self.query_one("#run-progress", ProgressBar)
        state = status.status if self.ended_event is None else self.ended_event.kind
        if total:
            bar.update(total=total, progress=follower.step)
        elif state in ENDED:  # ended before its first step: no bar that goes on moving as if it were starting,
            bar.display = False  # and the status line may take the bar's room to say the whole sentence
            self.query_one("#run-status").styles.height = "auto"
        where = (f"step {follower.step}/{total}" if total else "" if state in ("failed", "vanished")
                 else "before its first step" if state in ENDED else "waiting for training to start")
        if state in ("failed", "vanished"):  # the line says why, as the diagnosis below does
            why = in_app_words(self.ended_event.text if self.ended_event is not None else status.detail)
            where = f"{where}: {why}" if where else why
        eta = f"ETA {format_duration(follower.eta)}" if follower.eta is not None and state == "running" else ""
        if state == "running" and (speed := follower.speed.now(follower)):
            eta += f"  {speed_text(speed)}"
        colour = {"running": "green", "finished": "green", "failed": "red", "vanished": "red", "stopped": "yellow"}.get(state, "white")
        self._set_status(Content.from_markup(f"[{colour}]$state[/{colour}]  $where  $eta", state=state, where=where, eta=eta))
        m = follower.last_metrics
        numbers = [f"loss      {m['loss']:.4f}" if "loss" in m else "loss      -",
                   f"lr        {m['lr']:.2e}" if "lr" in m else "lr        -"]
        for key, label in (("eval_loss", "eval_loss"), ("grad_norm", "grad_norm"), ("epoch", "epoch"), ("throughput", "tokens/s")):
            if key in m:
                numbers.append(f"{label:<9} {m[key]:.4g}" if isinstance(m[key], (int, float)) else f"{label:<9} {m[key]}")
        self.query_one("#run-numbers", Static).update("\n".join(numbers))

    def _redraw_plot(self) -> None:
        if not self._dirty_plot:
            return
        self._dirty_plot = False
        plot = self.query_one("#loss-plot", PlotextPlot)
        self.curve.draw(plot.plt)
        plot.refresh()

    @work(thread=True, exclusive=True, group="gpu", exit_on_error=False)
    def poll_gpus(self) -> None:
        if not hasattr(self, "_sampler"):
            from tui.hardware.usage import UsageSampler

            self._sampler = UsageSampler()
        samples = self._sampler.sample()
        self.app.call_from_thread(self.show_gpus, samples)

    def show_gpus(self, samples) -> None:
        box = self.query_one("#gpu-lines", Vertical)
        if not samples:
            self.query_one("#gpu-title", Static).update("GPU memory: no GPU on this machine")
            return
        estimate = f" (plan: {self._estimate_gib:.1f} GiB)" if self._estimate_gib is not None else ""
        self.query_one("#gpu-title", Static).update(f"GPU memory{estimate}")
        for s in samples:
            history = self.gpu_history.setdefault(s.index, [])
            history.append(s.memory_used_mib / 1024)
            del history[:-60]
            self.peak_mib[s.index] = max(self.peak_mib.get(s.index, 0), s.memory_used_mib)
            label_id, spark_id = f"gpu-label-{s.index}", f"gpu-spark-{s.index}"
            text = (f"GPU{s.index} {s.memory_used_mib / 1024:.1f}/{s.memory_total_mib / 1024:.0f} GiB "
                    f"peak {self.peak_mib[s.index] / 1024:.1f}" + (f" util {s.utilization_pct:.0f}%" if s.utilization_pct is not None else ""))
            if not box.query(f"#{label_id}"):
                box.mount(Static(text, id=label_id), Sparkline(history, id=spark_id))
            else:
                box.query_one(f"#{label_id}", Static).update(text)
                box.query_one(f"#{spark_id}", Sparkline).data = list(history)

    def ended(self, event) -> None:
        self.ended_event = event
        self.chain_on(event.kind)
        self._dirty_plot = True
        if event.kind == "finished":
            output_dir = event.data.get("output_dir")
            text = event.text.replace(output_dir, str(shown_path(output_dir))) if output_dir else event.text
            self.notify(text, title="Training finished", timeout=10)
            if event.data.get("warning"):  # finished, but the loss went NaN: say so where it stays
                self.query_one("#diagnosis-text", Static).update(
                    Content.from_markup("[b yellow]warning[/b yellow]: $text", text=event.data["warning"]))
                self.query_one("#retry").display = False
                self.query_one("#diagnosis").display = True
            self.offer_retry()  # a NaN, or a loss spike the run trained through
            self.show_after_training()
            return
        if event.kind in ("failed", "vanished"):
            text = Content.from_markup("[b red]$kind[/b red]: $text", kind=event.kind, text=in_app_words(event.text))
            if event.data.get("cause") == "oom":
                text += ("\n\nThe settings that drive memory: micro-batch, quantization, cutoff_len. "
                         "Retry writes a new run with the next of: half the micro-batch (double accumulation), " \
                         "4-bit QLoRA, half the cutoff.")
                self.show_retry("oom")  # the log's out-of-memory error is the verdict's first rule
            else:
                self.query_one("#retry").display = False
                self.offer_retry()  # shown with the fix the run's files call for (tui.runs.verdict), if any
            context = event.data.get("context") or []
            if event.data.get("cause") in ("exception", "unknown") and context:
                text += "\n" + "\n".join(context[-4:])  # plain: Content + str adds no markup
            self.query_one("#diagnosis-text", Static).update(text)
            self.query_one("#diagnosis").display = True

    def show_after_training(self) -> None:
        """The panel after a finished run (tui.app.after_training): merge and serve, try, evaluate."""
        output_dir = self.watcher.status.output_dir if self.watcher else None
        self.query_one(AfterTraining).show(output_dir, shown_path(output_dir) if output_dir else None)

    # --- actions -----------------------------------------------------------------------------

    def action_compare(self) -> None:
        """This run's loss curve beside the other runs' of the same runs/ folder (sft-tui compare --app)."""
        from tui.app.compare import CompareScreen
        from tui.runs.lifecycle import find_runs

        runs = find_runs(self.run_dir.parent)
        if len(runs) < 2:
            self.notify(f"no other run beside this one in {self.run_dir.parent} to compare with", severity="warning")
            return
        self.app.push_screen(CompareScreen(runs, closable=True))

    def action_stop(self) -> None:
        if self.watcher is None or self.watcher.status.status != "running":
            self.notify("the run is not running", severity="warning")
            return

        def confirmed(yes: bool | None) -> None:
            if yes:
                self.notify("stopping: the trainer finishes its step and saves…")
                self.stop_run()

        self.app.push_screen(ConfirmStop(), confirmed)

    @work(thread=True, exclusive=True, group="stop", exit_on_error=False)
    def stop_run(self) -> None:
        from tui.runs.lifecycle import RunError, stop_run

        try:
            stop_run(self.run_dir)
        except RunError as err:
            self.app.call_from_thread(self.notify, str(err), severity="error")

    def action_detach(self) -> None:
        self.app.exit(message=f"Training goes on. Re-attach with:  sft-tui monitor {self.run_dir}")

    def action_toggle_pause(self) -> None:
        self.paused = not self.paused
        self.notify("log paused" if self.paused else "log following")

    def action_search(self) -> None:
        box = self.query_one("#log-search", Input)
        box.display = True
        box.focus()

    @on(Input.Submitted, "#log-search")
    def run_search(self, event: Input.Submitted) -> None:
        self.search = event.value or None
        log = self.query_one("#run-log", RichLog)
        log.clear()
        if self.watcher is not None:
            from tui.runs.logfiles import last_lines

            try:
                lines = last_lines(self.run_dir / "train.log", LOG_LINES)
            except OSError:
                lines = []
            log.write("\n".join(line for line in lines if not self.search or self.search in line))
        event.input.display = False

    @on(Button.Pressed, "#retry")
    def action_retry(self) -> None:
        self.retry_run()

    @work(thread=True, group="retry", exit_on_error=False)  # the verdict, read once the run ended
    def offer_retry(self) -> None:
        from tui.runs.verdict import read_verdict

        self.app.call_from_thread(self.show_retry, read_verdict(self.run_dir).fix)

    def show_retry(self, fix: str | None) -> None:
        """The button names the fix the run's files call for (oom, host-oom, nan, diverged); hidden without one."""
        button = self.query_one("#retry", Button)
        button.label = f"Retry with this fix ({fix})" if fix else "Retry with this fix"
        button.display = fix is not None
        if fix:
            self.query_one("#diagnosis").display = True

    @work(thread=True, exclusive=True, group="retry", exit_on_error=False)
    def retry_run(self) -> None:
        message, how = retry_for_verdict(self.run_dir)
        self.app.call_from_thread(lambda: self.notify(message, **how))


class MonitorScreen(Screen):
    """`sft-tui monitor RUN_DIR`: the monitor alone, attached to any run."""

    def __init__(self, run_dir: Path, auto_retry: int = 0):
        super().__init__()
        self.run_dir, self.auto_retry = run_dir, auto_retry

    def compose(self) -> ComposeResult:
        yield Header()
        yield RunMonitor(self.run_dir, auto_retry=self.auto_retry)
        yield Footer()

    def on_mount(self) -> None:
        self.query(RunMonitor).first().focus()
