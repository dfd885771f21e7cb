"""`sft-tui validate`: formats, every problem kind at known lines, file-level failures,
dataset_info columns, split directories, statistics. Run through the real CLI where the
contract is the CLI's (exit status, text lines, JSON), and through the core elsewhere."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tui.datasets.report import PROBLEM_KINDS
from tui.datasets.validate import validate_paths

BIN = Path(sys.executable).parent


def run_validate(*args, env=None):
    return subprocess.run([str(BIN / "sft-tui"), "validate", *map(str, args)], capture_output=True, text=True,
                          timeout=120, env=env)


def validate_json(*args):
    done = run_validate(*args, "--json")
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, json.loads(done.stdout)


def write_lines(path: Path, lines: list, newline="\n", bom=False) -> Path:
    text = newline.join(line if isinstance(line, str) else json.dumps(line, ensure_ascii=False) for line in lines) + newline
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8"))
    return path


def alpaca(i, **extra):
    return {"instruction": f"Question number {i}?", "input": "", "output": f"Answer number {i}.", **extra}


def problems_of(report_json, file_index=0):
    return [(p["line"], p["field"], p["kind"], p["severity"]) for p in report_json["files"][file_index]["problems"]]


# --- valid files in each format -------------------------------------------------------------------


def test_valid_alpaca_with_extra_keys_exits_0(tmp_path):
    path = write_lines(tmp_path / "data.jsonl", [alpaca(i, metadata={"source": "gen", "i": i}) for i in range(20)])
    code, out = validate_json(path)
    assert code == 0
    (f,) = out["files"]
    assert (f["format"], f["format_source"], f["rows"], f["valid_rows"], f["problem_count"]) == (
        "alpaca", "detected from the first rows", 20, 20, 0)
    assert out["stats"]["lengths"]["unit"] == "approx_tokens"
    assert out["recommended_cutoff_len"] == 256


def test_valid_sharegpt_and_openai(tmp_path):
    sharegpt = write_lines(tmp_path / "chat.jsonl", [
        {"conversations": [{"from": "system", "value": "Be brief."}, {"from": "human", "value": "Hi"},
                           {"from": "gpt", "value": "Hello"}, {"from": "human", "value": "Weather?"},
                           {"from": "function_call", "value": "{\"name\": \"weather\"}"},
                           {"from": "observation", "value": "sunny"}, {"from": "gpt", "value": "Sunny."}]},
        {"conversations": [{"from": "human", "value": "2+2?"}, {"from": "gpt", "value": "4"}], "system": "math"},
    ])
    openai = write_lines(tmp_path / "oa.jsonl", [
        {"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                      {"role": "assistant", "content": "Hello"}]},
        # consecutive tool results merge into one observation turn, as LLaMA-Factory does
        {"messages": [{"role": "user", "content": "Weather in two cities?"}, {"role": "assistant", "content": "Checking."},
                      {"role": "tool", "content": "Paris: sunny"}, {"role": "tool", "content": "Rome: rain"},
                      {"role": "assistant", "content": "Sunny and rainy."}]},
    ])
    code, out = validate_json(sharegpt, openai)
    assert code == 0, out
    assert [(f["format"], f["valid_rows"]) for f in out["files"]] == [("sharegpt", 2), ("openai", 2)]


# --- problems at known lines ----------------------------------------------------------------------


def test_every_alpaca_problem_kind_at_its_line_with_bom_and_crlf(tmp_path):
    lines = [alpaca(i) for i in range(1, 13)]
    lines[1] = '{"instruction": "broken", "output": "x"'  # line 2
    lines[2] = {"instruction": "no output here"}  # line 3
    lines[3] = {"instruction": "q", "input": 7, "output": "a"}  # line 4
    lines[4] = {"instruction": "", "input": "", "output": ""}  # line 5
    lines[5] = {"instruction": "Explain", "input": "", "output": "   "}  # line 6
    lines[6] = {"instruction": " ", "input": "", "output": "an answer"}  # line 7
    lines[7] = alpaca(1)  # line 8: duplicate of line 1
    lines[8] = {"instruction": "Question number 1?", "input": "", "output": "Another answer."}  # line 9: conflict
    lines[9] = {"conversations": [{"from": "human", "value": "a"}, {"from": "gpt", "value": "b"}]}  # line 10
    lines[10] = "[1, 2]"  # line 11
    lines[11] = {"instruction": "h", "output": "o", "history": [["only one"]]}  # line 12
    path = write_lines(tmp_path / "data.jsonl", lines, newline="\r\n", bom=True)
    raw = path.read_bytes()
    path.write_bytes(raw + b'{"instruction": "bad \xff byte", "output": "x"}\r\n')  # line 13

    code, out = validate_json(path)
    assert code == 1
    got = problems_of(out)
    assert (2, "", "invalid_json", "error") in got
    assert (3, "", "schema", "error") in got
    assert (4, "/input", "schema", "error") in got
    assert (5, "", "empty_row", "warning") in got
    assert (6, "/output", "empty_response", "warning") in got
    assert (7, "/instruction", "empty_prompt", "warning") in got
    assert (8, "", "duplicate", "warning") in got
    assert (9, "", "conflict", "warning") in got
    assert (10, "", "mixed_format", "error") in got
    assert (11, "", "not_an_object", "error") in got
    assert (12, "/history/0", "schema", "error") in got
    assert (13, "", "invalid_utf8", "error") in got
    f = out["files"][0]
    assert f["rows"] == 13 and f["valid_rows"] == 6  # lines 1, 5, 6, 7, 8, 9
    messages = {p["line"]: p["message"] for p in f["problems"]}
    assert messages[8] == "same prompt and response as line 1"
    assert messages[9] == "same prompt as line 1 with a different response"


def test_text_output_is_path_line_field_message(tmp_path):
    path = write_lines(tmp_path / "d.jsonl", [alpaca(1), {"instruction": "q", "input": 7, "output": "a"}])
    done = run_validate(path)
    assert done.returncode == 1
    first = done.stdout.splitlines()[0]
    assert first == f"{path}:2: /input: error (schema): 7 is not of type \"string\""
    assert "Recommended cutoff_len: 256" in done.stdout


def test_conversation_problems_in_a_json_array(tmp_path):
    rows = [
        {"conversations": [{"from": "human", "value": "a"}, {"from": "gpt", "value": "b"}]},
        {"conversations": [{"from": "human", "value": "a"}, {"from": "gpt", "value": "b"}, {"from": "human", "value": "c"}]},
        {"conversations": [{"from": "gpt", "value": "I start"}, {"from": "human", "value": "?"}]},
        {"conversations": [{"from": "human", "value": "a"}, {"from": "system", "value": "late"}]},
        {"conversations": [{"from": "human", "value": "x"}, {"from": "bot", "value": "y"}]},
        {"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": ""}]},
        {"conversations": [{"from": "system", "value": "only a system turn"}]},
    ]
    path = tmp_path / "chat.json"
    path.write_text(json.dumps(rows, indent=2))
    code, out = validate_json(path)
    assert code == 1
    # where each row starts in the indented file: its "  {" line
    starts = [n for n, text in enumerate(path.read_text().splitlines(), 1) if text == "  {"]
    assert len(starts) == len(rows)
    got = problems_of(out)
    assert (starts[1], "/conversations", "message_count", "error") in got
    assert (starts[2], "/conversations/0/from", "role_order", "error") in got
    assert (starts[5], "/conversations/1/value", "empty_response", "warning") in got
    assert (starts[6], "/conversations", "message_count", "error") in got
    assert any(p[1:] == ("/conversations/0/from", "role_order", "error") for p in got)
    assert any(p[1:] == ("/conversations/1/from", "role_order", "error") for p in got)
    assert any(p[1:] == ("/conversations/1/from", "schema", "error") for p in got)
    assert any(p[1:] == ("/conversations/1/value", "empty_response", "warning") for p in got)
    lines = [p[0] for p in got]
    assert lines == sorted(lines) and all(isinstance(n, int) for n in lines)
    role = next(p for p in out["files"][0]["problems"] if p["field"] == "/conversations/1/from" and p["kind"] == "role_order")
    assert role["message"] == "turn 1 is 'system'; a system message is only allowed as the first turn"
    assert out["files"][0]["valid_rows"] == 2


def test_a_file_mixing_formats_is_an_error(tmp_path):
    rows = [alpaca(i) for i in range(5)] + [{"messages": [{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}]}]
    code, out = validate_json(write_lines(tmp_path / "m.jsonl", rows))
    assert code == 1 and problems_of(out) == [(6, "", "mixed_format", "error")]


def test_overlong_line_warning_and_error_cap(tmp_path):
    rows = [alpaca(i) for i in range(3)] + [{"instruction": "q", "input": 1, "output": "a"}] * 150
    path = write_lines(tmp_path / "d.jsonl", rows)
    report = validate_paths([path], max_line_bytes=50, max_errors=10)
    (f,) = report.files
    assert len(f.problems) == 10
    assert f.counts["schema"] == 150 and f.counts["line_too_long"] == 3
    assert f.problem_count == 153
    done = run_validate(path, "--max-errors", "5")
    assert "145 more problems not listed (--max-errors)" in done.stdout


def test_the_cap_keeps_the_first_problems_by_line(tmp_path):
    """Schema errors are found as rows are parsed, empty texts a batch of rows later: the
    listed problems must still be the first ones by line."""
    rows = [{"instruction": f"q{i}", "output": ""} if i % 2 else {"instruction": f"q{i}"} for i in range(1, 41)]
    path = write_lines(tmp_path / "d.jsonl", rows)
    (f,) = validate_paths([path], max_errors=5).files
    assert [(p.line, p.kind) for p in f.problems] == [
        (1, "empty_response"), (2, "schema"), (3, "empty_response"), (4, "schema"), (5, "empty_response")]
    assert f.problem_count == 40


# --- custom columns from a dataset_info.json entry ------------------------------------------------


def test_dataset_info_entry_with_custom_columns_and_tags(tmp_path):
    write_lines(tmp_path / "qa.jsonl", [
        {"question": "What is 2+2?", "answer": "4"},
        {"question": "Missing answer"},
        {"question": "", "answer": ""},
    ])
    write_lines(tmp_path / "chat.jsonl", [
        {"dialog": [{"speaker": "me", "text": "hi"}, {"speaker": "bot", "text": "hello"}]},
        {"dialog": [{"speaker": "me", "text": "hi"}, {"speaker": "robot", "text": "hello"}]},
        {"dialog": [{"speaker": "bot", "text": "hi"}, {"speaker": "me", "text": "hello"}]},
    ])
    info = tmp_path / "dataset_info.json"
    info.write_text(json.dumps({
        "qa": {"file_name": "qa.jsonl", "columns": {"prompt": "question", "response": "answer"}},
        "chat": {"file_name": "chat.jsonl", "formatting": "sharegpt", "columns": {"messages": "dialog"},
                 "tags": {"role_tag": "speaker", "content_tag": "text", "user_tag": "me", "assistant_tag": "bot"}},
    }))
    before = info.read_bytes()
    code, out = validate_json("--dataset-info", info, "--name", "qa")
    assert code == 1
    assert out["files"][0]["format_source"] == "dataset_info entry"
    assert problems_of(out) == [(2, "", "schema", "error"), (3, "", "empty_row", "warning")]
    assert '"answer" is a required property' in out["files"][0]["problems"][0]["message"]

    code, out = validate_json("--dataset-info", info, "--name", "chat")
    assert code == 1
    got = problems_of(out)
    assert got == [(2, "/dialog/1/speaker", "schema", "error"), (3, "/dialog/0/speaker", "role_order", "error")]
    assert out["files"][0]["problems"][0]["message"] == "'robot' is not one of the entry's role tags ('me', 'bot')"
    assert info.read_bytes() == before  # read-only

    done = run_validate("--dataset-info", info, "--name", "nope")
    assert done.returncode == 2 and "no dataset named 'nope' (it has: chat, qa)" in done.stderr


# --- the S2 split directory -----------------------------------------------------------------------


def test_split_directory_reports_split_sizes_and_leaks(tmp_path):
    s2 = tmp_path / "s2"
    s2.mkdir()
    meta = {"metadata": {"difficulty": "easy"}}
    write_lines(s2 / "train.jsonl", [alpaca(i, **meta) for i in range(29)])
    write_lines(s2 / "val.jsonl", [alpaca(100, **meta)])
    write_lines(s2 / "test.jsonl", [alpaca(3, **meta)])  # also in train: a leak
    (s2 / "notes.txt").write_text("not data")
    code, out = validate_json(s2)
    assert code == 0  # a duplicate is a warning
    assert out["stats"]["splits"] == {"test": 1, "train": 29, "val": 1}
    assert [Path(f["path"]).name for f in out["files"]] == ["test.jsonl", "train.jsonl", "val.jsonl"]
    # test.jsonl is validated first, so train.jsonl's copy is the one reported
    train = out["files"][1]
    assert train["problems"][0]["kind"] == "duplicate"
    assert train["problems"][0]["message"].endswith("test.jsonl:1")


# --- statistics -------------------------------------------------------------------------------------


def test_recommended_cutoff_covers_p99(tmp_path):
    short = [{"instruction": f"q{i:03d}", "output": "x" * 700} for i in range(198)]  # 4 + 700 bytes: 202 tokens
    long = [{"instruction": f"long{i}", "output": "y" * 10_500} for i in range(2)]  # 5 + 10500 bytes: 3002 tokens
    code, out = validate_json(write_lines(tmp_path / "d.jsonl", short + long))
    assert code == 0
    cutoff = out["stats"]["cutoff"]
    # p99 of 200 rows is the 198th: a short row, so 256 covers it and truncates the 2 long ones
    assert cutoff == {"cutoff_len": 256, "covers": "p99 of rows", "rows_truncated": 2, "rows_truncated_at_default_2048": 2}
    row = out["stats"]["lengths"]["row"]
    assert row["p50"] == row["p99"] and row["max"] == 3002

    code, out = validate_json(write_lines(tmp_path / "e.jsonl", short[:90] + long * 5))
    assert out["stats"]["cutoff"]["cutoff_len"] == 3072  # p99 is a long row: 3002 -> 3072


def test_exact_token_counts_with_a_local_tokenizer(tmp_path, tiny_model_dir):
    path = write_lines(tmp_path / "d.jsonl", [{"instruction": "hello world", "output": "The quick brown fox"}] * 3
                       + [{"instruction": "Explain", "output": "def add(a, b):\n    return a + b\n"}])
    code, out = validate_json(path, "--tokenizer", tiny_model_dir)
    assert code == 0
    lengths = out["stats"]["lengths"]
    assert lengths["unit"] == "tokens" and lengths["method"] == f"tokenizer {tiny_model_dir / 'tokenizer.json'}"
    assert lengths["rows_measured"] == 4
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tiny_model_dir / "tokenizer.json"))
    response = len(tok.encode("The quick brown fox", add_special_tokens=False).ids)
    assert lengths["response"]["p50"] == response
    done = run_validate(path, "--tokenizer", tmp_path)
    assert done.returncode == 2 and "no tokenizer.json there" in done.stderr


# --- file-level failures: one sentence, exit 2, no traceback -------------------------------------


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda d: d / "missing.jsonl", "missing.jsonl: no such file or directory"),
        (lambda d: (d / "empty_dir").mkdir() or d / "empty_dir", "empty_dir: no .jsonl or .json files in this directory"),
        (lambda d: (d / "empty.jsonl").write_text("") and d / "empty.jsonl" or d / "empty.jsonl", "empty.jsonl: the file is empty"),
        (lambda d: (d / "model.bin").write_bytes(b"\x00\x01\x02binary") and d / "model.bin", "model.bin: is a binary file, not JSON or JSON lines"),
        (lambda d: (d / "notes.jsonl").write_text("hello") and d / "notes.jsonl", "notes.jsonl: is not JSON lines or a JSON array"),
    ],
)
def test_unreadable_inputs(tmp_path, make, expected):
    path = make(tmp_path)
    done = run_validate(path)
    assert done.returncode == 2
    assert expected in done.stderr and "Traceback" not in done.stderr


def test_permission_denied(tmp_path):
    path = write_lines(tmp_path / "secret.jsonl", [alpaca(1)])
    path.chmod(0)
    argv = [str(BIN / "sft-tui"), "validate", str(path)]
    if os.geteuid() == 0:  # root reads anything: drop the capabilities that let it
        argv = ["setpriv", "--bounding-set=-dac_override,-dac_read_search", *argv]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == f"sft-tui: {path}: permission denied"


def test_a_bad_file_does_not_hide_the_good_ones(tmp_path):
    good = write_lines(tmp_path / "good.jsonl", [alpaca(1)])
    code, out = validate_json(good, tmp_path / "gone.jsonl")
    assert code == 2 and out["files"][0]["valid_rows"] == 1
    assert out["file_errors"] == [f"{tmp_path / 'gone.jsonl'}: no such file or directory"]


def test_ctrl_c_is_a_word_not_a_traceback(tmp_path):
    fifo = tmp_path / "never-written.jsonl"
    os.mkfifo(fifo)  # reading it waits forever: validate is busy when Ctrl-C comes
    proc = subprocess.Popen([str(BIN / "sft-tui"), "validate", str(fifo)], stderr=subprocess.PIPE, text=True)
    time.sleep(2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert (proc.returncode, err) == (130, "sft-tui: interrupted\n")


def test_every_problem_kind_has_a_severity():
    assert {s for s, _ in PROBLEM_KINDS.values()} == {"error", "warning"}


def test_progress_is_reported(tmp_path):
    path = write_lines(tmp_path / "d.jsonl", [alpaca(i) for i in range(1000)])
    seen = []
    validate_paths([path], progress=lambda rows, done, total: seen.append((rows, done, total)))
    assert seen and seen[-1][1] == seen[-1][2] == path.stat().st_size


def test_exact_token_lengths_reach_the_planner(tiny_model_dir, tmp_path):
    """Exact counts are batched for the tokenizer; the planner must see them all (a read flushes)."""
    from tests.support.llamafactory import SAMPLE_ALPACA_ROWS, write_jsonl
    from tui.plan.values import DataFacts

    data = write_jsonl(tmp_path / "rows.jsonl", SAMPLE_ALPACA_ROWS)
    facts = DataFacts.from_report(validate_paths([data], tokenizer_dir=tiny_model_dir))
    assert facts.exact_tokens and facts.train_rows == 16
    assert facts.row_tokens_max and facts.row_tokens_max > 10 and facts.recommended_cutoff == 256
