"""ruff and mypy, configured in pyproject.toml ([tool.ruff], [tool.mypy]), pass on the code."""

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


def test_mypy_passes():
    """tui/ type-checks (tui/lf/ aside: see [tool.mypy]); its cache is .mypy_cache, ignored by git."""
    done = subprocess.run([sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert "No module named mypy" not in done.stderr, f"no mypy in {sys.executable}: pip install -e '.[dev]'"
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_refuses_a_kind_that_is_none(tmp_path):
    """The kinds are Literal types: a reason, an event or a health diagnosis of a kind not listed
    is an error mypy reports (so the check above can fail, and does on a typo)."""
    wrong = tmp_path / "wrong_kinds.py"
    wrong.write_text("from tui.plan.values import Reason\nfrom tui.runs.events import Event\n"
                     "from tui.runs.health import Say\n\n\n"
                     "def typos(say: Say) -> None:\n"
                     "    Reason('fited', 'text', 'rule')\n"
                     "    Event('finised')\n"
                     "    say('nan_los', 'sentence')\n", encoding="utf-8")
    done = subprocess.run([sys.executable, "-m", "mypy", str(wrong)], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    for typo in ("fited", "finised", "nan_los"):
        assert f"Literal['{typo}']" in done.stdout, done.stdout
    assert "Found 3 errors in 1 file" in done.stdout, done.stdout
