"""`sft-tui eval`: predict_with_generate on the run's test split, scored as LLaMA-Factory scores
it (BLEU, ROUGE), results kept in the run's eval/ folder."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tui.after.run import CLI_CODE, AfterError, Run, last_error, run_lf
from tui.common.files import atomic_write
from tui.common.text import plural

METRICS_MODULES = ("jieba", "nltk", "rouge_chinese")


METRICS_PACKAGES = "jieba nltk rouge-chinese"


@dataclass
class EvalResult:
    out_dir: Path
    rows: list[dict]  # {"prompt", "label", "predict"}
    metrics: dict = field(default_factory=dict)

    def empty_note(self) -> str | None:
        """A sentence when the model answered nothing for some rows (the scores are then 0)."""
        empty = sum(1 for row in self.rows if not str(row.get("predict", "")).strip())
        if not empty:
            return None
        return (f"the model generated nothing for {empty} of {plural(len(self.rows), 'row')}, so they score 0: greedy "
                "decoding ended at once (usual for a tiny or barely trained model); sampling shows what it does "
                "say (`sft-tui try RUN_DIR --temperature 0.7`)")


def test_split(run: Run) -> str:
    """The dataset_info entry of the bundle's test split (tui.bundle.dataset_entries names it <base>_test)."""
    names = [name for name in run.spec["datasets"]["entries"] if name.endswith("_test")]
    if not names:
        raise AfterError("this run has no test split: export it with a dataset directory that holds a test.jsonl "
                         "(train.jsonl, val.jsonl, test.jsonl)")
    return names[0]


def missing_metrics_modules(run: Run) -> list[str]:
    code = ("import importlib.util, json; "
            f"print(json.dumps([m for m in {list(METRICS_MODULES)!r} if importlib.util.find_spec(m) is None]))")
    done = run_lf([*run.python(), "-c", code], run.run_dir, "the metrics check")
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise AfterError(f"the training environment's python did not answer ({last_error(done)})") from None


def eval_config(run: Run, dataset: str, max_new_tokens: int, limit: int | None) -> dict:
    settings = run.spec["plan"]["settings"]
    config = {
        "model_name_or_path": settings["model_name_or_path"],
        "template": settings.get("template"),
        "finetuning_type": settings.get("finetuning_type", "lora"),
        "stage": "sft",
        "do_predict": True,
        "predict_with_generate": True,
        "eval_dataset": dataset,
        "dataset_dir": str(run.run_dir),
        "cutoff_len": settings.get("cutoff_len", 2048),
        "max_new_tokens": max_new_tokens,
        "do_sample": False,  # greedy: the same answers every time, comparable across runs
        "output_dir": str(run.run_dir / "eval"),
        "overwrite_output_dir": True,
        "per_device_eval_batch_size": 1,
        "report_to": "none",
        "trust_remote_code": True,
        "bf16": bool(settings.get("bf16")),
        "fp16": bool(settings.get("fp16")),
    }
    if config["finetuning_type"] == "full":
        config["model_name_or_path"] = str(run.adapter(None))
    else:
        config["adapter_name_or_path"] = str(run.adapter(None))
    if settings.get("quantization_bit"):
        config["quantization_bit"] = settings["quantization_bit"]
    if limit:
        config["max_samples"] = limit
    return config


def eval_run(run_dir: Path, max_new_tokens: int = 256, limit: int | None = None) -> EvalResult:
    run = Run.open(run_dir)
    dataset = test_split(run)
    missing = missing_metrics_modules(run)
    if missing:
        raise AfterError(f"LLaMA-Factory's predict path (predict_with_generate) scores answers with "
                         f"{', '.join(missing)}, missing in the training environment: "
                         f"{' '.join(run.python())} -m pip install {METRICS_PACKAGES}")
    out_dir = run.run_dir / "eval"
    config_path = out_dir / "eval.yaml"
    atomic_write(config_path, yaml.safe_dump(eval_config(run, dataset, max_new_tokens, limit), sort_keys=False))
    done = run_lf([*run.python(), "-c", CLI_CODE, "train", str(config_path)], out_dir, "evaluation")
    (out_dir / "eval.log").write_text(done.stdout + done.stderr, encoding="utf-8")
    if done.returncode != 0:
        raise AfterError(f"evaluation failed: {last_error(done)} (log: {out_dir / 'eval.log'})")
    return read_eval(out_dir)


def read_eval(out_dir: Path) -> EvalResult:
    """The saved results of `sft-tui eval` (for the TUI and for printing again)."""
    rows = []
    try:
        for line in (out_dir / "generated_predictions.jsonl").read_text(encoding="utf-8").splitlines():
            if line.strip():
                rows.append(json.loads(line))
        metrics = json.loads((out_dir / "predict_results.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise AfterError(f"no evaluation results in {out_dir} ({err}): run `sft-tui eval` first") from None
    return EvalResult(out_dir, rows, metrics)
