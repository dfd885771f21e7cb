"""The one base of sft-tui's own errors. Each stage raises its own kind (RunError, BundleError,
ModelError...), and every kind is an SftTuiError: one sentence that says what happened, where
(file:line when there is one) and what to do next. A front end catches SftTuiError to word it
(the CLI prints it, the app shows it in its own words, tui.app.wizard.wording); anything else is a
bug, which the app's one worker-error policy (tui.app.workers) still keeps from closing the app."""

from __future__ import annotations


class SftTuiError(Exception):
    """An error sft-tui expects and words: its message is the sentence the user reads."""
