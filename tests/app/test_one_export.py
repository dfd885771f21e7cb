"""One export for both front ends (tui/bundle/export.py): `sft-tui export` and the wizard's review
step, given the same choices, write the same bundle byte for byte (the time it was written aside),
and neither assembles the bundle itself."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

from textual.widgets import Button, Checkbox, Input, Select

from tests.app.test_wizard import gated_app
from tests.support.pilot import settle, text_of, type_dataset

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
BROKEN = REPO / "tests" / "data" / "s2-broken" / "train.jsonl"
ENV = "venv:/opt/venvs/llamafactory"


def bundle_files(run_dir: Path) -> dict[str, bytes]:
    """Every file under the run directory, the time it was written (plan.json's `created`, which
    README.md repeats) replaced by a mark, and the manifest without the two hashes that time changes.
    plan.json also without the simulated step's judgement: the CLI's planning judges a plan on it (here:
    not simulated, and why), the wizard's does not; that is planning, before the export."""
    created = json.loads((run_dir / "plan.json").read_text())["created"]
    files = {}
    for path in sorted(p for p in run_dir.rglob("*") if p.is_file()):
        name = path.relative_to(run_dir).as_posix()
        data = path.read_bytes().replace(created.encode(), b"<created>")
        if name == ".sft-tui-manifest.json":
            manifest = json.loads(data)
            data = json.dumps({k: v for k, v in manifest.items() if k not in ("plan.json", "README.md")}).encode()
        if name == "plan.json":
            spec = json.loads(data)
            estimate = spec["plan"]["estimate"]
            estimate.pop("simulated", None)
            estimate["notes"] = [n for n in estimate["notes"] if not n.startswith("memory: the analytic estimate")]
            data = json.dumps(spec, indent=2, ensure_ascii=False).encode()
        files[name] = data
    return files


async def test_the_cli_and_the_wizard_write_the_same_bundle(tmp_path):
    data = tmp_path / "mine.jsonl"
    shutil.copy(BROKEN, data)  # one row with errors: both drop it into a cleaned copy
    out = tmp_path / "out"
    done = subprocess.run([str(BIN / "sft-tui"), "export", "--hardware", "rtx3060-12g", "--model", "qwen2.5-0.5b",
                           "--dataset", str(data), "--drop-errors", "--env", ENV, "--out", str(out), "--name", "same",
                           "--no-simulate", "--no-history"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    out.rename(tmp_path / "by-cli")  # the same output folder for both: plan.json names it

    app = gated_app(env=ENV)
    async with app.run_test(size=(100, 32)) as pilot:
        await settle(app, pilot)
        app.query_one("#hardware-profile", Select).value = "rtx3060-12g"  # as a user chooses it
        await settle(app, pilot)
        app.go_to("model")
        await settle(app, pilot)
        app.query_one("#model-input", Input).value = "qwen2.5-0.5b"
        await settle(app, pilot)
        await type_dataset(app, pilot, str(data))
        app.query_one("#drop-errors", Checkbox).value = True
        await pilot.pause()
        app.go_to("plan")
        await settle(app, pilot)
        app.go_to("review")
        await settle(app, pilot)
        app.query_one("#out-dir", Input).value = str(out)
        app.query_one("#run-name", Input).value = "same"
        app.query_one("#train-env", Input).value = ENV
        await settle(app, pilot)
        app.query_one("#export", Button).press()
        await settle(app, pilot)
        assert app.state.run_dir == out / "runs" / "same", text_of(app, "#export-result")

    by_cli, by_app = bundle_files(tmp_path / "by-cli" / "runs" / "same"), bundle_files(out / "runs" / "same")
    assert "data/mine.jsonl" in by_app and "plan.json" in by_app
    assert sorted(by_cli) == sorted(by_app)
    for name in by_app:
        assert by_cli[name] == by_app[name], name


def test_neither_front_end_assembles_the_bundle_itself():
    """Making the spec's cleaned copies, the gate before writing, and the write are tui.bundle.export's:
    the CLI and the app call export_bundle/export_spec and only word what it returns."""
    pattern = re.compile(r"\b(write_bundle|with_cleaned_copies)\b")
    found = [f"{path.relative_to(REPO)}: {match.group(1)}"
             for folder in ("tui/cli", "tui/app") for path in sorted((REPO / folder).rglob("*.py"))
             for match in pattern.finditer(path.read_text(encoding="utf-8"))]
    assert found == []
