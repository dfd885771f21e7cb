"""--notify and --webhook for the commands that watch a run (`monitor`, `run`): arguments in,
a tui.runs.notify.Notifier out. Terminal sequences go to stderr only when it is a terminal;
a channel that failed is one line on stderr, never an exit."""

from __future__ import annotations

import argparse
import os
import sys
import urllib.parse
from typing import TextIO

from tui.runs.notify import WEBHOOK_ENV, Notifier


def webhook_url(text: str) -> str:
    """argparse type for --webhook: an http(s) URL with a host."""
    parts = urllib.parse.urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"{text!r} is not an http:// or https:// URL")
    return text


def add_notify_arguments(parser) -> None:
    """--notify and --webhook, for `run`/`monitor`."""
    parser.add_argument("--notify", action="store_true",
                        help="when the run ends or needs attention: terminal bell and desktop notification "
                        f"(OSC 9/777, notify-send), and ${WEBHOOK_ENV} when set")
    parser.add_argument("--webhook", type=webhook_url, metavar="URL",
                        help="also POST a JSON notification there (Slack, Discord, ntfy, your own)")


def notifier_from_args(args, stderr: TextIO | None = None) -> Notifier | None:
    """The CLI's notifier from --notify/--webhook, or None when neither was given. Terminal
    sequences go to stderr when it is a terminal; problems are printed there as one line."""
    stderr = stderr or sys.stderr
    asked = bool(getattr(args, "notify", False))
    url = getattr(args, "webhook", None) or (os.environ.get(WEBHOOK_ENV) if asked else None)
    if not asked and not url:
        return None
    try:
        tty = stderr.isatty()
    except (AttributeError, ValueError):
        tty = False
    return Notifier(webhook=url, terminal=stderr if asked and tty else None, desktop=asked,
                    on_problem=lambda problem: print(f"sft-tui: notification: {problem}", file=stderr, flush=True))
