"""Run by the training environment's python, not imported by sft-tui:

    python check_bundle.py RUN_DIR   ->  prints {"problems": [{"file", "key", "message"}], "notes": [...]}

Checks a run directory the way LLaMA-Factory will read it, without loading a model:
- train.yaml through LLaMA-Factory's own argument parsing and checks (get_train_args) on the
  argv path (`--key value`), which type-checks every value (its dict path does not: measured,
  `lora_rank: abc` passes it);
- the chat template exists in the installed LLaMA-Factory;
- every dataset named in train.yaml is in dataset_info.json and its files exist.
Settings that need the hardware itself (bf16/fp16/pure_bf16 without a GPU here, a DeepSpeed
config without deepspeed installed) are type-checked and then left out of the parse, with a note.
Self-contained on purpose: it may run where sft-tui is not installed.
"""

import contextlib
import io
import json
import re
import sys
from pathlib import Path

PRECISION_KEYS = ("bf16", "fp16", "pure_bf16")
# Settings that need a package LLaMA-Factory imports only when it loads the model, so its parser
# cannot tell: (import name, pip name) for each, found here with find_spec (nothing imported).
NEEDS_PACKAGE = {
    "enable_liger_kernel": ("liger_kernel", "liger-kernel"),
    "use_unsloth": ("unsloth", "unsloth"),
    "use_unsloth_gc": ("unsloth", "unsloth"),
    "use_galore": ("galore_torch", "galore-torch"),
    "use_apollo": ("apollo_torch", "apollo-torch"),
    "use_badam": ("badam", "badam"),
}
BNB_OPTIMIZERS = ("adamw_8bit", "adamw_bnb_8bit", "paged_adamw_8bit", "paged_adamw_32bit", "lion_8bit",
                  "paged_lion_8bit", "paged_lion_32bit")


def missing_packages(config: dict) -> list[dict]:
    """[{key, package}] for each setting whose package is not importable here."""
    import importlib.util

    needs = {key: pkg for key, pkg in NEEDS_PACKAGE.items() if config.get(key)}
    if config.get("quantization_bit") and config.get("quantization_method", "bnb") == "bnb":
        needs["quantization_bit"] = ("bitsandbytes", "bitsandbytes")
    if config.get("optim") in BNB_OPTIMIZERS:
        needs["optim"] = ("bitsandbytes", "bitsandbytes")
    if config.get("flash_attn") == "fa2":
        needs["flash_attn"] = ("flash_attn", "flash-attn")
    return [{"key": key, "package": pip} for key, (module, pip) in needs.items() if importlib.util.find_spec(module) is None]


def main(run_dir: Path) -> dict:
    problems, notes = [], []

    def problem(file, key, message):
        problems.append({"file": file, "key": key, "message": message})

    from omegaconf import OmegaConf

    try:
        config = OmegaConf.to_container(OmegaConf.load(run_dir / "train.yaml"))
    except Exception as err:  # noqa: BLE001 - report whatever the loader says
        problem("train.yaml", "", f"cannot be read as LLaMA-Factory reads it: {err}")
        return {"problems": problems, "notes": notes}

    import torch

    config = dict(config)
    missing = missing_packages(config)  # before the parse below leaves bad keys out
    for item in missing:  # LLaMA-Factory's parser would stop at the first with a bare PackageNotFoundError
        config.pop(item["key"], None)
    gpu_bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    for key in PRECISION_KEYS:
        if key in config and not isinstance(config[key], bool):
            problem("train.yaml", key, f"must be true or false, not {config[key]!r}")
        elif config.get(key) and not (gpu_bf16 if key != "fp16" else torch.cuda.is_available()):
            config[key] = False
            notes.append(f"{key}: checked as a boolean only; this machine has no GPU to validate it on")
    deepspeed = config.get("deepspeed")
    if deepspeed:
        path = Path(deepspeed)
        if not path.is_file():
            problem("train.yaml", "deepspeed", f"{deepspeed}: no such file")
        else:
            try:
                json.loads(path.read_text())
            except ValueError as err:
                problem(path.name, "", f"not valid JSON: {err}")
        try:
            import deepspeed as _  # noqa: F401
        except ImportError:
            config.pop("deepspeed")
            notes.append("deepspeed: config file checked; DeepSpeed is not installed here, so it is left out of the parse")

    import dataclasses

    from llamafactory.hparams import get_train_args
    from llamafactory.hparams.parser import _TRAIN_ARGS

    known = {f.name for cls in _TRAIN_ARGS for f in dataclasses.fields(cls)}
    for key in [k for k in config if k not in known]:
        problem("train.yaml", key, "not a LLaMA-Factory argument")
        config.pop(key)

    # argparse stops at the first bad value: report it, leave it out, parse again.
    for _ in range(len(config) + 1):
        argv = []
        for key, value in config.items():
            if value is not None:
                argv += [f"--{key}", "true" if value is True else "false" if value is False else str(value)]
        stderr = io.StringIO()
        try:
            with contextlib.redirect_stderr(stderr), contextlib.redirect_stdout(io.StringIO()):
                get_train_args(argv)
        except SystemExit:
            found = re.search(r"argument --([\w]+)(?:/--[\w-]+)*: (.+)", stderr.getvalue())
            if found and found.group(1) in config:
                problem("train.yaml", found.group(1), found.group(2).strip())
                config.pop(found.group(1))
                continue
            lines = stderr.getvalue().strip().splitlines()
            problem("train.yaml", "", lines[-1] if lines else "rejected by LLaMA-Factory's argument parser")
        except Exception as err:  # noqa: BLE001 - LLaMA-Factory's own checks raise various types
            problem("train.yaml", "", f"{type(err).__name__}: {err}")
        break

    from llamafactory.data.template import TEMPLATES

    template = config.get("template")
    if template and template not in TEMPLATES:
        problem("train.yaml", "template", f"{template!r} is not a template of the installed LLaMA-Factory")

    dataset_dir = Path(config.get("dataset_dir") or run_dir)
    try:
        info = json.loads((dataset_dir / "dataset_info.json").read_text())
    except (OSError, ValueError) as err:
        problem("dataset_info.json", "", f"cannot be read: {err}")
        info = None
    if info is not None:
        for key in ("dataset", "eval_dataset"):
            for name in filter(None, str(config.get(key) or "").split(",")):
                name = name.strip()
                if name not in info:
                    problem("train.yaml", key, f"{name!r} is not in {dataset_dir / 'dataset_info.json'}")
                    continue
                file_name = info[name].get("file_name")
                if file_name and not (dataset_dir / file_name).exists():
                    problem("dataset_info.json", name, f"file {file_name} not found")
    return {"problems": problems, "notes": notes, "missing_packages": missing}


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
