"""The house rules of docs/ARCHITECTURE.md's "Where code lives", checked on the source: the stage packages
read as the pipeline, a stage imports only the stages above it, only tui/app/ imports Textual,
the tui/lf/ scripts are never imported, and no module grows into a warehouse."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TUI = Path(__file__).resolve().parents[1] / "tui"
# The pipeline, top to bottom. `cli` may open the app (no sub-command); the app never calls the CLI.
STAGES = ("common", "hardware", "history", "models", "datasets", "plan", "bundle", "runs", "after", "app", "cli")
MAX_LINES = 400
# Over it today, and being changed by other work in progress (issue 22 splits them after it lands).
NOT_YET_SPLIT: set[str] = set()
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
    if str(path.relative_to(TUI)) in NOT_YET_SPLIT:
        assert lines > MAX_LINES, f"{path.relative_to(TUI)} is {lines} lines now: take it off NOT_YET_SPLIT"
        return
    assert lines <= MAX_LINES, f"{path.relative_to(TUI)} has {lines} lines: two nouns, split it"


def test_the_layout_check_can_fail(tmp_path):
    """The import walk sees imports inside functions too (the core imports lazily)."""
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from tui.app.main import SftTuiApp\n")
    assert imported_modules(module) == ["tui.app.main"]


def import_graph(modules: list[Path], root: Path = TUI.parent) -> dict[str, set[str]]:
    """Module -> the tui modules it imports (at the top or inside a function; `from tui.x import y`
    counts y when y is a module)."""
    names = {".".join(p.relative_to(root).with_suffix("").parts).removesuffix(".__init__"): p for p in modules}
    graph: dict[str, set[str]] = {}
    for name, path in names.items():
        edges = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
            edges |= {t for t in targets if t in names and t != name}
        graph[name] = edges
    return graph


def import_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan), each sorted."""
    index, low, stack, on_stack, circles, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                circles.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return circles


def test_no_modules_import_each_other_in_a_circle():
    """Not even through an import inside a function (tui.runs.lifecycle <-> tui.runs.preflight was one)."""
    assert import_circles(import_graph(MODULES)) == []


def test_the_circle_check_can_fail(tmp_path):
    package = tmp_path / "tui"
    package.mkdir()
    (package / "a.py").write_text("from tui.b import f\n")
    (package / "b.py").write_text("def f():\n    from tui import c\n")
    (package / "c.py").write_text("def g():\n    import tui.a\n")
    (package / "d.py").write_text("import tui.a\n")
    graph = import_graph(sorted(package.glob("*.py")), root=tmp_path)
    assert import_circles(graph) == [["tui.a", "tui.b", "tui.c"]]


ROOT = TUI.parent


def test_the_design_document_is_in_the_repository():
    design = (ROOT / "docs" / "ARCHITECTURE.md").read_text(encoding="utf-8")
    for stage in STAGES:
        assert f"  {stage}/" in design, f"docs/ARCHITECTURE.md's layout has no {stage}/"
    assert "docs/ARCHITECTURE.md" in (ROOT / "README.md").read_text(encoding="utf-8")


def readme_layout() -> dict[str, set[str]]:
    """The README's module list (Development): each `tui/<stage>/` line and the lines under it, the
    names of modules they give (`name.py`)."""
    import re

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    block = text[text.index("\n```\ntui/common/"):]
    block = block[:block.index("\n```", 4)]
    listed: dict[str, set[str]] = {}
    stage = None
    for line in block.splitlines():
        if match := re.match(r"tui/(\w+)/", line):
            stage = match.group(1)
        elif not line.startswith(" "):
            stage = None
        if stage:
            listed.setdefault(stage, set()).update(re.findall(r"(\w+)\.py\b", line))
    return listed


def test_every_tui_path_the_readme_names_exists():
    import re

    text = (ROOT / "README.md").read_text(encoding="utf-8")
    named = set(re.findall(r"\btui/[\w/]+\.py\b", text))
    assert named and not [p for p in sorted(named) if not (ROOT / p).is_file()]


def test_the_readme_lists_every_module():
    listed = readme_layout()
    assert set(listed) == set(STAGES) | {"lf"}
    missing = [f"tui/{p.parent.name}/{p.name}" for p in sorted(TUI.glob("*/*.py"))
               if p.name != "__init__.py" and p.parent.name in listed and p.stem not in listed[p.parent.name]]
    assert not missing, f"the README's layout (Development) does not list {missing}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(TUI)))
def test_whether_a_device_is_a_gpu_is_decided_in_one_place(path):
    """Device.is_gpu (tui/hardware/device.py), not `vendor != "cpu"` written again beside it."""
    import re

    if path.relative_to(TUI).as_posix() == "hardware/device.py":
        return
    assert not re.search(r"\.vendor\s*[!=]=\s*[\"']cpu[\"']", path.read_text(encoding="utf-8")), path
