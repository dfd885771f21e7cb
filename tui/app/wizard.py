"""The wizard's steps: Hardware, Model, Dataset, Plan, Review, Run.

Each step is a pane of a TabbedContent (the step bar: click or ctrl+n / ctrl+b; every step can
be revisited). The steps share one WizardState; each reads it when shown and writes what the
user chose. Detection, model lookup, validation, planning and export run in thread workers, so
input never waits on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rich.syntax import Syntax
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.suggester import Suggester
from textual.widgets import (Button, Checkbox, DataTable, Input, Label, ProgressBar, Select, Static, TabbedContent,
                             TabPane)

from tui.hardware import Detection, summary_line

STEPS = (("hardware", "1 Hardware"), ("model", "2 Model"), ("dataset", "3 Dataset"), ("plan", "4 Plan"),
         ("review", "5 Review"), ("run", "6 Run"))
BAR_COLOURS = {"weights": "blue", "trainable": "magenta", "gradients": "magenta", "optimizer": "magenta",
               "activations": "yellow", "logits": "cyan", "overhead": "bright_black"}


@dataclass
class WizardState:
    hardware: str = "detected"  # or a hardware profile's name
    detection: Detection | None = None
    gpu_indices: list[int] | None = None  # chosen detected GPUs; None: all
    model: str = ""
    model_info: object = None
    datasets: list[str] = field(default_factory=list)
    report: object = None
    drop_errors: bool = False
    recipe: str | None = None
    overrides: dict = field(default_factory=dict)
    request: object = None
    plan: object = None
    env: str = ""
    out_dir: str = "."
    run_name: str = ""
    run_dir: Path | None = None

    def devices(self):
        """The devices the plan is for: the chosen detected GPUs (else the CPU), or a profile's."""
        from tui.hardware import devices_from_profile
        from tui.profiles import load_profiles

        if self.hardware != "detected":
            return devices_from_profile(load_profiles().get("hardware", self.hardware).data)
        detection = self.detection
        if detection is None:
            from tui.hardware import detect

            detection = self.detection = detect()
        gpus = [d for d in detection.gpus if self.gpu_indices is None or d.index in self.gpu_indices]
        return gpus or [d for d in detection.devices if d.vendor == "cpu"]


class PathSuggester(Suggester):
    """Completes the last path typed in an input from the file system."""

    def __init__(self):
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        head, _, last = value.rpartition(" ")
        if not last:
            return None
        path = Path(last).expanduser()
        folder, stem = (path, "") if last.endswith("/") else (path.parent, path.name)
        try:
            names = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir() if p.name.startswith(stem))
        except OSError:
            return None
        if not names:
            return None
        completed = str(folder / names[0]) if str(folder) != "." or last.startswith("./") else names[0]
        if last.startswith("~"):
            completed = "~" + completed[len(str(Path.home())):]
        return (head + " " if head else "") + completed


class Step(VerticalScroll):
    """A wizard step; `state` is the app's WizardState."""

    @property
    def state(self) -> WizardState:
        return self.app.state

    def shown(self) -> None:
        """Called when the step becomes the current one."""


# --- 1 Hardware -------------------------------------------------------------------------------


