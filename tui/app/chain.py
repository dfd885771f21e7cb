"""The monitor's retries by themselves (the app's twin of `sft-tui monitor --auto-retry N`): when
the run it follows ends, the retry its verdict names is written and started (tui.runs.autoretry),
and a monitor of the retry takes this one's place, with one retry fewer left."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from textual import work

from tui.app.workers import WorkerErrors


class RetryChain(WorkerErrors):
    """Mixed into RunMonitor: `auto_retry` retries left; `chained` when this monitor follows a retry
    the chain started (its end is said, even with none left)."""

    run_dir: Path
    auto_retry: int = 0
    chained: bool = False

    def chain_on(self, ended_kind: str) -> None:
        if self.auto_retry > 0 or self.chained:
            self.retry_by_itself(ended_kind)

    @work(thread=True, group="retry", exit_on_error=False)
    def retry_by_itself(self, ended_kind: str) -> None:
        from tui.runs.autoretry import after_run
        from tui.runs.notify import WEBHOOK_ENV, notify

        step = after_run(self.run_dir, ended_kind, self.auto_retry)
        if step is None:
            return
        app = self.app  # WorkerErrors declares it: the widget this is mixed into has one
        app.call_from_thread(lambda: app.notify(step.message, title="Retried by itself" if step.started else "No retry",
                                                severity="warning" if step.started else "error", timeout=30))
        notify("retried" if step.started else "failed", self.run_dir, step.message,
               webhook=os.environ.get(WEBHOOK_ENV) or None, terminal=None)
        if step.started is not None:
            app.call_from_thread(self.follow_retry, step.started)

    def follow_retry(self, run_dir: Path) -> None:
        """A monitor of the retry in this one's place."""
        from textual.widget import Widget

        monitor_class: Any = type(self)  # RunMonitor (tui.app.monitor imports this module)
        monitor = monitor_class(run_dir, auto_retry=self.auto_retry - 1)
        monitor.chained = True
        assert isinstance(self, Widget) and isinstance(self.parent, Widget)  # mixed into RunMonitor, mounted
        self.parent.mount(monitor, after=self)
        self.remove()
        monitor.focus()
