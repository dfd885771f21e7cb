"""images / videos / audios columns (LLaMA-Factory's DatasetAttr media columns): rows with them
validate in every format, the report counts them, a local file that is not in the dataset's folder
(media_dir's default) or at its absolute path is a warning naming the row, and the dataset_info
entry sft-tui registers declares the media columns the file has."""

from __future__ import annotations

import json
from pathlib import Path

from tests.datasets.test_validate import alpaca, validate_json, write_lines
from tui.datasets.formats import register_entry
from tui.datasets.validate import validate_paths


def _media_folder(tmp_path: Path) -> Path:
    (tmp_path / "img").mkdir()
    (tmp_path / "img" / "cat.png").write_bytes(b"\x89PNG")
    (tmp_path / "clip.mp4").write_bytes(b"\0")
    return tmp_path


def test_alpaca_rows_with_images_validate_and_are_counted(tmp_path):
    folder = _media_folder(tmp_path)
    rows = [alpaca(0, images=["img/cat.png"]), alpaca(1, images=["https://example.org/dog.png"]),
            alpaca(2, videos=["clip.mp4"]), alpaca(3, images=[str(folder / "img" / "cat.png")]), alpaca(4)]
    code, out = validate_json(write_lines(folder / "data.jsonl", rows))
    (f,) = out["files"]
    assert code == 0 and f["problem_count"] == 0, f["problems"]
    assert f["valid_rows"] == 5 and f["media_rows"] == {"images": 3, "videos": 1}


def test_a_missing_image_is_a_warning_naming_the_row(tmp_path):
    folder = _media_folder(tmp_path)
    rows = [alpaca(0, images=["img/cat.png"]), alpaca(1, images=["img/cat.png", "img/missing.png"])]
    code, out = validate_json(write_lines(folder / "data.jsonl", rows))
    (f,) = out["files"]
    assert code == 0
    (problem,) = f["problems"]
    assert (problem["line"], problem["field"], problem["kind"], problem["severity"]) == (
        2, "/images/1", "missing_media", "warning")
    assert problem["message"] == f"image 'img/missing.png' not found (looked for in {folder.resolve()})"


def test_a_media_column_of_the_wrong_type_is_a_schema_error(tmp_path):
    code, out = validate_json(write_lines(tmp_path / "data.jsonl", [alpaca(0, images=[5]), alpaca(1)]))
    assert code == 1
    assert [(p["line"], p["kind"]) for p in out["files"][0]["problems"]] == [(1, "schema")]


def test_sharegpt_and_openai_rows_with_images_and_the_entry_registered(tmp_path):
    folder = _media_folder(tmp_path)
    sharegpt = [{"conversations": [{"from": "human", "value": "<image>What is this?"}, {"from": "gpt", "value": "A cat."}],
                 "images": ["img/cat.png"]}]
    openai = [{"messages": [{"role": "user", "content": "<video>What happens?"}, {"role": "assistant", "content": "Rain."}],
               "videos": ["clip.mp4"], "audios": ["gone.wav"]}]
    report = validate_paths([write_lines(folder / "s.jsonl", sharegpt), write_lines(folder / "o.jsonl", openai)], jobs=1)
    s, o = sorted(report.files, key=lambda f: f.path.name)[::-1]
    assert (s.path.name, s.valid_rows, s.media_rows, s.problems) == ("s.jsonl", 1, {"images": 1}, [])
    assert (o.valid_rows, o.media_rows) == (1, {"videos": 1, "audios": 1})
    assert [(p.line, p.field, p.kind) for p in o.problems] == [(1, "/audios/0", "missing_media")]
    assert register_entry(s)["columns"] == {"messages": "conversations", "images": "images"}
    assert register_entry(o)["columns"] == {"messages": "messages", "videos": "videos", "audios": "audios"}
    plain = validate_paths([write_lines(folder / "p.jsonl", [alpaca(0)])], jobs=1).files[0]
    assert "images" not in json.dumps(register_entry(plain))


def test_a_dataset_info_entry_names_its_own_media_column(tmp_path):
    from tui.datasets.formats import spec_from_entry

    spec = spec_from_entry({"formatting": "alpaca", "columns": {"prompt": "q", "response": "a", "images": "pics"}})
    path = write_lines(tmp_path / "data.jsonl", [{"q": "What is it?", "a": "A cat.", "pics": ["gone.png"]},
                                                 {"q": "And this?", "a": "A dog.", "pics": 7}])
    (f,) = validate_paths([path], spec=spec, jobs=1).files
    assert (f.valid_rows, f.media_rows) == (1, {"images": 1})
    assert [(p.line, p.field, p.kind) for p in f.problems] == [(1, "/pics/0", "missing_media"), (2, "/pics", "schema")]