class HardwareStep(Step):
    def compose(self) -> ComposeResult:
        yield Static("Detecting hardware…", id="summary")
        table = DataTable(id="devices", cursor_type="row", zebra_stripes=True)
        table.add_columns("use", "#", "vendor", "name", "VRAM used/total", "util", "arch", "bf16", "fp16", "fa2", "bnb", "state")
        yield table
        yield Static("", id="problems")
        with Horizontal(classes="row"):
            yield Label("Plan for", classes="label")
            yield Select([("this machine (detected)", "detected")], value="detected", allow_blank=False, id="hardware-profile")
        yield Static("", id="profile-note", classes="note")
        with Horizontal(classes="row"):
            yield Button("Next: model", variant="primary", id="hardware-next")
            yield Button("Try the demo", id="demo")
        yield Static("No GPU or model yet? The demo builds a tiny model, trains it here on a sample dataset "
                     "with LLaMA-Factory, and shows the monitor (well under a minute).", classes="note")

    def on_mount(self) -> None:
        from tui.profiles import load_profiles

        names = load_profiles().names("hardware")
        self.query_one("#hardware-profile", Select).set_options(
            [("this machine (detected)", "detected")] + [(name, name) for name in names])
        if self.state.detection is not None:
            self.show(self.state.detection)
        else:
            self.detect_hardware()

    @work(thread=True, exclusive=True, group="detect")
    def detect_hardware(self) -> None:
        from tui.hardware import detect

        detection = detect()
        self.app.call_from_thread(self.show, detection)

    def show(self, detection: Detection) -> None:
        self.state.detection = detection
        self.query_one("#summary", Static).update(summary_line(detection))
        table = self.query_one("#devices", DataTable)
        table.clear()
        for d in detection.devices:
            chosen = d.vendor != "cpu" and (self.state.gpu_indices is None or d.index in self.state.gpu_indices)
            used = f"{d.memory_used_mib / 1024:.1f} / {d.memory_total_mib / 1024:.1f} GiB"
            util = "" if d.utilization_pct is None else f"{d.utilization_pct:.0f}%"
            arch = d.compute_capability or d.gfx or (f"{d.cpu_cores} cores" if d.cpu_cores else "")
            state = "" if d.vendor == "cpu" else ("free" if d.free else "busy")
            flags = ["✓" if f else "·" for f in (d.bf16, d.fp16, d.flash_attn2, d.bitsandbytes)]
            table.add_row("●" if chosen else ("" if d.vendor == "cpu" else "○"), str(d.index), d.vendor, d.name,
                          used, util, arch, *flags, state, key=f"{d.vendor}-{d.index}")
        self.query_one("#problems", Static).update("\n".join(f"• {p}" for p in detection.problems))

    @on(DataTable.RowSelected, "#devices")
    def toggle_gpu(self, event: DataTable.RowSelected) -> None:
        """Enter (or a click) on a GPU row adds it to or removes it from the plan."""
        detection = self.state.detection
        if detection is None:
            return
        vendor, _, index = str(event.row_key.value).rpartition("-")
        if vendor == "cpu":
            return
        chosen = set(self.state.gpu_indices if self.state.gpu_indices is not None else (d.index for d in detection.gpus))
        chosen ^= {int(index)}
        self.state.gpu_indices = sorted(chosen)
        self.show(detection)

    @on(Select.Changed, "#hardware-profile")
    def profile_chosen(self, event: Select.Changed) -> None:
        self.state.hardware = str(event.value)
        self.state.plan = None
        note = "" if event.value == "detected" else (
            f"Planning for another machine: {event.value}. The detected devices above are not used.")
        self.query_one("#profile-note", Static).update(note)

    @on(Button.Pressed, "#hardware-next")
    def next_step(self) -> None:
        self.app.action_next_step()

    @on(Button.Pressed, "#demo")
    def demo(self) -> None:
        self.app.start_demo()


# --- 2 Model ----------------------------------------------------------------------------------


