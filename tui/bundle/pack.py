"""`sft-tui pack RUN_DIR`: one archive that carries a bundle, with its data, to another machine.

    <run-id>.tar.gz
      runs/<run-id>/            the bundle's files (not a run's train.log, run.pid, state.json, ...)
      runs/<run-id>/data/...    every dataset file dataset_info.json registers that lies outside the
                                bundle, copied in; dataset_info.json and plan.json name the copies
      runs/<run-id>/MANIFEST.sha256   the checksum of every file above (`sha256sum --check` reads it)

On the other machine `tar xzf <run-id>.tar.gz` gives runs/<run-id>/; `sft-tui run runs/<run-id>` and
run_sft.sh both check MANIFEST.sha256 before training, so a truncated copy is refused in one sentence.
What is not carried, said as a note: a model that is a local directory, images a dataset names (they
stay under media_dir), the virtualenv or conda env the bundle activates, and the checkpoint a retry
resumes from.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from tui.bundle.location import ownership_problems
from tui.bundle.spec import MANIFEST, NEW_SUFFIX, BundleError
from tui.common.files import sha256

CHECKSUMS = "MANIFEST.sha256"
# What a run leaves in its directory: never carried, the other machine starts it afresh.
RUN_FILES = {"train.log", "run.pid", "exit_code", "exit_reason", "state.json", CHECKSUMS}
RUN_FOLDERS = {"eval"}


@dataclass
class PackResult:
    archive: Path
    files: list[str]  # paths inside the archive
    carried: dict[str, str]  # the user's dataset file -> its copy inside the bundle
    notes: list[str] = field(default_factory=list)


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise BundleError(f"{path}: cannot be read ({err}): export the bundle again") from None
    if not isinstance(data, dict):
        raise BundleError(f"{path}: not a JSON object: export the bundle again")
    return data


def _bundle_files(run_dir: Path) -> list[Path]:
    out = []
    for path in sorted(run_dir.rglob("*")):
        rel = path.relative_to(run_dir)
        if not path.is_file() or rel.parts[0] in RUN_FOLDERS or (len(rel.parts) == 1 and rel.name in RUN_FILES):
            continue
        if rel.name.endswith(".tmp") or rel.name.endswith(NEW_SUFFIX):
            continue
        out.append(path)
    return out


def _carry(info: dict, run_dir: Path) -> dict[str, tuple[Path, str]]:
    """dataset name -> (the user's file, its name inside the bundle) for files outside the bundle."""
    taken = {p.relative_to(run_dir).as_posix() for p in (run_dir / "data").glob("*")} if (run_dir / "data").is_dir() else set()
    carried = {}
    for name, entry in info.items():
        file_name = entry.get("file_name") if isinstance(entry, dict) else None
        if not file_name:
            continue
        source = Path(file_name) if Path(file_name).is_absolute() else run_dir / file_name
        if source.absolute().is_relative_to(run_dir):
            if not source.is_file():
                raise BundleError(f"{source}: registered in dataset_info.json as {name!r} but missing; export again")
            continue
        if not source.is_file():
            raise BundleError(f"{source}: registered in dataset_info.json as {name!r} but not on this machine; "
                              "put it back, or export again with the file where it is now")
        target = f"data/{source.name}"
        if target in taken:
            target = f"data/{name}-{source.name}"
        taken.add(target)
        carried[name] = (source, target)
    return carried


def pack_bundle(run_dir: Path, archive: Path | None = None, force: bool = False) -> PackResult:
    run_dir = Path(run_dir).absolute()
    if not (run_dir / "plan.json").is_file() or not (run_dir / "run_sft.sh").is_file():
        raise BundleError(f"{run_dir}: no plan.json and run_sft.sh here; pack takes a run directory sft-tui exported")
    problems = ownership_problems(run_dir)
    if problems:
        raise BundleError(problems[0])
    spec = _read_json(run_dir / "plan.json")
    run_id = spec.get("run_id") or run_dir.name
    archive = Path(archive) if archive else run_dir.parent.parent / f"{run_id}.tar.gz"
    if archive.exists() and not force:
        raise BundleError(f"{archive} already exists: --output another name, or --force to replace it")
    info = _read_json(run_dir / "dataset_info.json")
    carried = _carry(info, run_dir)
    # The two files that name datasets, rewritten to the copies; everything else as it is on disk.
    contents: dict[str, bytes] = {p.relative_to(run_dir).as_posix(): p.read_bytes() for p in _bundle_files(run_dir)}
    for name, (_, target) in carried.items():
        info[name] = dict(info[name], file_name=target)
    contents["dataset_info.json"] = (json.dumps(info, indent=2, ensure_ascii=False) + "\n").encode()
    by_source = {str(source): target for source, target in carried.values()}
    for entry in (spec.get("datasets") or {}).get("entries", {}).values():
        if entry.get("file_name") in by_source:
            entry["file_name"] = by_source[entry["file_name"]]
    contents["plan.json"] = (json.dumps(spec, indent=2, ensure_ascii=False) + "\n").encode()
    if MANIFEST in contents:  # the rewritten files are sft-tui's, not edits of the user's
        manifest = json.loads(contents[MANIFEST])
        manifest |= {name: sha256(contents[name]) for name in ("dataset_info.json", "plan.json") if name in manifest}
        contents[MANIFEST] = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode()
    files = {**contents, **{target: source.read_bytes() for source, target in carried.values()}}
    files[CHECKSUMS] = "".join(f"{sha256(data)}  {name}\n" for name, data in sorted(files.items())).encode()
    _write_archive(archive, run_id, files, run_dir)
    return PackResult(archive, [f"runs/{run_id}/{name}" for name in sorted(files)],
                      {str(source): target for source, target in carried.values()}, pack_notes(spec, run_dir))


def _write_archive(archive: Path, run_id: str, files: dict[str, bytes], run_dir: Path) -> None:
    archive.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=archive.parent, prefix=f".{archive.name}.", suffix=".tmp")
    os.close(fd)
    try:
        with tarfile.open(tmp, "w:gz") as tar:
            for name, data in sorted(files.items()):
                member = tarfile.TarInfo(f"runs/{run_id}/{name}")
                member.size = len(data)
                source = run_dir / name
                member.mode = source.stat().st_mode & 0o777 if source.is_file() else 0o644
                member.mtime = int(source.stat().st_mtime) if source.is_file() else 0
                tar.addfile(member, io.BytesIO(data))
        os.chmod(tmp, 0o644)
        os.replace(tmp, archive)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def pack_notes(spec: dict, run_dir: Path) -> list[str]:
    """What the archive does not carry, each with what to do on the other machine."""
    notes = []
    model = (spec.get("model") or {}).get("model_name_or_path") or ""
    if Path(model).is_absolute():
        notes.append(f"the model is the local directory {model}: copy it to the same path there, "
                     "or export again with its hub id")
    env = (spec.get("launch") or {}).get("env")
    if env:
        notes.append(f"run_sft.sh activates {env}: create it there with LLaMA-Factory, "
                     "or export again with --hardware PROFILE (llamafactory-cli on that machine's PATH)")
    settings = (spec.get("plan") or {}).get("settings") or {}
    if settings.get("media_dir") or any(set(e.get("columns") or {}) & {"images", "videos", "audios"}
                                        for e in (spec.get("datasets") or {}).get("entries", {}).values()):
        notes.append("the images and videos your rows name are not carried: copy them to the same paths there")
    follows = spec.get("follows") or {}
    if follows.get("checkpoint"):
        # its own copy of the checkpoint (a nan/diverged retry's) is in its own saves/, else in the run it follows
        holder = Path(follows["checkpoint"]).parent.name or follows.get("run_id")
        notes.append(f"this retry resumes from {follows['checkpoint']}: carry saves/{holder} too")
    return notes


def manifest_problems(run_dir: Path) -> list[str]:
    """A packed bundle's files against its MANIFEST.sha256: one sentence naming what differs."""
    path = Path(run_dir) / CHECKSUMS
    if not path.is_file():
        return []
    bad = []
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        digest, _, name = line.partition("  ")
        if not name:
            continue
        target = Path(run_dir) / name
        try:
            if sha256(target.read_bytes()) != digest:
                bad.append(f"{name} (changed)")
        except OSError:
            bad.append(f"{name} (missing)")
    if not bad:
        return []
    return [f"{len(bad)} file(s) differ from the pack's {CHECKSUMS}: {', '.join(bad[:5])}"
            f"{' ...' if len(bad) > 5 else ''}: copy the archive again, or delete {CHECKSUMS} to run it as it is"]
