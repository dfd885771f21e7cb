"""Notifications: escape sequences into a stream, notify-send faked on PATH, a webhook received by
a local HTTP server."""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import stat
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tui.cli.notify import add_notify_arguments, notifier_from_args
from tui.runs.follower import Event
from tui.runs.notify import Notifier, notify, post_webhook, terminal_sequences

RUN = Path("/srv/runs/tiny-lora")


@pytest.fixture(autouse=True)
def plain_environment(monkeypatch, tmp_path):
    """No tmux, no known terminal, no desktop session, no notify-send, no webhook from the environment."""
    for name in ("TMUX", "TERM_PROGRAM", "DISPLAY", "WAYLAND_DISPLAY", "DBUS_SESSION_BUS_ADDRESS", "SFT_TUI_WEBHOOK"):
        monkeypatch.delenv(name, raising=False)
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


class Receiver(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.received.append((self.path, dict(self.headers), json.loads(body)))
        status = self.server.answer
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    httpd.received, httpd.answer = [], 200
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def url_of(httpd, path="/services/T000/B000/secret-token") -> str:
    return f"http://127.0.0.1:{httpd.server_address[1]}{path}"


@pytest.fixture
def fake_notify_send(tmp_path, monkeypatch):
    """A notify-send on PATH that records its argv (one JSON list per call) and exits with $FAKE_EXIT."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    record = tmp_path / "notify-send.calls"
    script = bindir / "notify-send"
    script.write_text(
        "#!/usr/bin/env python3\n"
        "import json, os, sys\n"
        f"open({str(record)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n"
        "print('no notification daemon', file=sys.stderr) if os.environ.get('FAKE_EXIT') else None\n"
        "sys.exit(int(os.environ.get('FAKE_EXIT', '0')))\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{Path(os.sys.executable).parent}{os.pathsep}/usr/bin:/bin")
    monkeypatch.setenv("DISPLAY", ":0")

    def calls() -> list[list[str]]:
        return [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []

    return calls


def test_terminal_gets_bell_osc9_and_osc777():
    terminal = io.StringIO()
    assert notify("finished", RUN, "8/8 steps, train_loss 6.2494", terminal=terminal, desktop=False) is None
    assert terminal.getvalue() == (
        "\a"
        "\x1b]9;sft-tui: tiny-lora finished: 8/8 steps, train_loss 6.2494\a"
        "\x1b]777;notify;sft-tui: tiny-lora finished;8/8 steps, train_loss 6.2494\a")


def test_text_from_a_log_cannot_smuggle_escape_sequences():
    terminal = io.StringIO()
    hostile = "ValueError: bad\x1b]52;c;ZXZpbA==\a row\n\twith\x9b31m C1 and; semicolons"
    notify("failed", Path("/r/run;x\x1b[2J"), hostile, terminal=terminal, desktop=False)
    text = terminal.getvalue()
    # only the sequences we write: the bell, and each OSC's start and end
    assert text.count("\x1b") == 2 and text.count("\a") == 3 and "\x9b" not in text and "\n" not in text
    assert "\x1b]9;sft-tui: run;x [2J failed: ValueError: bad ]52;c;ZXZpbA== row with 31m C1 and; semicolons\a" in text
    assert "\x1b]777;notify;sft-tui: run,x [2J failed;ValueError: bad" in text  # ';' would end 777's title


def test_inside_tmux_the_sequences_are_wrapped_for_passthrough(monkeypatch):
    monkeypatch.setenv("TMUX", "/tmp/tmux-0/default,1,0")
    terminal = io.StringIO()
    notify("stopped", RUN, "stopped at step 4", terminal=terminal, desktop=False)
    assert terminal.getvalue() == (
        "\a"
        "\x1bPtmux;\x1b\x1b]9;sft-tui: tiny-lora stopped: stopped at step 4\a\x1b\\"
        "\x1bPtmux;\x1b\x1b]777;notify;sft-tui: tiny-lora stopped;stopped at step 4\a\x1b\\")


def test_a_terminal_that_shows_both_gets_osc9_only():
    assert terminal_sequences("t", "m", term_program="WezTerm") == "\a\x1b]9;t: m\a"
    assert terminal_sequences("t", "m", term_program="iTerm.app") == "\a\x1b]9;t: m\a\x1b]777;notify;t;m\a"


def test_webhook_posts_json_that_slack_discord_and_ntfy_read(server):
    assert notify("failed", RUN, "CUDA out of memory at step 12", webhook=url_of(server), desktop=False) is None
    [(path, headers, body)] = server.received
    assert path == "/services/T000/B000/secret-token"
    assert body == {"text": "sft-tui: tiny-lora failed: CUDA out of memory at step 12",
                    "content": "sft-tui: tiny-lora failed: CUDA out of memory at step 12",
                    "run": "tiny-lora", "run_dir": str(RUN), "status": "failed",
                    "message": "CUDA out of memory at step 12"}
    assert headers["Content-Type"] == "application/json"
    assert (headers["Title"], headers["Priority"], headers["Tags"]) == ("sft-tui: tiny-lora failed", "high", "warning")


def test_a_failing_webhook_is_one_line_and_never_raises(server):
    server.answer = 500
    problem = notify("finished", RUN, "done", webhook=url_of(server), desktop=False)
    assert problem == f"webhook http://127.0.0.1:{server.server_address[1]} answered HTTP 500 Internal Server Error"
    assert "secret-token" not in problem  # a Slack URL's path is its secret

    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    problem = notify("finished", RUN, "done", webhook=f"http://127.0.0.1:{port}/hook", desktop=False)
    assert problem.startswith(f"webhook http://127.0.0.1:{port} not reached: ") and "\n" not in problem

    with socket.socket() as silent:  # accepts the connection, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        problem = post_webhook(f"http://127.0.0.1:{port}/hook", "finished", RUN, "done", timeout=0.3)
    assert problem.startswith(f"webhook http://127.0.0.1:{port} ") and "timed out" in problem

    assert notify("finished", RUN, "done", webhook="not a url", desktop=False) == (
        "webhook: the URL is not an http:// or https:// URL")


def test_notify_send_when_present(fake_notify_send):
    assert notify("finished", RUN, "8/8 steps\nand more") is None
    assert notify("health", RUN, "loss is nan") is None
    assert fake_notify_send() == [
        ["--app-name=sft-tui", "--urgency=normal", "sft-tui: tiny-lora finished", "8/8 steps and more"],
        ["--app-name=sft-tui", "--urgency=critical", "sft-tui: tiny-lora health", "loss is nan"],
    ]


def test_notify_send_needs_a_desktop_and_its_failure_is_one_line(fake_notify_send, monkeypatch):
    monkeypatch.delenv("DISPLAY")
    assert notify("finished", RUN, "done") is None and fake_notify_send() == []  # over plain SSH: not tried
    monkeypatch.setenv("WAYLAND_DISPLAY", "wayland-0")
    monkeypatch.setenv("FAKE_EXIT", "1")
    assert notify("finished", RUN, "done") == "notify-send failed: no notification daemon"
    assert len(fake_notify_send()) == 1


def test_every_channel_at_once_and_problems_joined(fake_notify_send, server, monkeypatch):
    monkeypatch.setenv("FAKE_EXIT", "2")
    server.answer = 404
    terminal = io.StringIO()
    problem = notify("vanished", RUN, "the process is gone", webhook=url_of(server), terminal=terminal)
    assert problem == (f"notify-send failed: no notification daemon; "
                       f"webhook http://127.0.0.1:{server.server_address[1]} answered HTTP 404 Not Found")
    assert terminal.getvalue().startswith("\a\x1b]9;sft-tui: tiny-lora vanished: the process is gone\a")
    assert len(server.received) == 1 and len(fake_notify_send()) == 1


def test_notifier_picks_the_events_and_sends_each_once(server):
    problems = []
    notifier = Notifier(webhook=url_of(server), desktop=False, on_problem=problems.append)
    events = [Event("progress", {}, "step 2/8"), Event("metrics", {}, "loss 6.25"), Event("oom", {}, "CUDA OOM"),
              Event("health", {"diagnosis": "nan_loss"}, "loss is nan at step 3: ..."),
              Event("health", {"diagnosis": "nan_loss"}, "loss is nan at step 4: ..."),
              Event("health", {"diagnosis": "loss_flat"}, "the loss has not moved"),
              Event("failed", {"cause": "oom"}, "out of GPU memory: sft-tui retry --fix oom"),
              Event("finished", {}, "finished: 8/8 steps")]
    for event in events:
        notifier.on_event(event, RUN)
    assert [(body["status"], body["message"]) for _, _, body in server.received] == [
        ("health", "loss is nan at step 3: ..."), ("health", "the loss has not moved"),
        ("failed", "out of GPU memory: sft-tui retry --fix oom"), ("finished", "8/8 steps")]
    assert server.received[-1][2]["text"] == "sft-tui: tiny-lora finished: 8/8 steps"  # not "finished: finished:"
    assert problems == []
    server.answer = 503
    assert notifier.on_event(Event("stopped", {}, "stopped"), RUN).endswith("answered HTTP 503 Service Unavailable")
    assert problems == [f"webhook http://127.0.0.1:{server.server_address[1]} answered HTTP 503 Service Unavailable"]


class FakeTty(io.StringIO):
    def isatty(self):
        return True


def parse(*argv):
    parser = argparse.ArgumentParser()
    add_notify_arguments(parser)
    return parser.parse_args(argv)


def test_notifier_from_args(server, monkeypatch):
    assert notifier_from_args(parse()) is None
    tty, pipe = FakeTty(), io.StringIO()

    only_webhook = notifier_from_args(parse("--webhook", url_of(server)), stderr=tty)
    assert (only_webhook.webhook, only_webhook.terminal, only_webhook.desktop) == (url_of(server), None, False)

    on_a_tty = notifier_from_args(parse("--notify"), stderr=tty)
    assert (on_a_tty.webhook, on_a_tty.terminal, on_a_tty.desktop) == (None, tty, True)
    assert notifier_from_args(parse("--notify"), stderr=pipe).terminal is None  # escape codes never into a pipe

    monkeypatch.setenv("SFT_TUI_WEBHOOK", url_of(server, "/from-env"))
    assert notifier_from_args(parse("--notify"), stderr=pipe).webhook == url_of(server, "/from-env")
    assert notifier_from_args(parse()) is None  # the variable alone notifies nobody

    server.answer = 500
    notifier = notifier_from_args(parse("--notify"), stderr=pipe)
    notifier.on_event(Event("finished", {}, "done"), RUN)
    assert pipe.getvalue() == (f"sft-tui: notification: webhook http://127.0.0.1:{server.server_address[1]} "
                               "answered HTTP 500 Internal Server Error\n")


def test_webhook_flag_takes_only_http_urls(capsys):
    with pytest.raises(SystemExit) as exit_:
        parse("--webhook", "ftp://example.org/x")
    assert exit_.value.code == 2
    assert "'ftp://example.org/x' is not an http:// or https:// URL" in capsys.readouterr().err


def test_monitor_plain_posts_the_health_diagnosis_and_the_end_to_the_webhook(server, tmp_path):
    """`sft-tui monitor --plain --notify --webhook URL` on a recorded run: the local server gets the
    run's health diagnosis and its end, each once, and the monitor still prints and exits as usual."""
    from tests.runs.test_health import recorded_health_run
    from tests.runs.test_runs import sft_tui

    run_dir = recorded_health_run(tmp_path, "spike")
    done = sft_tui("monitor", run_dir, "--plain", "--notify", "--webhook", url_of(server, "/hook"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == ""  # a terminal-less stderr gets no escape sequences, and the webhook worked
    assert [(path, body["status"], body["run"]) for path, _, body in server.received] == [
        ("/hook", "health", "finished"), ("/hook", "finished", "finished")]
    health, finished = (body for _, _, body in server.received)
    assert health["message"].startswith("the loss spiked to 6.812 at step 40")
    assert health["text"].startswith("sft-tui: finished health: the loss spiked")
    assert finished["message"].startswith("60/60 steps; adapter and checkpoints in ")
    assert [h["Priority"] for _, h, _ in server.received] == ["high", "default"]


def test_monitor_json_without_notify_posts_nothing(server, tmp_path):
    from tests.runs.test_health import recorded_health_run
    from tests.runs.test_runs import sft_tui

    run_dir = recorded_health_run(tmp_path, "spike")
    assert sft_tui("monitor", run_dir, "--json").returncode == 0
    assert server.received == []


def test_monitor_help_names_notify_and_webhook():
    from tests.runs.test_runs import sft_tui

    text = sft_tui("monitor", "--help", check=True).stdout
    assert "--notify" in text and "--webhook URL" in text


async def test_the_apps_alert_rings_and_notifies_in_a_thread(monkeypatch, tmp_path):
    """tui.app.health.alert: the bell at once, notify() (no terminal: the app owns it) in a worker, with
    $SFT_TUI_WEBHOOK as the webhook; events that are not an end or a diagnosis do nothing."""
    import threading

    from textual.app import App

    from tui.app.health import alert
    from tui.runs.follower import Event

    calls = []
    monkeypatch.setenv("SFT_TUI_WEBHOOK", "http://127.0.0.1:9/hook")
    monkeypatch.setattr("tui.app.health.notify", lambda kind, run_dir, message, **kw: calls.append(
        (kind, run_dir, message, kw, threading.current_thread() is threading.main_thread())))
    app = App()
    bells = []
    monkeypatch.setattr(app, "bell", lambda: bells.append(1))
    async with app.run_test() as pilot:
        alert(app.screen, Event("metrics", {}, "loss 1.0"), tmp_path)
        alert(app.screen, Event("health", {"diagnosis": "loss_spike"}, "the loss spiked"), tmp_path)
        await app.workers.wait_for_complete()
        await pilot.pause()
    assert bells == [1]
    assert calls == [("health", tmp_path, "the loss spiked", {"webhook": "http://127.0.0.1:9/hook", "terminal": None},
                      False)]