class ModelStep(Step):
    def compose(self) -> ComposeResult:
        yield Static("A model profile, a hub id, or a local model directory.", classes="note")
        with Horizontal(classes="row"):
            yield Label("Model", classes="label")
            yield Input(placeholder="qwen2.5-0.5b, Qwen/Qwen2.5-7B-Instruct or /path/to/model", id="model-input",
                        suggester=PathSuggester())
        yield Select([], prompt="or pick a model profile", id="model-profile")
        yield Static("", id="model-info")
        yield Button("Next: dataset", variant="primary", id="model-next")

    def on_mount(self) -> None:
        from tui.profiles import load_profiles

        self.query_one("#model-profile", Select).set_options([(n, n) for n in load_profiles().names("models")])
        if self.state.model:
            self.query_one("#model-input", Input).value = self.state.model

    @on(Select.Changed, "#model-profile")
    def profile_picked(self, event: Select.Changed) -> None:
        if isinstance(event.value, str):  # not the blank choice
            self.query_one("#model-input", Input).value = event.value
            self.look_up(event.value)

    @on(Input.Submitted, "#model-input")
    @on(Input.Changed, "#model-input")
    def typed(self, event) -> None:
        if event.value.strip():
            self.look_up(event.value.strip())

    @work(thread=True, exclusive=True, group="model")
    def look_up(self, spec: str) -> None:
        from tui.models import ModelError, resolve_model
        from tui.profiles import load_profiles

        try:
            info = resolve_model(spec, load_profiles())
        except ModelError as err:
            self.app.call_from_thread(self.show, spec, None, str(err))
            return
        self.app.call_from_thread(self.show, spec, info, None)

    def show(self, spec: str, info, problem: str | None) -> None:
        if spec != self.query_one("#model-input", Input).value.strip():
            return  # an answer for something typed before: a newer lookup is coming
        box = self.query_one("#model-info", Static)
        if info is None:
            box.update(Text(problem or "", style="red"))
            return
        if self.state.model != spec:
            self.state.plan = None
        self.state.model, self.state.model_info = spec, info
        arch = info.architecture
        lines = [Content.from_markup("[b]$name[/b] ($source)  $path", name=info.name, source=info.source,
                                     path=info.model_name_or_path),
                 f"parameters  {info.params / 1e9:.2f}B" if info.params >= 1e8 else f"parameters  {info.params:,}",
                 f"arch        {arch.model_type}: {arch.num_hidden_layers} layers, hidden {arch.hidden_size}, "
                 f"heads {arch.num_attention_heads}/{arch.num_key_value_heads}, vocab {arch.vocab_size}",
                 f"template    {info.template or '(none known: set template= on the plan step)'}"]
        if info.weights is not None:
            lines.append(Content.from_markup("weights     [green]complete[/green]") if info.weights.complete else
                         Content.from_markup("weights     [red]$problems[/red]", problems="; ".join(info.weights.problems())))
        lines += [Content.from_markup("[yellow]$note[/yellow]", note=note) for note in info.notes]
        box.update(Content("\n").join(lines))

    @on(Button.Pressed, "#model-next")
    def next_step(self) -> None:
        if self.state.model_info is None:
            self.notify("choose a model first", severity="warning")
            return
        self.app.action_next_step()


# --- 3 Dataset --------------------------------------------------------------------------------


