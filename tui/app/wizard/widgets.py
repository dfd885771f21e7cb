"""Widgets the steps use: a path box that completes file names, the memory bar."""

from __future__ import annotations

from pathlib import Path

from rich.text import Text
from textual.suggester import Suggester
from textual.widgets import (
    Static,
)

BAR_COLOURS = {"weights": "blue", "trainable": "magenta", "gradients": "magenta", "optimizer": "magenta",
               "activations": "yellow", "logits": "cyan", "overhead": "bright_black"}


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
