"""`sft-tui try`: the trained model (or the base, or a checkpoint) answers prompts through
LLaMA-Factory's ChatModel with infer.yaml's settings, in the run's training environment."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tui.after.run import CHAT_SCRIPT, AfterError, Run, last_error, run_lf

GENERATION_KEYS = ("max_new_tokens", "temperature", "top_p")


@dataclass
class Answer:
    variant: str  # "fine-tuned", "checkpoint-N" or "base"
    prompt: str
    answer: str


def generation_settings(run: Run, overrides: dict) -> dict:
    """infer.yaml's generation settings (the run's defaults), then the flags given."""
    infer = run.yaml_file("infer.yaml")
    settings = {k: infer[k] for k in GENERATION_KEYS if k in infer}
    settings.update({k: v for k, v in overrides.items() if v is not None})
    if settings.get("temperature") == 0:  # greedy: LLaMA-Factory rejects temperature 0 with sampling on
        settings.pop("temperature")
        settings["do_sample"] = False
    return settings


def try_run(run_dir: Path, prompts: list[str], checkpoint: int | None = None, base: bool = False,
            compare: bool = False, generation: dict | None = None) -> list[Answer]:
    """Answers of the trained adapter (or checkpoint-N), the base model (`base`), or both
    (`compare`, base first), through LLaMA-Factory's ChatModel with the run's template."""
    run = Run.open(run_dir)
    if not prompts:
        raise AfterError("no prompt: give --prompt TEXT or --prompts FILE")
    infer = run.yaml_file("infer.yaml")
    common = {k: v for k, v in infer.items() if k not in ("adapter_name_or_path", *GENERATION_KEYS)}
    variants = []
    if base or compare:
        variants.append({"name": "base", "args": {k: v for k, v in common.items() if k != "finetuning_type"}})
    if not base:
        adapter = run.adapter(checkpoint)
        name = f"checkpoint-{checkpoint}" if checkpoint is not None else "fine-tuned"
        args = dict(common, adapter_name_or_path=str(adapter)) if infer.get("finetuning_type", "lora") != "full" \
            else dict(common, model_name_or_path=str(adapter))
        variants.append({"name": name, "args": args})
    request = {"variants": variants, "prompts": prompts, "generation": generation_settings(run, generation or {})}
    done = run_lf([*run.python(), "-c", CHAT_SCRIPT.read_text(), json.dumps(request)], run.run_dir, "generation")
    answers, errors = [], []
    for line in done.stdout.splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if "error" in row:
            errors.append(f"{row['variant']}: {row['error']}")
        elif isinstance(row, dict) and "answer" in row:
            answers.append(Answer(row["variant"], row["prompt"], row["answer"]))
    if errors or (done.returncode != 0 and not answers):
        raise AfterError("LLaMA-Factory could not generate: " + ("; ".join(errors) or last_error(done)))
    return answers


def read_prompts(path: Path) -> list[str]:
    """One prompt per line of a text file, or a JSONL file of {"prompt"|"instruction": ...} rows."""
    try:
        lines = [line for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    except OSError as err:
        raise AfterError(f"{path}: {err.strerror}") from None
    prompts = []
    for line in lines:
        if line.lstrip().startswith("{"):
            try:
                row = json.loads(line)
                prompts.append(str(row.get("prompt") or row.get("instruction") or ""))
                continue
            except ValueError:
                pass
        prompts.append(line)
    return [p for p in prompts if p]