class DatasetStep(Step):
    def compose(self) -> ComposeResult:
        yield Static("Dataset files or directories (.jsonl/.json; alpaca, sharegpt or openai format). A directory with "
                     "train/val/test files gives the splits.", classes="note")
        with Horizontal(classes="row"):
            yield Label("Files", classes="label")
            yield Input(placeholder="data/train.jsonl data/val.jsonl  (Tab completes paths)", id="dataset-input",
                        suggester=PathSuggester())
            yield Button("Validate", id="validate")
        yield ProgressBar(total=100, show_eta=False, id="validate-progress")
        yield Static("", id="dataset-stats")
        problems = DataTable(id="dataset-problems", cursor_type="row", zebra_stripes=True)
        problems.add_columns("file", "line", "field", "severity", "message")
        yield problems
        yield Static("", id="problem-row", classes="note")
        yield Checkbox("Drop the rows with errors (a cleaned copy is written beside the bundle)", id="drop-errors")
        yield Button("Next: plan", variant="primary", id="dataset-next")

    def on_mount(self) -> None:
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
        self.state.datasets, self.state.report, self.state.plan = paths, None, None
        self.query_one("#dataset-stats", Static).update("validating…")
        self.validate(paths)

    @work(thread=True, exclusive=True, group="validate")
    def validate(self, paths: list[str]) -> None:
        from tui.datasets import validate_paths

        bar = self.query_one("#validate-progress", ProgressBar)

        def progress(rows: int, done: int, total: int) -> None:
            self.app.call_from_thread(bar.update, total=max(total, 1), progress=done)

        report = validate_paths([Path(p).expanduser() for p in paths], progress=progress)
        self.app.call_from_thread(self.show, report)

    def show(self, report) -> None:
        self.state.report = report
        data = report.to_json()
        stats = data["stats"]
        lines = [f"{stats['valid_rows']} valid rows of {stats['rows']}"
                 + (f"; splits: {', '.join(f'{k} {v}' for k, v in stats['splits'].items())}" if stats["splits"] else ""),
                 f"recommended cutoff_len {data['recommended_cutoff_len']} ({stats['cutoff']['covers']}; "
                 f"{stats['cutoff']['rows_truncated']} rows longer)"]
        lengths = stats["lengths"].get("row", {})
        if lengths.get("n"):
            lines.append(f"row length (tokens{'' if stats['lengths'].get('exact') else ', approximate'}): "
                         f"median {lengths.get('p50')}, p99 {lengths.get('p99')}, max {lengths.get('max')}")
        for error in report.file_errors:
            lines.append(Content.from_markup("[red]$error[/red]", error=error))
        errors = sum(f.error_count for f in report.files)
        warnings = sum(f.problem_count for f in report.files) - errors
        said = f"{warnings} warning{'' if warnings == 1 else 's'}"
        lines.append(Content.from_markup(f"[red]{errors} error{'' if errors == 1 else 's'}[/red], {said}") if errors else f"no errors, {said}")
        self.query_one("#dataset-stats", Static).update(Content("\n").join(lines))
        table = self.query_one("#dataset-problems", DataTable)
        table.clear()
        self.problem_rows = {}
        for f in report.files:
            for n, p in enumerate(f.problems):
                key = f"{f.path}:{n}"
                self.problem_rows[key] = (f.path, p)
                table.add_row(Text(f.path.name), str(p.line or ""), Text(p.field), p.severity, Text(p.message), key=key)
        self.query_one("#drop-errors").display = bool(errors)

    @on(DataTable.RowSelected, "#dataset-problems")
    def open_row(self, event: DataTable.RowSelected) -> None:
        """Enter on a problem shows that row of the file, with the whole message."""
        path, problem = self.problem_rows[str(event.row_key.value)]
        text = Text(f"{path}:{problem.line or '?'} {problem.field or '(row)'}: {problem.message}\n", style="bold")
        if problem.line:
            with open(path, encoding="utf-8", errors="replace") as f:
                row = next((line for n, line in enumerate(f, start=1) if n == problem.line), "")
            text.append(row[:2000].rstrip("\n") or "(empty line)")
        self.query_one("#problem-row", Static).update(text)

    @on(Checkbox.Changed, "#drop-errors")
    def drop_changed(self, event: Checkbox.Changed) -> None:
        self.state.drop_errors = event.value

    @on(Button.Pressed, "#dataset-next")
    def next_step(self) -> None:
        report = self.state.report
        if report is None:
            self.notify("validate the dataset first", severity="warning")
            return
        if report.file_errors or not any(f.valid_rows for f in report.files):
            self.notify("no readable rows: fix the paths first", severity="error")
            return
        if report.has_errors and not self.state.drop_errors:
            self.notify("the dataset has errors: fix them, or tick 'Drop the rows with errors'", severity="error")
            return
        self.app.action_next_step()


# --- 4 Plan -------------------------------------------------------------------------------------


class MemoryBar(Static):
    """The stacked memory estimate, as wide as the widget is."""

    def __init__(self, **kwargs):
        super().__init__("", **kwargs)
        self.breakdown: dict = {}
        self.capacity = 0.0

    def set(self, breakdown: dict, capacity: float) -> None:
        self.breakdown, self.capacity = breakdown, capacity
        self.refresh()

    def render(self) -> Text:
        return memory_bar(self.breakdown, self.capacity, max(10, self.size.width)) if self.capacity else Text("")


