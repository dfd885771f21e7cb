"""Files that are not SFT datasets get one sentence saying what they are, not a wall of schema
errors: LLaMA-Factory's dataset registry (dataset_info.json), and preference data (DPO's
`chosen`/`rejected`). Exit status 2, as for every file validate cannot use."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tui.datasets.validate import validate_paths

BIN = Path(sys.executable).parent


def run_validate(*args, cwd=None):
    return subprocess.run([str(BIN / "sft-tui"), "validate", *map(str, args)], capture_output=True, text=True,
                          timeout=120, cwd=cwd, check=False)


def registry(path: Path) -> Path:
    """A dataset_info.json as LLaMA-Factory ships one: local files, a hub dataset, columns, ranking."""
    info = {
        "alpaca_en_demo": {"file_name": "alpaca_en_demo.json"},
        "glaive_toolcall_en_demo": {"file_name": "glaive_toolcall_en_demo.json", "formatting": "sharegpt",
                                    "columns": {"messages": "conversations", "tools": "tools"}},
        "dpo_en_demo": {"file_name": "dpo_en_demo.json", "ranking": True, "formatting": "sharegpt",
                        "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"}},
        "alpaca_gpt4_en": {"hf_hub_url": "llamafactory/alpaca_gpt4_en", "ms_hub_url": "llamafactory/alpaca_gpt4_en"},
    }
    path.write_text(json.dumps(info, indent=2), encoding="utf-8")
    return path


def only_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, text
    return lines[0]


def test_dataset_info_json_is_named_the_registry_with_its_names_and_the_flags(tmp_path):
    path = registry(tmp_path / "dataset_info.json")
    done = run_validate(path)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    said = only_line(done.stderr)
    assert "LLaMA-Factory's dataset registry" in said and "not a dataset" in said
    assert f"--dataset-info {path} --name NAME" in said
    assert "alpaca_en_demo, glaive_toolcall_en_demo, dpo_en_demo, alpaca_gpt4_en" in said
    assert "error (" not in done.stdout  # no row-by-row problems


def test_a_registry_under_another_name_is_recognised_by_its_entries(tmp_path):
    path = registry(tmp_path / "my_datasets.json")
    report = validate_paths([path])
    assert not report.files and "LLaMA-Factory's dataset registry" in report.file_errors[0]


def test_a_directory_with_its_registry_validates_the_data_files_only(tmp_path):
    registry(tmp_path / "dataset_info.json")
    rows = [{"instruction": f"Q{i}?", "input": "", "output": f"A{i}."} for i in range(5)]
    (tmp_path / "alpaca_en_demo.json").write_text(json.dumps(rows, indent=2), encoding="utf-8")
    report = validate_paths([tmp_path])
    assert [f.path.name for f in report.files] == ["alpaca_en_demo.json"] and not report.file_errors


def test_alpaca_preference_rows_are_named_preference_data(tmp_path):
    rows = [{"instruction": f"Q{i}?", "input": "", "chosen": f"Good {i}.", "rejected": f"Bad {i}."} for i in range(20)]
    path = tmp_path / "dpo.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    done = run_validate(path)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    said = only_line(done.stderr)
    assert "preference data" in said and '"chosen"' in said and '"rejected"' in said
    assert "not SFT data" in said and "sft-tui plans supervised fine-tuning" in said
    assert "error (" not in done.stdout


def test_sharegpt_preference_rows_are_named_preference_data(tmp_path):
    rows = [{"conversations": [{"from": "human", "value": f"Q{i}?"}],
             "chosen": {"from": "gpt", "value": f"Good {i}."}, "rejected": {"from": "gpt", "value": f"Bad {i}."}}
            for i in range(20)]
    path = tmp_path / "dpo_en_demo.json"
    path.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    report = validate_paths([path])
    assert not report.files and "preference data" in report.file_errors[0]
    done = run_validate(path, "--json")
    assert done.returncode == 2 and json.loads(done.stdout)["files"] == []
    assert "not SFT data" in only_line(done.stderr)


def test_a_ranking_entry_of_the_registry_is_named_preference_data(tmp_path):
    info = registry(tmp_path / "dataset_info.json")
    rows = [{"conversations": [{"from": "human", "value": "Q?"}], "chosen": {"from": "gpt", "value": "A"},
             "rejected": {"from": "gpt", "value": "B"}}]
    (tmp_path / "dpo_en_demo.json").write_text(json.dumps(rows), encoding="utf-8")
    done = run_validate("--dataset-info", info, "--name", "dpo_en_demo")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    said = only_line(done.stderr)
    assert "preference data" in said and "not SFT data" in said


def test_a_few_rows_with_chosen_among_sft_rows_stay_row_problems(tmp_path):
    rows = [{"instruction": f"Q{i}?", "input": "", "output": f"A{i}."} for i in range(20)]
    rows[3] = {"instruction": "Q?", "chosen": "a", "rejected": "b"}
    path = tmp_path / "mostly.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    report = validate_paths([path])
    assert not report.file_errors and report.files[0].valid_rows == 19
