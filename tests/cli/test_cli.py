"""The command line: fast start, no heavy imports, clear errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent
HEAVY = ("torch", "transformers", "llamafactory")


def test_help_lists_the_commands():
    done = subprocess.run([str(BIN / "sft-tui"), "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    assert "detect" in done.stdout and "profiles" in done.stdout


def test_detect_and_profiles_never_import_the_training_stack():
    code = (
        "import sys, io, contextlib\n"
        "from tui.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    main(['detect', '--json']); main(['profiles', '--json'])\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_unknown_command_is_a_usage_error():
    done = subprocess.run([str(BIN / "sft-tui"), "fly"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "invalid choice: 'fly'" in done.stderr