def memory_bar(breakdown: dict, capacity: float, width: int) -> Text:
    """The estimate's parts as coloured blocks against the device's capacity (dots are free)."""
    from tui.memory import bar_cells

    parts, free = bar_cells(breakdown, capacity, width)
    text = Text()
    for key, cells in parts:
        text.append("█" * cells, style=BAR_COLOURS.get(key, "white"))
    text.append("·" * free, style="green")
    return text


class PlanStep(Step):
    def compose(self) -> ComposeResult:
        with Horizontal(classes="row"):
            yield Label("Recipe", classes="label")
            yield Select([], prompt="chosen from the dataset size", id="recipe")
        yield Static("", id="plan-verdict")
        yield MemoryBar(id="memory-bar")
        yield Static("", id="memory-legend", classes="note")
        with Horizontal(classes="row"):
            yield Label("Set", classes="label")
            yield Input(placeholder="key=value, e.g. per_device_train_batch_size=8 (Enter re-plans; key= clears)",
                        id="plan-set")
        settings = DataTable(id="plan-settings", cursor_type="row", zebra_stripes=True)
        settings.add_columns("setting", "value", "why", "reason")
        yield settings
        yield Static("", id="setting-detail", classes="note")
        yield Static("", id="plan-warnings")
        yield Button("Next: review", variant="primary", id="plan-next")

    def on_mount(self) -> None:
        from tui.profiles import load_profiles

        self.query_one("#recipe", Select).set_options([(n, n) for n in load_profiles().names("recipes")])

    def shown(self) -> None:
        if self.state.plan is None:
            self.replan()
        else:
            self.show(self.state.plan)

    @on(Select.Changed, "#recipe")
    def recipe_changed(self, event: Select.Changed) -> None:
        recipe = event.value if isinstance(event.value, str) else None  # blank: chosen from the data
        if recipe != self.state.recipe:
            self.state.recipe = recipe
            self.replan()

    @on(Input.Submitted, "#plan-set")
    def set_value(self, event: Input.Submitted) -> None:
        from tui.requests import RequestError, parse_overrides

        text = event.value.strip()
        if not text:
            return
        key, _, value = text.partition("=")
        if not value:
            self.state.overrides.pop(key.strip(), None)
        else:
            try:
                self.state.overrides.update(parse_overrides([text]))
            except (RequestError, ValueError) as err:
                self.notify(str(err), severity="error")
                return
        event.input.value = ""
        self.replan()

    def replan(self) -> None:
        if self.state.model_info is None:
            self.query_one("#plan-verdict", Static).update("[yellow]choose a model first (step 2)[/yellow]")
            return
        self.query_one("#plan-verdict", Static).update("planning…")
        self.make_plan()

    @work(thread=True, exclusive=True, group="plan")
    def make_plan(self) -> None:
        from tui.planner import plan
        from tui.requests import RequestError, build_request

        s = self.state
        try:
            request, _ = build_request(s.hardware, s.model, None, s.recipe, dict(s.overrides), report=s.report,
                                       devices=s.devices())
            result = plan(request)
        except (RequestError, ValueError) as err:
            self.app.call_from_thread(self.query_one("#plan-verdict", Static).update, Text(str(err), style="red"))
            return
        s.request, s.plan = request, result
        self.app.call_from_thread(self.show, result)

    def show(self, plan) -> None:
        est = plan.estimate
        usable = plan.to_json()["estimate"]["usable_gib"]
        device = self.state.request.devices[0]
        where = f"{plan.n_gpus} x {device.name}" if device.vendor != "cpu" else device.name
        if plan.fits:
            verdict = Content.from_markup(
                f"[b green]fits[/b green]: {est.per_device_gib:.1f} GiB per device of {usable:.1f} usable on $where; "
                f"recipe {plan.recipe}" + (f"; {plan.steps} optimizer steps" if plan.steps else ""), where=where)
        else:
            verdict = Content.from_markup(
                f"[b white on red] DOES NOT FIT [/b white on red] {est.per_device_gib:.1f} GiB per device, "
                f"{usable:.1f} usable on $where.\n[b]What would fit:[/b]\n$suggestions",
                where=where, suggestions="\n".join(f"  • {s}" for s in plan.suggestions))
        self.query_one("#plan-verdict", Static).update(verdict)
        self.query_one("#memory-bar", MemoryBar).set(est.breakdown, plan.capacity_gib)
        legend = Text()
        for key, value in est.breakdown.items():
            legend.append("█ ", style=BAR_COLOURS.get(key, "white"))
            legend.append(f"{key} {value:.2f}  ")
        legend.append("· free  (GiB)", style="green")
        self.query_one("#memory-legend", Static).update(legend)
        table = self.query_one("#plan-settings", DataTable)
        table.clear()
        for key, value in plan.settings.items():
            reason = plan.reasons.get(key)
            shown = "null" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
            table.add_row(key, Text(shown), reason.kind if reason else "", Text(reason.text) if reason else "", key=key)
        self.query_one("#plan-warnings", Static).update(
            Content("\n").join(Content.from_markup("[yellow]warning:[/yellow] $w", w=w) for w in plan.warnings))

    @on(DataTable.RowHighlighted, "#plan-settings")
    def explain_row(self, event: DataTable.RowHighlighted) -> None:
        plan = self.state.plan
        key = str(event.row_key.value)
        reason = plan.reasons.get(key) if plan else None
        if reason:
            self.query_one("#setting-detail", Static).update(
                Content.from_markup("[b]$key[/b] ($kind, rule $rule): $text.  Enter edits it.",
                                    key=key, kind=reason.kind, rule=reason.rule, text=reason.text))

    @on(DataTable.RowSelected, "#plan-settings")
    def edit_row(self, event: DataTable.RowSelected) -> None:
        """Enter on a setting puts `key=value` in the Set box to edit."""
        key = str(event.row_key.value)
        value = self.state.plan.settings.get(key)
        box = self.query_one("#plan-set", Input)
        box.value = f"{key}={'null' if value is None else str(value).lower() if isinstance(value, bool) else value}"
        box.focus()

    @on(Button.Pressed, "#plan-next")
    def next_step(self) -> None:
        if self.state.plan is None:
            self.notify("no plan yet", severity="warning")
            return
        if not self.state.plan.fits:
            self.notify("this plan does not fit: the bundle can still be written, and will warn", severity="warning")
        self.app.action_next_step()


