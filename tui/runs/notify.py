"""Telling the user that a run ended or needs attention, wherever they are looking.

Three channels, each optional, none able to stop the caller:

- the terminal: a bell, then the desktop-notification escape sequences OSC 9 (iTerm2, WezTerm,
  Ghostty, Windows Terminal, kitty...) and OSC 777 (rxvt-unicode, foot, VTE with the notify patch,
  WezTerm...). They travel inside the SSH session, so a laptop hears about a run on a remote
  machine. Inside tmux they are wrapped for tmux's passthrough (`set -g allow-passthrough on`).
- `notify-send`, when it is installed and there is a desktop session to show it in.
- a webhook: a JSON POST of {"text", "content", "run", "run_dir", "status", "message"}. Slack's
  and Mattermost's incoming webhooks read `text`, Discord's `content`; ntfy (2.10+) shows the
  message alone with `?tpl=1&m={{.text}}` on the topic URL (and reads the Title/Tags/Priority
  headers sent with it), anything else gets the whole object.

Text from a log reaches a terminal only after every control character is removed: a loss line or
an exception cannot smuggle escape sequences through a notification. The core never picks a
terminal itself: the caller passes the stream (tui/cli/notify.py: stderr when it is a tty).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import unicodedata
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TextIO

from tui.runs.events import EventKind

# Events worth a notification: the run ended, or (health) it needs a look while it goes on.
ENDED_KINDS: tuple[EventKind, ...] = ("finished", "failed", "stopped", "vanished")
NOTIFY_KINDS: tuple[EventKind, ...] = ENDED_KINDS + ("health",)
URGENT_KINDS: tuple[EventKind, ...] = ("failed", "vanished", "health")

WEBHOOK_ENV = "SFT_TUI_WEBHOOK"  # the URL without putting it on the command line (it is a secret for Slack)
WEBHOOK_TIMEOUT_S = 5.0
NOTIFY_SEND_TIMEOUT_S = 5.0
MESSAGE_LIMIT = 240  # characters of the message a desktop notification shows

# Terminals that show OSC 9 *and* OSC 777: one of them is enough, or the user sees two popups.
OSC9_ONLY_TERM_PROGRAMS = ("WezTerm", "ghostty")


def clean(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """One line of printable text: control characters (ESC, BEL, newlines, C1) become spaces."""
    text = "".join(" " if unicodedata.category(ch).startswith("C") else ch for ch in str(text))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def title_of(event_kind: str, run_dir: Path) -> str:
    return clean(f"sft-tui: {Path(run_dir).name} {event_kind}", 80)


def terminal_sequences(title: str, message: str, *, tmux: bool = False, term_program: str = "") -> str:
    """Bell, OSC 9 and OSC 777 for one notification (each OSC ended by BEL, which every terminal
    that knows them accepts)."""
    title, message = clean(title, 80), clean(message)
    oscs = [f"\x1b]9;{title}: {message}\a"]
    if term_program not in OSC9_ONLY_TERM_PROGRAMS:
        oscs.append(f"\x1b]777;notify;{title.replace(';', ',')};{message}\a")
    if tmux:  # tmux passes a DCS "tmux;" body through to the outer terminal, its ESCs doubled
        oscs = ["\x1bPtmux;" + osc.replace("\x1b", "\x1b\x1b") + "\x1b\\" for osc in oscs]
    return "\a" + "".join(oscs)


def _where(url: str) -> str:
    """The URL as it may be shown: scheme and host only (Slack's path is its secret)."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}{':' + str(parts.port) if parts.port else ''}"


def post_webhook(url: str, event_kind: str, run_dir: Path, message: str, timeout: float = WEBHOOK_TIMEOUT_S) -> str | None:
    """POST the notification as JSON; the one-line problem, or None when the server took it."""
    title = title_of(event_kind, run_dir)
    text = f"{title}: {clean(message, 2000)}"
    body = {"text": text, "content": text, "run": Path(run_dir).name, "run_dir": str(Path(run_dir).absolute()),
            "status": event_kind, "message": message}
    headers = {"Content-Type": "application/json", "User-Agent": "sft-tui",
               # ntfy's headers; other services ignore them. Header values must be latin-1.
               "Title": title.encode("ascii", "replace").decode(),
               "Tags": "warning" if event_kind in URGENT_KINDS else "white_check_mark",
               "Priority": "high" if event_kind in URGENT_KINDS else "default"}
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        return "webhook: the URL is not an http:// or https:// URL"
    try:
        request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
        with urllib.request.urlopen(request, timeout=timeout) as response:
            response.read(4096)
    except urllib.error.HTTPError as err:
        return f"webhook {_where(url)} answered HTTP {err.code} {err.reason}"
    except urllib.error.URLError as err:
        return f"webhook {_where(url)} not reached: {clean(str(err.reason), 120)}"
    except (OSError, ValueError) as err:  # timeouts, resets, a malformed URL
        return f"webhook {_where(url)} failed: {clean(str(err) or type(err).__name__, 120)}"
    return None


def has_desktop(env: Mapping[str, str] | None = None) -> bool:
    seen = os.environ if env is None else env
    return any(seen.get(k) for k in ("DISPLAY", "WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS"))


def notify_send(title: str, message: str, urgent: bool = False) -> str | None:
    """`notify-send` when installed and a desktop session is there; the one-line problem, or None."""
    program = shutil.which("notify-send")
    if not program or not has_desktop():
        return None
    command = [program, "--app-name=sft-tui", f"--urgency={'critical' if urgent else 'normal'}",
               clean(title, 80), clean(message)]
    try:
        done = subprocess.run(command, check=False, capture_output=True, text=True, timeout=NOTIFY_SEND_TIMEOUT_S,
                              stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError) as err:
        return f"notify-send failed: {clean(str(err), 120)}"
    if done.returncode != 0:
        return f"notify-send failed: {clean(done.stderr or f'exit code {done.returncode}', 120)}"
    return None


def notify(event_kind: EventKind, run_dir: Path, message: str, *, webhook: str | None = None,
           terminal: TextIO | None = None, desktop: bool = True) -> str | None:
    """Notify on every channel asked for: `terminal` (a stream: bell + OSC 9/777), `desktop`
    (notify-send where present), `webhook` (a URL). Never raises; returns the problems, one line
    ('; '-joined), or None when every channel asked for worked."""
    title = title_of(event_kind, run_dir)
    problems: list[str | None] = []
    if terminal is not None:
        try:
            terminal.write(terminal_sequences(title, message, tmux=bool(os.environ.get("TMUX")),
                                              term_program=os.environ.get("TERM_PROGRAM", "")))
            terminal.flush()
        except (OSError, ValueError) as err:  # a closed or broken terminal
            problems.append(f"terminal notification failed: {err}")
    if desktop:
        problems.append(notify_send(title, message, urgent=event_kind in URGENT_KINDS))
    if webhook:
        problems.append(post_webhook(webhook, event_kind, run_dir, message))
    said = [p for p in problems if p]  # each None: that channel worked
    return "; ".join(said) if said else None


class Notifier:
    """Notifies on the events that matter, once each: a run's end, and each health diagnosis
    (a diagnosis repeated every step is one notification)."""

    def __init__(self, *, webhook: str | None = None, terminal: TextIO | None = None, desktop: bool = True,
                 on_problem: Callable[[str], None] = lambda problem: None):
        self.webhook, self.terminal, self.desktop, self.on_problem = webhook, terminal, desktop, on_problem
        self.sent: set[tuple[str, str]] = set()

    def on_event(self, event, run_dir: Path) -> str | None:
        """Give it every event (tui.runs.follower.Event); it picks. The problem, if any, also goes to on_problem."""
        if event.kind not in NOTIFY_KINDS:
            return None
        key = (event.kind, str(event.data.get("diagnosis") or event.text) if event.kind == "health" else "")
        if key in self.sent:
            return None
        self.sent.add(key)
        message = event.text or event.kind
        if message.startswith(f"{event.kind}: "):  # the title names the kind already
            message = message[len(event.kind) + 2:]
        problem = notify(event.kind, run_dir, message, webhook=self.webhook,
                         terminal=self.terminal, desktop=self.desktop)
        if problem:
            self.on_problem(problem)
        return problem
