"""sft-tui's verdicts agree with the real LLaMA-Factory: every row it calls valid (warnings
included) is trained on, and every row it calls an error is one LLaMA-Factory drops."""

from __future__ import annotations

import json
import re

import pytest

from tests.support.llamafactory import tiny_sft_config, train, write_jsonl
from tui.datasets.formats import register_entry
from tui.datasets.validate import validate_paths

pytestmark = pytest.mark.llamafactory


def test_validator_and_llamafactory_agree_row_for_row(tmp_path, tiny_model_dir):
    alpaca_rows = [{"instruction": f"Add {i} and 2.", "input": "", "output": f"{i + 2}"} for i in range(8)]
    alpaca_rows.insert(3, {"instruction": "this row has no output"})  # line 4: error
    alpaca_rows.insert(6, {"instruction": "", "input": "", "output": ""})  # line 7: warning, trained on
    chat_rows = [{"conversations": [{"from": "human", "value": f"Hi {i}"}, {"from": "gpt", "value": f"Hello {i}"}]} for i in range(4)]
    chat_rows.append({"conversations": [{"from": "human", "value": "a"}, {"from": "gpt", "value": "b"}, {"from": "human", "value": "c"}]})
    chat_rows.append({"conversations": [{"from": "gpt", "value": "I speak first"}, {"from": "human", "value": "?"}]})
    openai_rows = [{"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": f"Q{i}"},
                                 {"role": "assistant", "content": f"A{i}"}]} for i in range(3)]
    data = tmp_path / "data"
    data.mkdir()
    alpaca_file = write_jsonl(data / "mix.jsonl", alpaca_rows)
    chat_file = write_jsonl(data / "chat.jsonl", chat_rows)
    openai_file = write_jsonl(data / "oa.jsonl", openai_rows)

    report = validate_paths([alpaca_file, chat_file, openai_file])
    verdicts = {f.path.name: (f.valid_rows, sorted((p.line, p.kind) for p in f.problems if p.severity == "error"))
                for f in report.files}
    assert verdicts == {
        "mix.jsonl": (9, [(4, "schema")]),
        "chat.jsonl": (4, [(5, "message_count"), (6, "role_order")]),
        "oa.jsonl": (3, []),
    }

    # Registered exactly as sft-tui registers files: only the columns the files have.
    mix, chat, oa = report.files
    assert register_entry(mix) == {"formatting": "alpaca", "columns": {"prompt": "instruction", "query": "input", "response": "output"}}
    info = {
        "mix": {"file_name": str(alpaca_file), **register_entry(mix)},
        "chat": {"file_name": str(chat_file), **register_entry(chat)},
        "oa": {"file_name": str(openai_file), **register_entry(oa)},
    }
    (data / "dataset_info.json").write_text(json.dumps(info))
    result = train(tmp_path / "run", tiny_sft_config(tiny_model_dir, data, tmp_path / "run" / "saves",
                                                     dataset="mix,chat,oa", max_steps=1))
    assert result.returncode == 0, result.log[-3000:]
    trained = int(re.search(r"Num examples = (\d+)", result.log).group(1))
    assert trained == sum(f.valid_rows for f in report.files) == 16
    assert "Dropped invalid example" in result.log  # the alpaca row without output
    assert "Invalid message count" in result.log  # chat line 5
    assert "Invalid role tag" in result.log  # chat line 6
