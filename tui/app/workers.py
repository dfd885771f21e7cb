"""The one worker-error policy of the app (harlequin's): every worker is started with
`exit_on_error=False`, and the one `Worker.StateChanged` handler below, mixed into every class that
runs workers (the app, the wizard's steps, the monitor, the compare screen), turns an exception no
worker expected into one sentence in a notification. Nothing closes, no choice is lost, and no
traceback reaches the screen; the user can try again."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.worker import Worker, WorkerState

if TYPE_CHECKING:  # mypy sees the mixin as the Textual node it is mixed into; at run time it is a plain class
    from textual.dom import DOMNode as _Node
else:
    _Node = object

# What each worker group was doing, in the words of the sentence ("... failed while <what>").
DOING = {
    "detect": "detecting the hardware",
    "model": "looking up the model",
    "validate": "validating the dataset",
    "plan": "planning",
    "simulate": "simulating the plan's training step",
    "start": "starting the run",
    "demo": "preparing the demo",
    "compare": "comparing the runs",
    "open": "opening the run",
    "follow": "following the run",
    "gpu": "reading the GPUs",
    "try": "trying the prompt",
    "eval": "evaluating",
    "stop": "stopping the run",
    "retry": "writing the retry",
    "history": "reading the run history",
}


def worker_error_sentence(worker: Worker) -> str:
    """One sentence: what failed, the exception in one line, and that the choices are kept."""
    error = worker.error
    doing = DOING.get(worker.group, f"running {worker.name or 'a task'}")
    detail = " ".join(str(error).split()) or "no message"
    return (f"sft-tui failed while {doing} ({type(error).__name__}: {detail}); every choice is kept, "
            "so try again, and please report it if it happens again")


class WorkerErrors(_Node):
    """Mixed into every class whose methods are `@work` workers (Textual finds the handler by its
    name through the class's bases; Worker.StateChanged goes to the worker's own node only)."""

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state != WorkerState.ERROR:
            return
        sentence = worker_error_sentence(event.worker)
        app = self.app
        shown = app.__dict__.setdefault("_worker_errors_shown", set())
        if sentence in shown:  # a poller failing on each poll says it once
            return
        shown.add(sentence)
        app.notify(sentence, title="Unexpected error", severity="error", timeout=30)
        self.worker_failed(event.worker, sentence)

    def worker_failed(self, worker: Worker, sentence: str) -> None:
        """A step that shows its worker's result somewhere (the plan's verdict) says it there too."""
