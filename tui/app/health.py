"""The monitor's training-health panel (the diagnoses of tui.runs.health, one line each, in the order
they came), and the alert when a run ends or needs attention: the terminal bell, and the desktop
and webhook notifications of tui.runs.notify in a thread (a webhook can take seconds to answer)."""

from __future__ import annotations

import os
from pathlib import Path

from textual.content import Content
from textual.widget import Widget
from textual.widgets import Static

from tui.runs.notify import NOTIFY_KINDS, WEBHOOK_ENV, notify


class HealthPanel(Static):
    """Hidden until the first diagnosis; then every diagnosis of the run, each once."""

    DEFAULT_CSS = """
    HealthPanel {
        display: none;
        height: auto;
        max-height: 9;
        border: round $warning;
        border-title-color: $warning;
        padding: 0 1;
    }
    """

    def __init__(self, **kwargs):
        super().__init__("", **kwargs)
        self.sentences: list[str] = []
        self.border_title = "training health"

    def add(self, sentence: str) -> None:
        if sentence in self.sentences:
            return
        self.sentences.append(sentence)
        content = Content("")
        for i, line in enumerate(self.sentences):
            content += Content.from_markup("[b $warning]![/]  $line", line=line) + ("\n" if i < len(self.sentences) - 1 else "")
        self.update(content)
        self.display = True


def alert(widget: Widget, event, run_dir: Path) -> None:
    """The bell now, and notify() (desktop, and $SFT_TUI_WEBHOOK when set) in a thread worker, for
    the events worth a notification (a run's end, a health diagnosis)."""
    if event.kind not in NOTIFY_KINDS:
        return
    widget.app.bell()
    message = event.text or event.kind
    webhook = os.environ.get(WEBHOOK_ENV) or None
    widget.run_worker(lambda: notify(event.kind, run_dir, message, webhook=webhook, terminal=None),
                      thread=True, group="notify", exit_on_error=False)


def retry_for_verdict(run_dir: Path) -> tuple[str, dict]:
    """The monitor's "Retry with this fix": the retry the run's files call for (tui.runs.verdict), written as
    `sft-tui retry --fix FIX` writes it; or, when they call for none, the one sentence why. The notification's
    text and its keywords (title, severity, timeout)."""
    from tui.app.wizard.wording import in_app_words
    from tui.runs.autoretry import no_fix_sentence
    from tui.runs.retry import resume_sentence, retry_run
    from tui.runs.verdict import read_verdict

    verdict = read_verdict(run_dir)
    if verdict.fix is None:
        return in_app_words(f"{run_dir.name} {no_fix_sentence(verdict)}."), {"title": "No retry", "severity": "error", "timeout": 20}
    try:
        retry = retry_run(run_dir, verdict.fix)
    except Exception as err:  # a RetryError's sentence, or a plan that cannot be made: said, never raised
        return in_app_words(str(err)), {"severity": "error", "timeout": 20}
    changes = ", ".join(f"{k} {a} -> {b}" for k, (a, b) in retry.changes.items())
    if not retry.fits:
        return (f"wrote {retry.run_dir} (--fix {retry.fix}): {changes}; but the plan still does not fit "
                f"({retry.per_device_gib:.1f} GiB per device): use a GPU with more memory, more GPUs, or a shorter "
                "cutoff_len."), {"title": "Retry written", "severity": "error", "timeout": 20}
    return (f"wrote {retry.run_dir} (--fix {retry.fix}): {changes}; {resume_sentence(retry)}. Start it with "
            "sft-tui run."), {"title": "Retry written", "timeout": 15}
