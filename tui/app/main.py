"""The sft-tui Textual app. For now: the Hardware step of the wizard (issue #7 builds the rest).

Detection runs in a thread worker and posts its result; the screen only reacts.
"""

from __future__ import annotations

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import DataTable, Footer, Header, Static

from tui.hardware import Detection, detect, summary_line


class HardwareView(Vertical):
    """Detected devices in a table, the one-line summary, and the probes' problems."""

    def compose(self) -> ComposeResult:
        yield Static("Detecting hardware…", id="summary")
        table = DataTable(id="devices", cursor_type="row", zebra_stripes=True)
        table.add_columns("#", "vendor", "name", "memory used/total", "util", "arch", "bf16", "fp16", "fa2", "bnb", "state")
        yield table
        yield Static("", id="problems")

    def show(self, detection: Detection) -> None:
        self.query_one("#summary", Static).update(summary_line(detection))
        table = self.query_one("#devices", DataTable)
        table.clear()
        for d in detection.devices:
            used = f"{d.memory_used_mib / 1024:.1f} / {d.memory_total_mib / 1024:.1f} GiB"
            util = "" if d.utilization_pct is None else f"{d.utilization_pct:.0f}%"
            arch = d.compute_capability or d.gfx or (f"{d.cpu_cores} cores" if d.cpu_cores else "")
            state = "" if d.vendor == "cpu" else ("free" if d.free else "busy")
            flags = ["✓" if f else "·" for f in (d.bf16, d.fp16, d.flash_attn2, d.bitsandbytes)]
            table.add_row(str(d.index), d.vendor, d.name, used, util, arch, *flags, state)
        problems = "\n".join(f"• {p}" for p in detection.problems)
        self.query_one("#problems", Static).update(problems)


class SftTuiApp(App):
    CSS_PATH = "app.tcss"
    TITLE = "sft-tui"
    SUB_TITLE = "Hardware"
    BINDINGS = [
        Binding("r", "refresh_hardware", "Re-detect"),
        Binding("q", "quit", "Quit"),
    ]

    def compose(self) -> ComposeResult:
        yield Header()
        yield HardwareView()
        yield Footer()

    def on_mount(self) -> None:
        self.action_refresh_hardware()

    def action_refresh_hardware(self) -> None:
        self.detect_hardware()

    @work(thread=True, exclusive=True, group="detect")
    def detect_hardware(self) -> None:
        detection = detect()
        self.call_from_thread(self.query_one(HardwareView).show, detection)
