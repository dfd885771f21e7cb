"""Widgets the steps use: a path box that completes file names, the memory bar, a yes/no dialog
and the question asked before a plan that does not fit is exported or started."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.suggester import Suggester
from textual.widgets import (
    Button,
    Input,
    Label,
    Static,
)

if TYPE_CHECKING:
    from textual.widgets.button import ButtonVariant

BAR_COLOURS = {"weights": "blue", "trainable": "magenta", "gradients": "magenta", "optimizer": "magenta",
               "activations": "yellow", "logits": "cyan", "overhead": "bright_black"}


def common_prefix(values: list[str], fold=str) -> str:
    """The longest start every value shares (compared through `fold`), in the first value's spelling."""
    if not values:
        return ""
    folded = [fold(v) for v in values]
    n = 0
    while all(len(v) > n for v in folded) and len({v[n] for v in folded}) == 1:
        n += 1
    return values[0][:n]


class PathSuggester(Suggester):
    """Completes the last path typed in an input from the file system. The suggestion is the
    text typed plus the rest of the first matching name, never a rewritten path: Textual draws
    the part past what was typed as ghost text, so `./da` must become `./data/`, not `data/`."""

    def __init__(self):
        super().__init__(use_cache=False, case_sensitive=True)

    async def completions(self, value: str) -> list[str]:
        """Every value the last path typed completes to (folders end in /), sorted by name."""
        last = value.rpartition(" ")[2]
        if not last:
            return []
        path = Path(last).expanduser()
        folder, stem = (path, "") if last.endswith("/") else (path.parent, path.name)
        try:
            names = sorted(p.name + ("/" if p.is_dir() else "") for p in folder.iterdir() if p.name.startswith(stem))
        except OSError:
            return []
        return [value + name[len(stem):] for name in names if not name.startswith(".") or stem.startswith(".")]

    async def get_suggestion(self, value: str) -> str | None:
        found = await self.completions(value)
        return found[0] if found and len(found[0]) > len(value) else None


class PathInput(Input):
    """An input that completes as a shell does (paths; the model box also profile names and hub ids):
    Tab completes the common prefix of the candidates, lists them in the box's bottom border while
    more than one is left, and a second Tab cycles through them. Tab never leaves the box (shift+tab
    and the step's keys do); the ghost text is the first candidate, taken with the right arrow."""

    BINDINGS = [Binding("tab", "complete", "Complete", show=False)]
    _cycle: list[str] | tuple = ()  # the candidates listed, while Tab cycles through them
    _cycle_at = -1
    _set_by_tab: str | None = None

    def __init__(self, **kwargs):
        super().__init__(suggester=PathSuggester(), **kwargs)

    async def action_complete(self) -> None:
        if self._cycle and self.value == self._set_by_tab:
            self._cycle_at = (self._cycle_at + 1) % len(self._cycle)
            self._set(self._cycle[self._cycle_at])
            self._list()
            return
        completions = getattr(self.suggester, "completions", None)
        found = await completions(self.value) if completions else []
        if not found:
            self.app.bell()
            return
        if len(found) == 1:
            self._end_cycle()
            self._set(found[0])
            return
        prefix = common_prefix(found, fold=str if getattr(self.suggester, "case_sensitive", True) else str.lower)
        self._cycle, self._cycle_at = found, -1
        self._set(prefix if len(prefix) > len(self.value) else self.value)
        self._list()

    def _set(self, value: str) -> None:
        self._set_by_tab = value
        self.value = value
        self.cursor_position = len(value)

    def _list(self) -> None:
        """The candidates by their last part (a path's name, a model's id), the current one bold."""
        words = [Content(c.rstrip("/").rpartition("/")[2] + ("/" if c.endswith("/") else "") if "/" in c.rstrip("/")
                         and c.startswith(("/", ".", "~")) else c) for c in self._cycle]
        if 0 <= self._cycle_at < len(words):
            words[self._cycle_at] = words[self._cycle_at].stylize("bold reverse")
        self.border_subtitle = Content(f"{len(words)}: ").join([Content(""), Content("  ").join(words)])

    def _end_cycle(self) -> None:
        self._cycle, self._cycle_at, self._set_by_tab = (), -1, None
        self.border_subtitle = None

    def watch_value(self, value: str) -> None:
        if self._cycle and value != self._set_by_tab:  # typed: the list is stale
            self._end_cycle()


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
    from tui.plan.memory import bar_cells

    parts, free = bar_cells(breakdown, capacity, width)
    text = Text()
    for key, cells in parts:
        text.append("█" * cells, style=BAR_COLOURS.get(key, "white"))
    text.append("·" * free, style="green")
    return text


class Confirm(ModalScreen[bool]):
    """The app's one confirm dialog: a question with a yes and a no; `y` and escape answer from the
    keyboard, and Enter gives the safe answer (no). The text wraps. A named question (stopping a
    run, starting one planned for other hardware) is a subclass that only words it."""

    BINDINGS = [Binding("escape", "dismiss(False)", "Cancel"), Binding("y", "dismiss(True)", "Yes")]

    def __init__(self, question: str, yes: str, no: str = "Cancel", variant: ButtonVariant = "error"):
        super().__init__()
        self.question, self.yes, self.no, self.variant = question, yes, no, variant

    def compose(self) -> ComposeResult:
        with Vertical(id="confirm"):
            yield Label(Text(self.question), id="confirm-text")
            with Horizontal():
                yield Button(self.yes, variant=self.variant, id="yes")
                yield Button(self.no, variant="primary", id="no")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()  # the safe answer is the one Enter gives

    @on(Button.Pressed)
    def answer(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


def overrun(estimate: dict, unit: str = "GPU") -> str | None:
    """How far a plan's memory estimate (plan.json's plan.estimate) is over what the device can
    use, as a sentence; None when it fits."""
    if estimate["fits"]:
        return None
    need, usable, capacity = estimate["per_device_gib"], estimate["usable_gib"], estimate["capacity_gib"]
    return (f"needs {need:.1f} GiB of the {usable:.1f} GiB usable per {unit} ({capacity:.1f} GiB less the "
            f"safety margin): {need - usable:.1f} GiB over")


def unless_it_does_not_fit(app, estimate: dict, doing: str, then, unit: str = "GPU") -> None:
    """Call `then()` at once for a plan that fits; for one that does not, only once the user has
    confirmed, in a dialog that says by how much it is over."""
    over = overrun(estimate, unit)
    if over is None:
        then()
        return
    question = (f"This plan does not fit: it {over}. LLaMA-Factory will most likely stop with an out-of-memory "
                f"error. {doing.capitalize()} anyway?")

    def answered(yes: bool | None) -> None:
        if yes:
            then()

    app.push_screen(Confirm(question, f"{doing.capitalize()} anyway", "Go back"), answered)
