"""Files that are not SFT datasets, named for what they are in one sentence instead of a wall of
row problems: LLaMA-Factory's dataset registry (dataset_info.json), and preference data (DPO's
`chosen`/`rejected` rows, or a registry entry with `"ranking": true`)."""

from __future__ import annotations

from pathlib import Path

import orjson

from tui.datasets.formats import DatasetFileError

REGISTRY_NAME = "dataset_info.json"


# The keys of a dataset_info.json entry that say where its data is (LLaMA-Factory's DatasetAttr).
REGISTRY_SOURCES = ("file_name", "hf_hub_url", "ms_hub_url", "om_hub_url", "script_url", "cloud_file_name")


SHOWN_NAMES = 20


REGISTRY_MAX_BYTES = 16 << 20  # a registry is small: a larger .json of JSON lines is not read whole for this


PREFERENCE = ('preference data (rows with "chosen" and "rejected", for DPO or ORPO), not SFT data: sft-tui plans '
              "supervised fine-tuning, which trains on one response per prompt")


def registry_names(info) -> list[str] | None:
    """The dataset names `info` (a parsed JSON value) registers, if it is a dataset_info.json."""
    if not isinstance(info, dict) or not info or not all(isinstance(v, dict) for v in info.values()):
        return None
    if not any(key in entry for entry in info.values() for key in REGISTRY_SOURCES):
        return None
    return list(info)


def refuse_registry(path: Path, kind: str) -> None:
    """DatasetFileError when `path` is LLaMA-Factory's dataset registry rather than a dataset: a
    file named dataset_info.json, or a JSON object of dataset entries."""
    named = path.name == REGISTRY_NAME
    if not named and not (kind == "jsonl" and path.suffix == ".json" and path.stat().st_size <= REGISTRY_MAX_BYTES):
        return
    try:
        names = registry_names(orjson.loads(path.read_bytes()))
    except (orjson.JSONDecodeError, OSError):
        names = None
    if names is None and not named:
        return
    listed = ""
    if names:
        more = f" and {len(names) - SHOWN_NAMES} more" if len(names) > SHOWN_NAMES else ""
        listed = f" (it registers {', '.join(names[:SHOWN_NAMES])}{more})"
    raise DatasetFileError(f"{path}: is LLaMA-Factory's dataset registry ({REGISTRY_NAME}), not a dataset: name the "
                           f"data files of its entries instead, or validate one entry with "
                           f"`sft-tui validate --dataset-info {path} --name NAME`{listed}")


def refuse_preference(path: Path, head: list) -> None:
    """DatasetFileError when most of a file's first rows are preference rows (chosen and rejected)."""
    rows = [row for row in head if isinstance(row, dict)]
    ranked = sum(1 for row in rows if "chosen" in row and "rejected" in row)
    if rows and ranked * 2 > len(rows):
        raise DatasetFileError(f"{path}: is {PREFERENCE}")


def refuse_ranking_entry(info_path: Path, name: str, entry: dict) -> None:
    if entry.get("ranking"):
        raise DatasetFileError(f'{info_path}: entry {name!r} is marked "ranking": true, so it is {PREFERENCE}')
