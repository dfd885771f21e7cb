"""The one export, which `sft-tui export` and the wizard's review step both call: the dataset gate,
the spec (tui.bundle.spec), the cleaned copies of the files with errors when they are dropped
(tui.bundle.cleaned), and the write (tui.bundle.write). The front ends only word what it returns."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from tui.bundle.spec import BundleError, LaunchOptions, make_spec
from tui.bundle.write import WriteResult, write_bundle

if TYPE_CHECKING:
    from tui.bundle.cleaned import CleanedCopy


class DatasetRefused(BundleError):
    """The one dataset gate (tui.datasets.gate) refuses the dataset: nothing is written."""


@dataclass
class Exported:
    spec: dict  # what was written (plan.json's), with the cleaned copies registered
    result: WriteResult  # run_dir, written, kept (edited files left alone), dropped (copy -> rows left out)


def export_bundle(plan, request, report, launch: LaunchOptions, out_root: Path, run_name: str | None = None,
                  hardware_name: str = "detected", force: bool = False, drop_errors: bool = False,
                  when: datetime | None = None) -> Exported:
    """Write the bundle of `plan` under out_root/runs/<run name> (default: <model>-<method>-<date>).
    DatasetRefused when the gate refuses the dataset, RunDirExists when the run directory is there and
    not `force` (update it: edited files are kept), BundleError for the rest; all before anything is written."""
    gate(report, drop_errors)
    if launch.gpu_ids and len(launch.gpu_ids) != plan.n_gpus:
        raise BundleError(f"--gpu-ids names {len(launch.gpu_ids)} GPUs but the plan uses {plan.n_gpus} (--gpus)")
    spec = make_spec(plan, request, report, launch, out_root, run_name, when=when, hardware_name=hardware_name)
    return write(spec, report, force, drop_errors)


def export_spec(spec: dict, report, force: bool = False, drop_errors: bool = False) -> Exported:
    """Write the bundle a spec describes (`export --from plan.json`); `report`: its dataset files
    validated again, as they are now. Refuses as export_bundle does."""
    gate(report, drop_errors)
    return write(spec, report, force, drop_errors)


def gate(report, drop_errors: bool) -> None:
    from tui.datasets.gate import dataset_refusal

    refusal = dataset_refusal(report, drop_errors)
    if refusal:
        raise DatasetRefused(refusal)


def write(spec: dict, report, force: bool, drop_errors: bool) -> Exported:
    from tui.bundle.cleaned import with_cleaned_copies

    cleaned: list[CleanedCopy] = []
    if drop_errors and report.has_errors:
        spec, cleaned = with_cleaned_copies(spec, report)
    return Exported(spec, write_bundle(spec, force=force, cleaned=cleaned))
