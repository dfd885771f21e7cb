"""Tab in the app's path and model boxes completes as a shell does: the common prefix first, the
candidates listed (in the box's bottom border), a second Tab cycling through them, and focus never
leaving the box."""

from __future__ import annotations

from textual.widgets import Input

from tests.app.test_wizard import gated_app
from tests.support.pilot import focus_is, settle


def listed(box) -> str:
    return str(box.border_subtitle or "")


async def test_tab_completes_paths_as_a_shell_does(tmp_path, monkeypatch):
    (tmp_path / "data").mkdir()
    for name in ("train.jsonl", "train_extra.jsonl", "valid.jsonl"):
        (tmp_path / "data" / name).write_text("")
    monkeypatch.chdir(tmp_path)
    app = gated_app()
    async with app.run_test(size=(100, 32)) as pilot:
        app.go_to("dataset")
        await settle(app, pilot)
        box = app.query_one("#dataset-input", Input)
        await focus_is(app, pilot, box)
        await pilot.press(*"./da")
        await settle(app, pilot)
        assert box._suggestion == "./data/"  # the ghost text is exactly what is missing: "ta/"
        await pilot.press("tab")  # one candidate: taken whole
        await settle(app, pilot)
        assert box.value == "./data/" and app.focused is box and listed(box) == ""
        await pilot.press(*"t", "tab")  # two candidates: their common prefix, and both listed
        await settle(app, pilot)
        assert box.value == "./data/train" and app.focused is box
        assert "train.jsonl" in listed(box) and "train_extra.jsonl" in listed(box) and "valid" not in listed(box)
        for expected in ("./data/train.jsonl", "./data/train_extra.jsonl", "./data/train.jsonl"):  # Tab cycles
            await pilot.press("tab")
            await settle(app, pilot)
            assert box.value == expected and app.focused is box
        await pilot.press("backspace")  # typing ends the cycle and the list
        await settle(app, pilot)
        assert listed(box) == "" and box.value == "./data/train.jsonl"[:-1]
        box.value = "./data/"
        box.cursor_position = len(box.value)
        await pilot.press("tab")  # nothing in common past what is typed: the candidates listed, then cycled
        await settle(app, pilot)
        assert box.value == "./data/" and all(n in listed(box) for n in ("train.jsonl", "train_extra.jsonl", "valid.jsonl"))
        await pilot.press("tab")
        await settle(app, pilot)
        assert box.value == "./data/train.jsonl"
        box.value = "./nothing-here"
        await pilot.press("tab")  # nothing to complete: the box keeps the focus
        await settle(app, pilot)
        assert app.focused is box and box.value == "./nothing-here"


async def test_tab_completes_model_ids_in_their_own_spelling(tmp_path):
    app = gated_app(model="")
    async with app.run_test(size=(100, 32)) as pilot:
        app.go_to("model")
        await settle(app, pilot)
        box = app.query_one("#model-input", Input)
        await focus_is(app, pilot, box)
        await pilot.press(*"qwen/qwen2.5-0.5", "tab")
        await settle(app, pilot)
        assert box.value == "Qwen/Qwen2.5-0.5B" and app.focused is box
        assert "Qwen/Qwen2.5-0.5B-Instruct" in listed(box)
        await pilot.press("tab")
        await settle(app, pilot)
        assert box.value == "Qwen/Qwen2.5-0.5B" and app.focused is box  # the first candidate is the prefix itself
        await pilot.press("tab")
        await settle(app, pilot)
        assert box.value == "Qwen/Qwen2.5-0.5B-Instruct" and app.focused is box
