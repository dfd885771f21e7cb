"""After training, from the run directory: try the model, evaluate it on the test split, merge
the adapter into the base. Each runs LLaMA-Factory's own code path in a subprocess of the run's
training environment (the one run_sft.sh activates: plan.json's `launch.env`, else the python
behind llamafactory-cli), never in the sft-tui process.

    try    LLaMA-Factory's ChatModel (tui/lf_chat.py) with infer.yaml's settings
    eval   `llamafactory-cli train eval/eval.yaml`: do_predict + predict_with_generate on the
           bundle's test split; results in <run>/eval/
    merge  `llamafactory-cli export export.yaml` (full-precision base, the run's template)
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tui.bundle import BundleError, atomic_write, load_spec, serving_commands
from tui.runs import output_dir_of

CHAT_SCRIPT = Path(__file__).with_name("lf_chat.py")
CLI_CODE = "import sys; from llamafactory.cli import main; sys.argv = ['llamafactory-cli', *sys.argv[1:]]; main()"
METRICS_MODULES = ("jieba", "nltk", "rouge_chinese")
METRICS_PACKAGES = "jieba nltk rouge-chinese"
GENERATION_KEYS = ("max_new_tokens", "temperature", "top_p")
TIMEOUT_S = 3600


class AfterError(Exception):
    """The command cannot run as asked; one sentence that says what to do."""


@dataclass
class Run:
    run_dir: Path
    spec: dict
    output_dir: Path

    @classmethod
    def open(cls, run_dir: Path) -> "Run":
        run_dir = Path(run_dir).resolve()
        try:
            spec = load_spec(run_dir / "plan.json")
        except BundleError as err:
            raise AfterError(f"{run_dir} is not a run directory sft-tui wrote ({err})") from None
        return cls(run_dir, spec, output_dir_of(run_dir) or Path(spec["paths"]["output_dir"]))

    def python(self) -> list[str]:
        """argv prefix of the training environment's python."""
        from tui.check import env_python, training_python

        env = self.spec["launch"].get("env") or ""
        if not env:
            return [training_python()]
        argv = env_python(env)
        if argv is None:
            raise AfterError(f"the run's training environment {env.split(':', 1)[-1]} is not on this machine"
                             + (" (no bin/python in it)" if env.startswith("venv:") else " (no conda on PATH)"))
        return argv

    def yaml_file(self, name: str) -> dict:
        try:
            data = yaml.safe_load((self.run_dir / name).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as err:
            raise AfterError(f"{self.run_dir / name} cannot be read ({err})") from None
        return data if isinstance(data, dict) else {}

    def checkpoints(self) -> list[int]:
        found = [p.name.removeprefix("checkpoint-") for p in self.output_dir.glob("checkpoint-*") if p.is_dir()]
        return sorted(int(n) for n in found if n.isdigit())

    def adapter(self, checkpoint: int | None) -> Path:
        """The trained adapter: the final one in output_dir, or checkpoint-N."""
        if checkpoint is not None:
            path = self.output_dir / f"checkpoint-{checkpoint}"
            if not path.is_dir():
                have = ", ".join(map(str, self.checkpoints())) or "none yet"
                raise AfterError(f"no checkpoint {checkpoint} in {self.output_dir} (checkpoints: {have})")
            return path
        if not any((self.output_dir / name).exists() for name in ("adapter_config.json", "config.json")):
            raise AfterError(f"{self.output_dir} has no trained model yet: has the run finished? "
                             f"(`sft-tui status {self.run_dir.parent}`)")
        return self.output_dir


def _env() -> dict:
    return dict(os.environ, TOKENIZERS_PARALLELISM="false", DISABLE_VERSION_CHECK="0")


def _run(argv: list[str], cwd: Path, what: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S, env=_env(), cwd=cwd)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise AfterError(f"{what} could not run in the training environment ({err})") from None


def _last_error(done: subprocess.CompletedProcess) -> str:
    lines = [line for line in (done.stderr + done.stdout).strip().splitlines() if line.strip()]
    for line in reversed(lines):
        if "Error" in line.split(":")[0] or line.startswith("ValueError"):
            return line.strip()
    return lines[-1].strip() if lines else f"exit {done.returncode}"


# --- try --------------------------------------------------------------------------------------


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
    done = _run([*run.python(), "-c", CHAT_SCRIPT.read_text(), json.dumps(request)], run.run_dir, "generation")
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
        raise AfterError("LLaMA-Factory could not generate: " + ("; ".join(errors) or _last_error(done)))
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


# --- eval -------------------------------------------------------------------------------------


@dataclass
class EvalResult:
    out_dir: Path
    rows: list[dict]  # {"prompt", "label", "predict"}
    metrics: dict = field(default_factory=dict)


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
    done = _run([*run.python(), "-c", code], run.run_dir, "the metrics check")
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise AfterError(f"the training environment's python did not answer ({_last_error(done)})") from None


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
    done = _run([*run.python(), "-c", CLI_CODE, "train", str(config_path)], out_dir, "evaluation")
    (out_dir / "eval.log").write_text(done.stdout + done.stderr, encoding="utf-8")
    if done.returncode != 0:
        raise AfterError(f"evaluation failed: {_last_error(done)} (log: {out_dir / 'eval.log'})")
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


# --- merge ------------------------------------------------------------------------------------


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
    done = _run([*run.python(), "-c", CLI_CODE, "export", str(run.run_dir / "export.yaml"), f"export_dir={out_dir}"],
                run.run_dir, "the merge")
    if done.returncode != 0 or not (out_dir / "config.json").is_file():
        raise AfterError(f"the merge failed: {_last_error(done)}")
    size = sum(p.stat().st_size for p in out_dir.rglob("*") if p.is_file())
    return MergeResult(out_dir, size, serving_commands(out_dir, export.get("template")))