# --- 5 Review -----------------------------------------------------------------------------------

LEXERS = {".yaml": "yaml", ".sh": "bash", ".json": "json", ".md": "markdown", ".sbatch": "bash"}


class ReviewStep(Step):
    def compose(self) -> ComposeResult:
        with Horizontal(classes="row"):
            yield Label("Run name", classes="label")
            yield Input(placeholder="default: <model>-<method>-<date>", id="run-name")
        with Horizontal(classes="row"):
            yield Label("Output", classes="label")
            yield Input(value=".", id="out-dir", suggester=PathSuggester())
        with Horizontal(classes="row"):
            yield Label("Train env", classes="label")
            yield Input(placeholder="conda:NAME or venv:PATH (empty: llamafactory-cli on PATH)", id="train-env")
        with Horizontal(classes="row"):
            yield Button("Export", variant="primary", id="export")
            yield Button("Next: run", id="review-next")
        yield Static("", id="export-result")
        yield Static("", id="plan-diff")
        yield Select([], prompt="file to preview", id="review-file")
        yield Static("", id="review-preview")

    def on_mount(self) -> None:
        self.query_one("#train-env", Input).value = self.state.env or self._this_environment()

    @staticmethod
    def _this_environment() -> str:
        """The virtualenv that has LLaMA-Factory, found as the demo finds it; empty when none."""
        from tui.demo import DemoError, find_training_env

        try:
            return find_training_env().env_spec or ""
        except DemoError:
            return ""

    def shown(self) -> None:
        self.preview()

    def spec(self) -> dict:
        from tui.bundle import LaunchOptions, make_spec

        s = self.state
        s.env = self.query_one("#train-env", Input).value.strip()
        s.out_dir = self.query_one("#out-dir", Input).value.strip() or "."
        s.run_name = self.query_one("#run-name", Input).value.strip()
        return make_spec(s.plan, s.request, s.report, LaunchOptions(env=s.env or None), Path(s.out_dir).expanduser(),
                         s.run_name or None, hardware_name=s.hardware)

    @on(Input.Changed)
    def inputs_changed(self) -> None:
        if self.state.plan is not None:
            self.preview()

    def preview(self) -> None:
        from tui.bundle import BundleError, render_bundle

        if self.state.plan is None:
            self.query_one("#plan-diff", Static).update("[yellow]make a plan first (step 4)[/yellow]")
            return
        try:
            self.files = render_bundle(self.spec())
        except BundleError as err:
            self.query_one("#plan-diff", Static).update(Text(str(err), style="red"))
            return
        plan = self.state.plan
        changed = [Content.from_markup("  $key = $value   [dim]($kind: $text)[/dim]", key=key, value=str(value),
                                       kind=plan.reasons[key].kind, text=plan.reasons[key].text)
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

    @on(Button.Pressed, "#export")
    def export(self) -> None:
        from tui.bundle import BundleError, write_bundle
        from tui.datasets import DatasetFileError

        try:
            spec = self.spec()
            if self.state.drop_errors and self.state.report.has_errors:
                spec = self.app.cleaned_spec(spec)
            written = write_bundle(spec)
        except (BundleError, DatasetFileError, OSError) as err:
            self.query_one("#export-result", Static).update(Text(str(err), style="red"))
            return
        self.state.run_dir = written.run_dir
        self.query_one("#export-result", Static).update(Content.from_markup(
            "[green]Wrote $run[/green]: $files\nStart it here (step 6) or headless: sft-tui run $run",
            run=str(written.run_dir), files=", ".join(written.written)))
        self.notify(f"exported {written.run_dir}")

    @on(Button.Pressed, "#review-next")
    def next_step(self) -> None:
        if self.state.run_dir is None:
            self.notify("export the bundle first", severity="warning")
            return
        self.app.action_next_step()


# --- 6 Run --------------------------------------------------------------------------------------


class RunStep(Vertical):
    """Start the exported run, then the monitor."""

    def compose(self) -> ComposeResult:
        yield Static("Export a bundle in step 5 first.", id="run-intro")
        yield Button("Start training", variant="success", id="start-run")
        yield Vertical(id="monitor-slot")

    @property
    def state(self) -> WizardState:
        return self.app.state

    def shown(self) -> None:
        run_dir = self.state.run_dir
        if run_dir is not None and not self.query("RunMonitor"):
            self.query_one("#run-intro", Static).update(Text(f"Run directory: {run_dir}"))

    @on(Button.Pressed, "#start-run")
    def start(self) -> None:
        if self.state.run_dir is None:
            self.notify("export the bundle first (step 5)", severity="warning")
            return
        self.start_in_background(self.state.run_dir)

    @work(thread=True, exclusive=True, group="start")
    def start_in_background(self, run_dir: Path) -> None:
        from tui.runs import RunError, start_run

        try:
            start_run(run_dir)
        except RunError as err:
            self.app.call_from_thread(self.notify, str(err), severity="error")
            return
        self.app.call_from_thread(self.attach, run_dir)

    def attach(self, run_dir: Path) -> None:
        from tui.app.monitor import RunMonitor

        self.query_one("#start-run").display = False
        self.query_one("#run-intro").display = False
        for old in self.query("RunMonitor"):
            old.remove()
        monitor = RunMonitor(run_dir)
        self.query_one("#monitor-slot").mount(monitor)
        monitor.focus()


STEP_CLASSES = {"hardware": HardwareStep, "model": ModelStep, "dataset": DatasetStep, "plan": PlanStep,
                "review": ReviewStep, "run": RunStep}


def compose_steps() -> ComposeResult:
    with TabbedContent(id="steps"):
        for step_id, title in STEPS:
            with TabPane(title, id=step_id):
                yield STEP_CLASSES[step_id](id=f"{step_id}-step")
