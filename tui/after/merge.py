"""`sft-tui merge`: the LoRA adapter merged into the base model with export.yaml, and the
commands to serve the result."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tui.after.run import CLI_CODE, AfterError, Run, last_error, run_lf
from tui.bundle.spec import serving_commands


@dataclass
class MergeResult:
    out_dir: Path
    size_bytes: int
    serve: list[str]


def merge_run(run_dir: Path, out: Path | None = None) -> MergeResult:
    run = Run.open(run_dir)
    export = run.yaml_file("export.yaml")
    if export.get("finetuning_type", "lora") != "lora":
        raise AfterError("only a LoRA adapter is merged; a full fine-tune is already a whole model in "
                         f"{run.output_dir}")
    if export.get("quantization_bit"):
        raise AfterError("export.yaml sets quantization_bit: a merged model must be built on the full-precision base")
    run.adapter(None)
    out_dir = Path(out).resolve() if out else Path(str(export.get("export_dir") or f"{run.output_dir}-merged"))
    if out_dir.exists() and any(out_dir.iterdir()):
        raise AfterError(f"{out_dir} exists and is not empty: choose another --out, or remove it")
    done = run_lf([*run.python(), "-c", CLI_CODE, "export", str(run.run_dir / "export.yaml"), f"export_dir={out_dir}"],
                run.run_dir, "the merge")
    if done.returncode != 0 or not (out_dir / "config.json").is_file():
        raise AfterError(f"the merge failed: {last_error(done)}")
    size = sum(p.stat().st_size for p in out_dir.rglob("*") if p.is_file())
    return MergeResult(out_dir, size, serving_commands(out_dir, export.get("template")))
