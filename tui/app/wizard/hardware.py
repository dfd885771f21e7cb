"""Step 1: the GPUs on this machine (choose which), or a hardware profile to plan for another."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.containers import Horizontal
from textual.widgets import (
    Button,
    DataTable,
    Input,
    Label,
    Select,
    Static,
)

from tui.app.table import Table
from tui.app.wizard.state import Step
from tui.hardware.detect import summary_line
from tui.hardware.device import Detection
from tui.common.profiles import load_profiles
from tui.common.text import plural
from tui.hardware.profile import MAX_GPUS, gpu_count_problem, no_gpu_problem  # the CLI's --gpus rules too


class HardwareStep(Step):
    def compose(self) -> ComposeResult:
        yield Static("Detecting hardware…", id="summary")
        table = Table(id="devices", cursor_type="row", zebra_stripes=True)
        table.add_columns("use", "#", "vendor", "name", "VRAM used/total", "util", "arch", "bf16", "fp16", "fa2", "bnb", "state")
        yield table
        yield Static("", id="problems")
        with Horizontal(classes="row"):
            yield Label("Plan for", classes="label")
            yield Select([("this machine (detected)", "detected")], value="detected", allow_blank=False, id="hardware-profile")
        with Horizontal(classes="row"):
            yield Label("GPUs", classes="label")
            yield Input(placeholder=f"1 to {MAX_GPUS}; empty: the profile's count", type="integer", id="gpu-count", disabled=True,
                        select_on_focus=False)  # focus comes back here after a refusal: typing goes on
        yield Static("", id="profile-note", classes="note")
        with Horizontal(classes="row", id="hardware-nav"):
            yield Button("Next: model", variant="primary", id="hardware-next")
            yield Button("Try the demo", id="demo")
        yield Static("No GPU or model yet? The demo builds a tiny model, trains it here on a sample dataset "
                     "with LLaMA-Factory, and shows the monitor (well under a minute).", classes="note")

    def on_mount(self) -> None:
        names = load_profiles().names("hardware")
        self.query_one("#hardware-profile", Select).set_options(
            [("this machine (detected)", "detected")] + [(name, name) for name in names])
        if self.state.detection is not None:
            self.show(self.state.detection)
        else:
            self.detect_hardware()

    @work(thread=True, exclusive=True, group="detect", exit_on_error=False)
    def detect_hardware(self) -> None:
        from tui.hardware.detect import detect

        detection = detect()
        self.app.call_from_thread(self.show, detection)

    def show(self, detection: Detection) -> None:
        self.state.detected(detection)
        self.query_one("#summary", Static).update(summary_line(detection))
        table = self.query_one("#devices", DataTable)
        table.clear()
        for d in detection.devices:
            chosen = d.is_gpu and (self.state.gpu_indices is None or d.index in self.state.gpu_indices)
            used = f"{d.memory_used_mib / 1024:.1f} / {d.memory_total_mib / 1024:.1f} GiB"
            util = "" if d.utilization_pct is None else f"{d.utilization_pct:.0f}%"
            arch = d.compute_capability or d.gfx or (f"{d.cpu_cores} cores" if d.cpu_cores else "")
            state = ("free" if d.free else "busy") if d.is_gpu else ""
            flags = ["✓" if f else "·" for f in (d.bf16, d.fp16, d.flash_attn2, d.bitsandbytes)]
            table.add_row("●" if chosen else ("○" if d.is_gpu else ""), str(d.index), d.vendor, d.name,
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
        self.state.choose_gpus(sorted(chosen))
        self.show(detection)

    @on(Select.Changed, "#hardware-profile")
    def profile_chosen(self, event: Select.Changed) -> None:
        self.state.choose_hardware(str(event.value))
        # On this machine the GPU rows above choose the GPUs; for a profile, a count does.
        self.query_one("#gpu-count", Input).disabled = event.value == "detected"
        self.check_gpu_count()

    @on(Input.Changed, "#gpu-count")
    def gpu_count_changed(self) -> None:
        self.check_gpu_count()

    def check_gpu_count(self) -> None:
        """The profile's GPU count from the box; text that is no count from 1 to MAX_GPUS is said
        under it and kept in the state, where the app's one gate stops the step from being left."""
        note = self.query_one("#profile-note", Static)
        if self.state.hardware == "detected":  # the box is off: its text counts for nothing
            self.state.set_gpu_count(None)
            note.update("")
            return
        text = self.query_one("#gpu-count", Input).value.strip()
        try:
            count = int(text) if text else None
        except ValueError:
            count = -1  # no number: the same sentence as a count out of range
        problem = None
        if count is not None and gpu_count_problem(count):
            problem = f"GPUs: {gpu_count_problem(count)}, or empty for the profile's"
        elif count is not None and (profile := load_profiles().get("hardware", self.state.hardware)) and not profile.data["gpus"]:
            problem = f"GPUs: {no_gpu_problem(f'the hardware profile {profile.name}')}: leave it empty, or choose a profile with GPUs"
        if problem:
            note.update(problem)
            count = None
        else:
            note.update(f"Planning for another machine: {self.state.hardware}"
                        + (f" with {plural(count, 'GPU')}" if count else "") + ". The detected devices above are not used.")
        self.state.set_gpu_count(count, problem)

    def refusal(self) -> str | None:
        return self.state.gpu_problem  # the GPU count box holds no count

    def first_input(self):
        return self.query_one("#gpu-count", Input) if self.state.gpu_problem else None

    @on(Button.Pressed, "#hardware-next")
    def next_step(self) -> None:
        self.app.action_next_step()

    @on(Button.Pressed, "#demo")
    def demo(self) -> None:
        self.app.start_demo()
