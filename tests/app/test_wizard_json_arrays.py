"""The wizard's dataset step with a JSON array (`.json`) that has errors, as LLaMA-Factory's and
FastChat's files are: one broken line makes LLaMA-Factory load none of the file, and the step says
so, where it breaks and how many rows were recovered; dropping the rows with errors lets the wizard
go on and exports a cleaned JSON array of the recovered valid rows."""

from __future__ import annotations

import json

from textual.widgets import Checkbox, Input

from tests.app.test_snapshots import wizard_state
from tests.support.pilot import notes, settle, text_of, type_dataset
from tui.app.main import SftTuiApp

ROWS = 999


def broken_array(path):
    rows = [{"instruction": f"Question number {i}?", "input": "", "output": f"Answer number {i}."} for i in range(ROWS)]
    text = json.dumps(rows, indent=2) + "\n"
    text = text.replace('"output": "Answer number 500."\n  }', '"output": "Answer num')  # row 500 cut off
    path.write_text(text, encoding="utf-8")
    return text[:text.index('"output": "Answer num,')].count("\n") + 1


def app_with_a_model(**changes) -> SftTuiApp:
    from tui.common.profiles import load_profiles
    from tui.models.resolve import resolve_model

    return SftTuiApp(state=wizard_state(model="qwen2.5-0.5b", model_info=resolve_model("qwen2.5-0.5b", load_profiles()),
                                        **changes))


async def test_a_broken_json_array_says_what_llamafactory_loads_and_drops_into_a_cleaned_array(tmp_path):
    data = tmp_path / "mine.json"
    line = broken_array(data)
    before = data.read_bytes()
    app = app_with_a_model(hardware="rtx3060-12g", env="")
    async with app.run_test(size=(100, 32)) as pilot:
        await type_dataset(app, pilot, str(data))
        stats = text_of(app, "#dataset-stats")
        assert "998 valid rows of 999" in stats and "1 error" in stats
        assert "LLaMA-Factory cannot load any of this file" in stats and f"line {line}, column" in stats
        assert "a tolerant read recovers 998 rows" in stats
        assert "recommended cutoff_len 256" in stats and "rows longer" in stats
        drop = app.query_one("#drop-errors", Checkbox)
        assert drop.display
        await pilot.press("ctrl+n")
        await settle(app, pilot)
        assert app.query_one("#steps").active == "dataset"
        assert "only be dropped from JSONL" not in notes(app)
        drop.value = True
        await pilot.pause()
        await pilot.press("ctrl+n")
        await settle(app, pilot)
        assert app.query_one("#steps").active == "plan", notes(app)
        assert "only be dropped from JSONL" not in notes(app)
        app.go_to("review")
        await settle(app, pilot)
        app.query_one("#out-dir", Input).value = str(tmp_path / "out")
        app.query_one("#run-name", Input).value = "cleaned"
        await settle(app, pilot)
        app.query_one("#export").press()
        await settle(app, pilot)
        run_dir = tmp_path / "out" / "runs" / "cleaned"
        assert app.state.run_dir == run_dir, text_of(app, "#export-result")
    kept = json.loads((run_dir / "data" / "mine.json").read_text(encoding="utf-8"))
    assert len(kept) == ROWS - 1 and all("Question number 500?" != row["instruction"] for row in kept)
    assert data.read_bytes() == before


async def test_a_valid_json_array_with_an_error_row_can_be_dropped_too(tmp_path):
    data = tmp_path / "rows.json"
    rows = [{"instruction": f"Q{i}?", "input": "", "output": f"A{i}."} for i in range(10)]
    rows[2] = {"instruction": "no output here"}
    data.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    app = app_with_a_model()
    async with app.run_test(size=(100, 32)) as pilot:
        await type_dataset(app, pilot, str(data))
        assert "9 valid rows of 10" in text_of(app, "#dataset-stats")
        app.query_one("#drop-errors", Checkbox).value = True
        await pilot.pause()
        await pilot.press("ctrl+n")
        await settle(app, pilot)
        assert app.query_one("#steps").active == "plan", notes(app)


async def test_a_registry_in_the_dataset_box_is_named_for_what_it_is(tmp_path):
    info = tmp_path / "dataset_info.json"
    info.write_text(json.dumps({"alpaca_en_demo": {"file_name": "alpaca_en_demo.json"}}), encoding="utf-8")
    app = app_with_a_model()
    async with app.run_test(size=(100, 32)) as pilot:
        await type_dataset(app, pilot, str(info))
        stats = text_of(app, "#dataset-stats")
        assert "LLaMA-Factory's dataset registry" in stats and "alpaca_en_demo" in stats
        assert "valid rows" not in stats
