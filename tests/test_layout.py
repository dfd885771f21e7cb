"""The house rules of DESIGN.md's "Where code lives", checked on the source: the stage packages
read as the pipeline, a stage imports only the stages above it, only tui/app/ imports Textual,
the tui/lf/ scripts are never imported, and no module grows into a warehouse."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TUI = Path(__file__).resolve().parents[1] / "tui"
# The pipeline, top to bottom. `cli` may open the app (no sub-command); the app never calls the CLI.
STAGES = ("common", "hardware", "history", "models", "datasets", "plan", "bundle", "runs", "after", "app", "cli")
MAX_LINES = 500
MODULES = sorted(p for p in TUI.rglob("*.py") if "_data" not in p.parts)


def stage_of(path: Path) -> str | None:
    rel = path.relative_to(TUI)
    return rel.parts[0] if len(rel.parts) > 1 else None


def imported_modules(path: Path) -> list[str]:
    """Every module an import statement names, at the top or inside a function."""
    names = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
    return names


def test_the_stage_packages_exist_and_nothing_else_sits_beside_them():
    packages = {p.name for p in TUI.iterdir() if p.is_dir() and p.name not in ("__pycache__", "_data")}
    assert packages == set(STAGES) | {"lf"}
    assert sorted(p.name for p in TUI.glob("*.py")) == ["__init__.py"]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(TUI)))
def test_a_stage_imports_only_the_stages_above_it(path):
    stage = stage_of(path)
    if stage is None or stage == "lf":
        return
    for module in imported_modules(path):
        parts = module.split(".")
        if parts[0] != "tui" or len(parts) < 2 or parts[1] == "__init__":
            continue
        target = parts[1]
        assert target != "lf", f"{path.name} imports {module}: tui/lf/ scripts run in the training environment"
        assert STAGES.index(target) <= STAGES.index(stage), f"{stage}/{path.name} imports {module}, a later stage"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(TUI)))
def test_only_the_app_imports_textual(path):
    if stage_of(path) == "app":
        return
    assert not [m for m in imported_modules(path) if m.split(".")[0] == "textual"]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(TUI)))
def test_no_module_is_a_warehouse(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(TUI)} has {lines} lines: two nouns, split it"


def test_the_layout_check_can_fail(tmp_path):
    """The import walk sees imports inside functions too (the core imports lazily)."""
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from tui.app.main import SftTuiApp\n")
    assert imported_modules(module) == ["tui.app.main"]
