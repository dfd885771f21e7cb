"""An evaluation whose model generated nothing says so instead of showing bare zeros."""

from __future__ import annotations

from pathlib import Path

from tui.after.evaluate import EvalResult


def test_empty_generations_are_named_and_counted():
    rows = [{"label": "a", "predict": ""}, {"label": "b", "predict": "  \n"}, {"label": "c", "predict": "c"}]
    note = EvalResult(Path("eval"), rows, {"predict_bleu-4": 0.0}).empty_note()
    assert note.startswith("the model generated nothing for 2 of 3 rows, so they score 0")
    assert EvalResult(Path("eval"), rows[2:], {}).empty_note() is None
