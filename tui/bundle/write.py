"""Writing a bundle: each file atomically, with a manifest of the hashes written, so a later
export tells files the user edited (never overwritten: the new version goes beside them as
`<file>.sft-tui-new`); and registering datasets into another dataset_info.json."""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tui.bundle.cleaned import CleanedCopy
from tui.bundle.spec import MANIFEST, NEW_SUFFIX, BundleError, render_bundle
from tui.common.files import atomic_write, sha256
from tui.datasets.cleaning import copy_without_error_rows
from tui.datasets.formats import DatasetFileError


class RunDirExists(BundleError):
    """The run directory is there already and the write was not asked to update it (force)."""

    def __init__(self, run_dir: Path):
        super().__init__(f"{run_dir} already exists: choose another --name, or --force to update it "
                         "(files you edited are kept)")
        self.run_dir = run_dir


@dataclass
class WriteResult:
    run_dir: Path
    written: list[str]
    kept: list[str]  # files the user edited: left alone, the new version beside them
    dropped: dict[str, int] = field(default_factory=dict)  # cleaned copy -> rows with errors left out


def write_bundle(spec: dict, force: bool = False, cleaned: Sequence[CleanedCopy] = ()) -> WriteResult:
    """Write the bundle; `cleaned`: the copies without error rows the spec registers
    (tui.bundle.cleaned), written after every check has passed."""
    run_dir = Path(spec["paths"]["run_dir"])
    files = render_bundle(spec)
    manifest_path = run_dir / MANIFEST
    if run_dir.exists() and any(run_dir.iterdir()) and not force:
        raise RunDirExists(run_dir)
    try:
        manifest = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    except ValueError:
        manifest = {}
    dropped = {}
    for copy in cleaned:
        try:
            dropped[str(copy.target)] = copy_without_error_rows(copy.source, copy.target)
        except DatasetFileError as err:
            raise BundleError(str(err)) from None
        except OSError as err:
            raise BundleError(f"{copy.target}: cannot write the copy without the rows with errors ({err.strerror}); "
                              "choose another output folder") from None
    written, kept = [], []
    for name, text in files.items():
        path = run_dir / name
        if path.exists() and manifest.get(name) != sha256(path.read_bytes()) and path.read_text(errors="replace") != text:
            atomic_write(path.with_name(name + NEW_SUFFIX), text)
            kept.append(name)
            continue
        atomic_write(path, text, 0o755 if name.endswith(".sh") else 0o644)
        manifest[name] = sha256(text.encode())
        written.append(name)
    atomic_write(manifest_path, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    Path(spec["paths"]["output_dir"]).mkdir(parents=True, exist_ok=True)
    return WriteResult(run_dir, written, kept, dropped)


def register_into(data_dir: Path, entries: dict, replace: bool = False) -> Path:
    """Merge entries into DIR/dataset_info.json: other entries and their order kept, a name
    clash refused unless `replace`, a .bak copy first, the write atomic. Invalid JSON there is
    reported and the file left untouched."""
    target = data_dir / "dataset_info.json"
    if not data_dir.is_dir():
        raise BundleError(f"--register-into {data_dir}: no such directory")
    info: dict = {}
    if target.exists():
        try:
            info = json.loads(target.read_text(encoding="utf-8"))
        except ValueError as err:
            raise BundleError(f"{target}: not valid JSON ({err}); fix it first, sft-tui leaves it as it is") from None
        if not isinstance(info, dict):
            raise BundleError(f"{target}: not a JSON object of dataset entries; sft-tui leaves it as it is")
        clashes = sorted(set(entries) & set(info))
        if clashes and not replace:
            raise BundleError(f"{target} already has {', '.join(clashes)}: --replace to overwrite, or rename your dataset")
        shutil.copy2(target, target.with_name("dataset_info.json.bak"))
    merged = dict(info)
    merged.update(entries)  # an existing key keeps its place
    atomic_write(target, json.dumps(merged, indent=2, ensure_ascii=False) + "\n")
    return target
