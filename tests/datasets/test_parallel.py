"""The parallel validator: a large JSONL file is cut into byte ranges checked by worker
processes, and the merged report must be the one a single process makes (line numbers, the
max-errors cap, duplicates and conflicts across ranges and files, lengths). The size limits
are made tiny here so that a small file spans many ranges."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from itertools import pairwise
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tui.datasets.parallel as parallel
import tui.datasets.validate as validate
from tests.datasets.test_validate import alpaca, write_lines
from tui.datasets.formats import spec_from_entry
from tui.datasets.reading import jsonl_chunks, line_ranges
from tui.datasets.repeats import text_key
from tui.datasets.validate import validate_paths


@pytest.fixture
def tiny_ranges(monkeypatch):
    """Every file goes to workers, in ranges of about 700 bytes; returns the task counts of each
    parallel run, so a test can tell the parallel path ran."""
    monkeypatch.setattr(parallel, "PARALLEL_MIN_BYTES", 0)
    monkeypatch.setattr(parallel, "RANGE_BYTES", 700)
    runs = []
    workers = parallel.Workers

    def counting(tasks, jobs):
        runs.append(len(tasks))
        return workers(tasks, jobs)

    monkeypatch.setattr(parallel, "Workers", counting)
    return runs


def problem_file(path: Path) -> Path:
    """300 lines, CRLF, a BOM, and a problem of every JSONL kind at a known line."""
    lines = [alpaca(i, input="ein Beispiel, 例子" if i % 7 == 0 else "") for i in range(1, 301)]
    lines[9] = '{"instruction": "broken", "output": "x"'  # line 10
    lines[49] = {"instruction": "no output"}  # line 50
    lines[79] = {"instruction": "", "input": "", "output": ""}  # line 80
    lines[119] = {"instruction": "Explain", "output": " \n "}  # line 120
    lines[149] = ""  # line 150: blank
    lines[179] = alpaca(3)  # line 180: duplicate of line 3
    lines[209] = {"instruction": "Question number 4?", "input": "", "output": "Not the same."}  # 210: conflict with 4
    lines[239] = {"conversations": [{"from": "human", "value": "a"}, {"from": "gpt", "value": "b"}]}  # line 240
    lines[259] = alpaca(260, system="Be brief.", history=[["Hi", "Hello"]])  # line 260
    lines[289] = alpaca(3, system="Be brief.")  # line 290: another prompt than line 3's
    return write_lines(path, lines, newline="\r\n", bom=True)


def test_workers_make_the_report_one_process_makes(tmp_path, tiny_ranges):
    path = problem_file(tmp_path / "data.jsonl")
    for max_errors in (100, 4):
        one = validate_paths([path], jobs=1, max_errors=max_errors).to_json()
        assert not tiny_ranges  # jobs=1 never starts a worker
        for jobs in (2, 3):
            assert validate_paths([path], jobs=jobs, max_errors=max_errors).to_json() == one
        assert tiny_ranges and min(tiny_ranges) > 20  # the file was cut into many ranges
        tiny_ranges.clear()

    report = validate_paths([path], jobs=2).to_json()
    (f,) = report["files"]
    assert (f["rows"], f["valid_rows"]) == (299, 296)
    got = {(p["line"], p["kind"]): p["message"] for p in f["problems"]}
    assert set(got) == {(10, "invalid_json"), (50, "schema"), (80, "empty_row"), (120, "empty_response"),
                        (180, "duplicate"), (210, "conflict"), (240, "mixed_format")}
    assert got[(10, "invalid_json")] == "not valid JSON: unexpected end of data (column 40)"  # not past the CRLF
    assert got[(180, "duplicate")] == "same prompt and response as line 3"
    assert got[(210, "conflict")] == "same prompt as line 4 with a different response"
    assert report["stats"]["lengths"]["rows_measured"] == 296


def test_conversations_with_an_entry_s_own_names_in_workers(tmp_path, tiny_ranges):
    entry = {"formatting": "sharegpt", "columns": {"messages": "turns"},
             "tags": {"role_tag": "who", "content_tag": "text", "user_tag": "me", "assistant_tag": "bot"}}
    turns = [[{"who": "me", "text": f"q{i}"}, {"who": "bot", "text": f"a{i}"}] for i in range(1, 201)]
    turns[59] = turns[59][:1]  # line 60: ends with the user
    turns[99] = [{"who": "bot", "text": "hi"}, {"who": "me", "text": "q"}]  # line 100: starts with the bot
    turns[149] = turns[4]  # line 150: duplicate of line 5
    path = write_lines(tmp_path / "chat.jsonl", [{"turns": t} for t in turns])
    spec = spec_from_entry(entry)
    one = validate_paths([path], spec=spec, jobs=1).to_json()
    assert validate_paths([path], spec=spec, jobs=2).to_json() == one and tiny_ranges
    assert [(p["line"], p["field"], p["kind"]) for p in one["files"][0]["problems"]] == [
        (60, "/turns", "message_count"), (100, "/turns/0/who", "role_order"), (150, "", "duplicate")]


def test_a_cap_of_problems_keeps_the_first_ones(tmp_path, tiny_ranges):
    lines = [alpaca(i) if i % 10 else {"instruction": f"q{i}"} for i in range(1, 401)]
    path = write_lines(tmp_path / "data.jsonl", lines)
    f = validate_paths([path], jobs=2, max_errors=7).to_json()["files"][0]
    assert [p["line"] for p in f["problems"]] == [10, 20, 30, 40, 50, 60, 70]
    assert f["problem_count"] == 40


def test_repeats_across_a_parallel_file_and_a_small_one(tmp_path, monkeypatch, tiny_ranges):
    """Workers and this process must agree on row keys, or a repeat across files is missed."""
    big = write_lines(tmp_path / "train.jsonl", [alpaca(i) for i in range(1, 201)])
    small = write_lines(tmp_path / "val.jsonl", [alpaca(1000), alpaca(40)])
    monkeypatch.setattr(parallel, "PARALLEL_MIN_BYTES", big.stat().st_size)  # the small file stays here
    report = validate_paths([big, small], jobs=2).to_json()
    assert tiny_ranges
    assert [(p["line"], p["kind"], p["message"]) for p in report["files"][1]["problems"]] == [
        (2, "duplicate", f"same prompt and response as {big}:40")]


def test_a_failing_worker_is_an_error_not_a_hang(tmp_path, monkeypatch, tiny_ranges):
    monkeypatch.setattr(parallel, "_WORKER_CODE", "import sys; sys.exit('worker broke')")
    path = write_lines(tmp_path / "data.jsonl", [alpaca(i) for i in range(300)])
    with pytest.raises(RuntimeError, match="^a validation worker failed: worker broke$"):
        validate_paths([path], jobs=2)


def test_this_process_works_too_and_a_slow_worker_does_fewer_tasks(tmp_path, monkeypatch, tiny_ranges):
    """The worker sleeps 0.2 s before it starts: this process does the tasks meanwhile."""
    slow = "import time; time.sleep(0.2); " + parallel._WORKER_CODE
    monkeypatch.setattr(parallel, "_WORKER_CODE", slow)
    done_here = []
    validate_range = parallel.validate_range
    monkeypatch.setattr(parallel, "validate_range", lambda task: done_here.append(task) or validate_range(task))
    path = problem_file(tmp_path / "data.jsonl")
    report = validate_paths([path], jobs=2).to_json()
    assert report == validate_paths([path], jobs=1).to_json()
    assert tiny_ranges[0] > len(done_here) > tiny_ranges[0] // 2


def test_a_script_without_a_main_guard_can_validate_in_parallel(tmp_path):
    """multiprocessing's spawn and forkserver run the caller's script again in each worker: a
    script without `if __name__ == "__main__"` would start workers without end."""
    data = write_lines(tmp_path / "data.jsonl", [alpaca(i) for i in range(300)])
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(f"""
        from pathlib import Path
        import tui.datasets.parallel
        from tui.datasets.validate import validate_paths
        tui.datasets.parallel.PARALLEL_MIN_BYTES, tui.datasets.parallel.RANGE_BYTES = 0, 1000
        report = validate_paths([Path({str(data)!r})], jobs=2)
        print(report.files[0].valid_rows)
    """))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert (done.returncode, done.stdout.strip()) == (0, "300"), done.stderr


def test_text_keys_are_the_same_in_every_process():
    code = "from tui.datasets.repeats import text_key; print(text_key(['Question?', '', 'Answer.']))"
    keys = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60,
                           env={**os.environ, "PYTHONHASHSEED": seed}).stdout.strip() for seed in ("1", "2")}
    assert keys == {str(text_key(["Question?", "", "Answer."]))}
    assert text_key(["ab", ""]) != text_key(["a", "b"])


@settings(max_examples=60, deadline=None)
@given(lengths=st.lists(st.integers(min_value=0, max_value=40), min_size=1, max_size=60),
       final_newline=st.booleans(), size=st.integers(min_value=1, max_value=120))
def test_ranges_hold_whole_lines_and_read_back_the_file(tmp_path_factory, lengths, final_newline, size):
    text = b"\n".join(b"x" * n for n in lengths) + (b"\n" if final_newline else b"")
    path = tmp_path_factory.mktemp("ranges") / "data.jsonl"
    path.write_bytes(text)
    ranges = line_ranges(path, size)
    assert ranges[0][0] == 0 and ranges[-1][1] == len(text)
    assert all(end == start for (_, end), (start, _) in pairwise(ranges))
    assert all(text[end - 1:end] == b"\n" for _, end in ranges[:-1])
    read = [b"".join(lines) for start, end in ranges for _, lines in jsonl_chunks(path, None, start, end)]
    assert b"".join(read) == text


def test_json_array_batches_change_nothing(tmp_path, monkeypatch):
    rows = [alpaca(i) for i in range(1, 30)]
    rows[4] = {"instruction": "q"}
    rows[20] = alpaca(2)
    rows[25] = {"instruction": "", "output": ""}
    path = tmp_path / "data.json"
    path.write_text(json.dumps(rows, indent=1))
    whole = validate_paths([path], max_errors=2).to_json()
    monkeypatch.setattr(validate, "ARRAY_BATCH", 3)
    assert validate_paths([path], max_errors=2).to_json() == whole
    assert [p["kind"] for p in whole["files"][0]["problems"]] == ["schema", "duplicate"]
    assert whole["files"][0]["problem_count"] == 3
