"""What a run's logs say happened, as typed events (tui.runs.follower makes them; the monitor, watch,
notify and the CLI read them)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

EventKind = Literal["line", "restarted", "started", "resumed", "progress", "metrics", "health", "checkpoint",
                    "data_warning", "data_error", "oom", "finished", "failed", "stopped", "vanished",
                    "retried"]  # retried: only notified (monitor --auto-retry started the retry)


@dataclass
class Event:
    """One thing that happened in a run. `kind` is one of EVENT_KINDS; `text` is for people."""

    kind: EventKind
    data: dict = field(default_factory=dict)
    text: str = ""

    def to_json(self) -> dict:
        return {"event": self.kind, **self.data, "text": self.text}


EVENT_KINDS: tuple[EventKind, ...] = get_args(EventKind)
