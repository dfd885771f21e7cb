"""ruff, configured in pyproject.toml ([tool.ruff]), passes on the package and the tests."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_passes():
    ruff = Path(sys.executable).parent / "ruff"
    assert ruff.is_file(), f"no ruff beside {sys.executable}: pip install -e '.[dev]'"
    done = subprocess.run([str(ruff), "check", "--no-cache", "tui", "tests"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
