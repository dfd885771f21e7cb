"""Dropping the rows with errors into the bundle: each dataset file that has errors is
registered as a cleaned copy inside the run directory (runs/<id>/data/<file>), which
`write_bundle` writes only after its own checks have passed, so a refused export leaves
nothing behind. The user's files are never changed."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

DATA_DIR = "data"


@dataclass(frozen=True)
class CleanedCopy:
    source: Path  # the user's file
    target: Path  # runs/<id>/data/<file>, registered in dataset_info.json


def with_cleaned_copies(spec: dict, report) -> tuple[dict, list[CleanedCopy]]:
    """The spec with every file that has errors registered as its cleaned copy, and the copies
    to write. Pure: nothing is read or written here."""
    with_errors = {str(f.path.resolve()) for f in report.files if f.error_count}
    spec = copy.deepcopy(spec)
    data_dir = Path(spec["paths"]["run_dir"]) / DATA_DIR
    copies, names = [], set()
    for entry_name, entry in spec["datasets"]["entries"].items():
        source = Path(entry["file_name"])
        if str(source) not in with_errors:
            continue
        # Two files may share a name (a/train.jsonl, b/train.jsonl): the entry's name tells them apart.
        name = source.name if source.name not in names else f"{entry_name}-{source.name}"
        names.add(name)
        target = data_dir / name
        entry["file_name"] = str(target)
        copies.append(CleanedCopy(source, target))
    return spec, copies
