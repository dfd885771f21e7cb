"""JSON-array datasets (`.json`, LLaMA-Factory's and FastChat's usual format) that do not load:
one broken line makes LLaMA-Factory load none of the file, so validate says so, where it breaks,
and how many rows a tolerant read (object by object, resyncing at the next row) recovers; the
statistics come from those rows, and dropping the rows with errors writes a cleaned JSON array of
them, as it does for JSONL. Real files on disk, the real CLI, the real LLaMA-Factory."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tui.datasets.cleaning import copy_without_error_rows
from tui.datasets.gate import dataset_refusal
from tui.datasets.validate import validate_paths

BIN = Path(sys.executable).parent
ROWS = 999


def alpaca(i):
    return {"instruction": f"Question number {i}?", "input": "", "output": f"Answer number {i}."}


def chat(i):
    return {"conversations": [{"from": "human", "value": f"Hi {i}"}, {"from": "gpt", "value": f"Hello {i}"}]}


def array_text(rows) -> str:
    return json.dumps(rows, indent=2, ensure_ascii=False) + "\n"


def line_of(text: str, needle: str) -> int:
    return text[:text.index(needle)].count("\n") + 1


def run_validate(*args):
    return subprocess.run([str(BIN / "sft-tui"), "validate", *map(str, args)], capture_output=True, text=True, timeout=120, check=False)


def truncated(tmp_path, broken=500) -> tuple[Path, str]:
    """999 alpaca rows, pretty-printed; row `broken` cut off in its output (as a killed write
    leaves it), so its object never closes."""
    text = array_text([alpaca(i) for i in range(ROWS)])
    text = text.replace(f'"output": "Answer number {broken}."\n  }}', '"output": "Answer num')
    path = tmp_path / "data.json"
    path.write_text(text, encoding="utf-8")
    return path, text


def test_a_truncated_row_says_llamafactory_loads_none_of_the_file_and_recovers_the_rest(tmp_path):
    path, text = truncated(tmp_path)
    where = line_of(text, '"output": "Answer num,')
    done = run_validate(path, "--json")
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr
    out = json.loads(done.stdout)
    (f,) = out["files"]
    assert (f["rows"], f["valid_rows"], f["problems_by_kind"]) == (ROWS, ROWS - 1, {"invalid_json": 1})
    assert f["problems"][0]["line"] == where
    assert "LLaMA-Factory cannot load any of this file" in f["load_error"]
    assert f"line {where}, column " in f["load_error"] and "a tolerant read recovers 998 rows" in f["load_error"]
    assert f["recovered_rows"] == ROWS - 1
    assert "(a string cut off by a line break)" in f["load_error"]
    # statistics and the cutoff come from the recovered rows, not from none
    assert out["stats"]["valid_rows"] == ROWS - 1 and out["stats"]["lengths"]["rows_measured"] == ROWS - 1
    assert out["recommended_cutoff_len"] == 256

    text_out = run_validate(path).stdout
    summary = next(line for line in text_out.splitlines() if line.startswith(f"{path}: alpaca"))
    assert "LLaMA-Factory cannot load any of this file" in summary and f"line {where}" in summary
    assert "998 rows" in summary
    assert f"{path}:{where}: error (invalid_json): " in text_out


def test_a_missing_comma_between_rows_loses_no_row(tmp_path):
    text = array_text([alpaca(i) for i in range(ROWS)])
    cut = text.index('"instruction": "Question number 300?"')
    before = text.rindex("},", 0, cut)
    text = text[:before] + "}" + text[before + 2:]  # "}\n  {": the comma is gone
    path = tmp_path / "data.json"
    path.write_text(text, encoding="utf-8")
    report = validate_paths([path])
    (f,) = report.files
    assert (f.rows, f.valid_rows, f.counts) == (ROWS, ROWS, {"invalid_json": 1})
    assert f.problems[0].line == line_of(text, '"instruction": "Question number 300?"') - 1
    assert "recovers 999 rows" in f.load_error


def test_a_missing_comma_inside_a_row_loses_that_row_only(tmp_path):
    text = array_text([alpaca(i) for i in range(ROWS)])
    text = text.replace('"instruction": "Question number 10?",', '"instruction": "Question number 10?"')
    path = tmp_path / "data.json"
    path.write_text(text, encoding="utf-8")
    (f,) = validate_paths([path]).files
    assert (f.rows, f.valid_rows, f.counts) == (ROWS, ROWS - 1, {"invalid_json": 1})
    assert f.problems[0].line == line_of(text, '"input": "",\n    "output": "Answer number 10."')


def test_the_format_of_a_broken_sharegpt_array_is_still_detected(tmp_path):
    text = array_text([chat(i) for i in range(40)])
    text = text.replace('"value": "Hello 7"', '"value": "Hello 7')  # an unterminated string
    path = tmp_path / "chat.json"
    path.write_text(text, encoding="utf-8")
    (f,) = validate_paths([path]).files
    assert (f.format, f.format_source) == ("sharegpt", "detected from the first rows")
    assert (f.rows, f.valid_rows, f.counts) == (40, 39, {"invalid_json": 1})


def test_a_file_that_ends_inside_a_row_recovers_the_rows_before(tmp_path):
    text = array_text([alpaca(i) for i in range(20)])
    path = tmp_path / "cut.json"
    path.write_text(text[:text.index('"output": "Answer number 19."')], encoding="utf-8")
    (f,) = validate_paths([path]).files
    assert (f.rows, f.valid_rows, f.counts) == (20, 19, {"invalid_json": 1})


def test_a_one_line_array_is_recovered_too(tmp_path):
    rows = [alpaca(i) for i in range(30)]
    text = json.dumps(rows, ensure_ascii=False)
    text = text.replace('"output": "Answer number 12."}', '"output": "Answer number 12."')
    path = tmp_path / "flat.json"
    path.write_text(text, encoding="utf-8")
    (f,) = validate_paths([path]).files
    assert (f.valid_rows, f.counts) == (29, {"invalid_json": 1})


# --- the cleaned copy -------------------------------------------------------------------------------


def test_the_cleaned_copy_of_a_json_array_is_a_json_array_of_the_valid_rows(tmp_path):
    rows = [alpaca(i) for i in range(50)]
    rows[7] = {"instruction": "this row has no output"}  # a schema error: dropped
    rows[9] = {"instruction": "", "input": "", "output": ""}  # a warning: kept
    source = tmp_path / "mine.json"
    source.write_text(array_text(rows), encoding="utf-8")
    before = source.read_bytes()
    report = validate_paths([source])
    assert report.has_errors and dataset_refusal(report, drop_errors=True) is None
    target = tmp_path / "run" / "data" / "mine.json"
    assert copy_without_error_rows(source, target) == 1
    assert json.loads(target.read_text(encoding="utf-8")) == rows[:7] + rows[8:]
    assert source.read_bytes() == before
    (f,) = validate_paths([target]).files
    assert (f.rows, f.valid_rows, f.error_count) == (49, 49, 0)


def test_the_cleaned_copy_of_a_broken_array_holds_the_recovered_rows(tmp_path):
    path, _ = truncated(tmp_path)
    target = tmp_path / "clean.json"
    assert copy_without_error_rows(path, target) == 1
    kept = json.loads(target.read_text(encoding="utf-8"))
    assert kept == [alpaca(i) for i in range(ROWS) if i != 500]


def test_export_drops_the_rows_of_a_broken_json_array_into_a_cleaned_array(tmp_path):
    path, text = truncated(tmp_path)
    plan = ["--hardware", "rtx3060-12g", "--model", "qwen2.5-0.5b", "--dataset", path, "--name", "r"]
    refused = subprocess.run([str(BIN / "sft-tui"), "export", *map(str, plan)], capture_output=True, text=True, check=False,
                             timeout=120, cwd=tmp_path)
    assert refused.returncode == 1 and "LLaMA-Factory cannot load any of this file" in refused.stderr, refused.stderr
    assert "--drop-errors" in refused.stderr and "only be dropped from JSONL" not in refused.stderr
    done = subprocess.run([str(BIN / "sft-tui"), "export", *map(str, plan), "--drop-errors"], capture_output=True,
                          text=True, timeout=120, cwd=tmp_path, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    copy = tmp_path / "runs" / "r" / "data" / "data.json"
    assert len(json.loads(copy.read_text(encoding="utf-8"))) == ROWS - 1
    assert path.read_text(encoding="utf-8") == text


@pytest.mark.llamafactory
def test_llamafactory_trains_on_exactly_the_rows_of_the_cleaned_array(tmp_path, tiny_model_dir):
    from tests.support.llamafactory import tiny_sft_config, train
    from tui.datasets.formats import register_entry

    rows = [{"instruction": f"Add {i} and 2.", "input": "", "output": f"{i + 2}"} for i in range(12)]
    rows.insert(4, {"instruction": "this row has no output"})
    text = array_text(rows).replace('"output": "7"\n  }', '"output": "7')  # row "Add 5" cut off
    source = tmp_path / "mine.json"
    source.write_text(text, encoding="utf-8")
    report = validate_paths([source])
    assert (report.files[0].valid_rows, report.files[0].error_count) == (11, 2)
    data = tmp_path / "data"
    copy = data / "mine.json"
    assert copy_without_error_rows(source, copy) == 2
    info = {"mine": {"file_name": str(copy), **register_entry(report.files[0])}}
    (data / "dataset_info.json").write_text(json.dumps(info))
    result = train(tmp_path / "run", tiny_sft_config(tiny_model_dir, data, tmp_path / "run" / "saves",
                                                     dataset="mine", max_steps=1))
    assert result.returncode == 0, result.log[-3000:]
    assert int(re.search(r"Num examples = (\d+)", result.log).group(1)) == 11
    assert "Dropped invalid example" not in result.log


@pytest.mark.parametrize("indent", [0, 2, None])
def test_resyncing_finds_rows_not_the_messages_inside_them(tmp_path, indent):
    text = json.dumps([chat(i) for i in range(20)], indent=indent).replace('"Hi 5"', '"Hi 5')
    path = tmp_path / "chat.json"
    path.write_text(text, encoding="utf-8")
    (f,) = validate_paths([path]).files
    assert (f.rows, f.valid_rows, f.counts) == (20, 19, {"invalid_json": 1})


def test_two_broken_rows_in_a_row_are_two_rows_lost_and_two_breaks(tmp_path):
    text = array_text([alpaca(i) for i in range(10)])
    text = text.replace('"Answer number 3."', '"Answer number 3.').replace('"Answer number 4."', '"Answer number 4.')
    path = tmp_path / "two.json"
    path.write_text(text, encoding="utf-8")
    (f,) = validate_paths([path]).files
    assert (f.rows, f.valid_rows, f.counts) == (10, 8, {"invalid_json": 2})
    assert [p.line for p in f.problems] == [line_of(text, '"Answer number 3.'), line_of(text, '"Answer number 4.')]
