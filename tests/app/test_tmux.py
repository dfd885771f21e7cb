"""A real terminal: tmux runs `sft-tui`, keys start the demo, and the screen shows the run
finished. Skipped only when tmux is absent (CI installs it)."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import time
import uuid

import pytest

from tests.support.llamafactory import BIN, offline_env

pytestmark = [pytest.mark.llamafactory,
              pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed (apt-get install tmux)")]


SOCKET = f"sft-tui-test-{uuid.uuid4().hex[:8]}"  # a tmux server of our own, whatever the user runs


def tmux(*args, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(["tmux", "-L", SOCKET, *args], capture_output=True, text=True, **kwargs)


def capture(session: str) -> str:
    return tmux("capture-pane", "-p", "-t", session).stdout


def wait_for_screen(session: str, words: str, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = capture(session)
        if words in screen:
            return screen
        time.sleep(0.5)
    raise AssertionError(f"{words!r} never appeared; the screen was:\n{screen}")


def test_the_demo_runs_to_the_end_in_a_real_terminal(tmp_path):
    session = "demo"
    env = offline_env(XDG_DATA_HOME=str(tmp_path / "data"), TERM="xterm-256color")
    command = f"cd {shlex.quote(str(tmp_path))} && exec env XDG_DATA_HOME={shlex.quote(str(tmp_path / 'data'))} {BIN / 'sft-tui'}"
    tmux("new-session", "-d", "-s", session, "-x", "100", "-y", "32", command, check=True, env=env)
    try:
        wait_for_screen(session, "1 Hardware", 30)
        tmux("send-keys", "-t", session, "C-t", check=True)
        screen = wait_for_screen(session, "finished  step", 240)
        assert "6 Run" in screen and "demo-" in screen
        tmux("send-keys", "-t", session, "C-q", check=True)
    finally:
        tmux("kill-server")
    runs = list((tmp_path / "data" / "sft-tui" / "demo" / "runs").iterdir())
    assert len(runs) == 1 and (runs[0] / "exit_code").read_text().strip() == "0"
