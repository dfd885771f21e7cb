"""Run bundles: a Plan rendered into a run directory that LLaMA-Factory accepts.

    runs/<run-id>/   plan.json train.yaml dataset_info.json run_sft.sh infer.yaml export.yaml
                     README.md [ds_z*.json] [run_sft.sbatch] .sft-tui-manifest.json
    saves/<run-id>/  LLaMA-Factory's output_dir

`plan.json` holds everything rendering reads (a BundleSpec), so `sft-tui export --from
plan.json` renders the same files. Rendering is a pure function of the spec; writing is atomic
per file, and a manifest of the hashes written lets a later export tell files the user edited,
which are never overwritten: the new version goes beside them as `<file>.sft-tui-new`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from tui import __version__
from tui.bundle.render import UnrepresentableValue, render
from tui.common.errors import SftTuiError
from tui.common.schemas import schema_errors
from tui.hardware.vendors import vendor_of
from tui.plan.reserve import ALLOC_CONF
from tui.plan.settings import check_settings

PLAN_SCHEMA_VERSION = 1
# train.yaml's output_dir, relative to the run directory: runs/<id>/ -> saves/<id>/.
OWN_OUTPUT_DIR = "../../saves/{run_id}"
MANIFEST = ".sft-tui-manifest.json"
NEW_SUFFIX = ".sft-tui-new"

# train.yaml's groups, in the order of LLaMA-Factory's own examples; other keys go last.
YAML_GROUPS = {
    "model": ("model_name_or_path", "template", "trust_remote_code", "quantization_bit", "quantization_method", "flash_attn"),
    "method": ("stage", "do_train", "finetuning_type", "lora_rank", "lora_alpha", "lora_dropout", "lora_target",
               "pure_bf16", "deepspeed", "disable_gradient_checkpointing"),
    "dataset": ("dataset", "eval_dataset", "dataset_dir", "cutoff_len", "val_size", "overwrite_cache"),
    "output": ("output_dir", "logging_steps", "save_steps", "plot_loss", "overwrite_output_dir", "resume_from_checkpoint",
               "report_to"),
    "train": ("per_device_train_batch_size", "gradient_accumulation_steps", "learning_rate", "num_train_epochs",
              "max_steps", "lr_scheduler_type", "warmup_ratio", "warmup_steps", "max_grad_norm", "bf16", "fp16",
              "ray_num_workers"),
    "eval": ("eval_strategy", "eval_steps", "per_device_eval_batch_size"),
}
DEEPSPEED_FILES = {"ds_z2.json": (2, False), "ds_z3.json": (3, False), "ds_z3_offload.json": (3, True)}


class BundleError(SftTuiError):
    """The bundle cannot be written as asked; one sentence."""


@dataclass
class LaunchOptions:
    env: str | None = None  # "conda:NAME", "venv:PATH", or None: llamafactory-cli on PATH
    gpu_ids: list[int] | None = None
    master_addr: str | None = None
    master_port: int = 29500
    slurm: bool = False
    ray: bool = False
    modelscope: bool = False
    report_to: str = "none"

    def validate(self) -> None:
        if self.env and not re.fullmatch(r"(conda:[^\s/]+|venv:.+)", self.env):
            raise BundleError(f"--env {self.env!r}: use conda:NAME or venv:PATH")


def run_id_for(model_name: str, settings: dict, when: datetime) -> str:
    method = settings.get("finetuning_type", "lora")
    if settings.get("quantization_bit"):
        method = f"q{method}{settings['quantization_bit']}"
    return f"{_slug(model_name)}-{method}-{when:%Y%m%d-%H%M}"


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.") or "run"


def dataset_entries(report, base: str) -> tuple[dict, list[str], list[str]]:
    """dataset_info.json entries for the validated files: (entries, train names, eval names).
    Files named val/test become `<base>_val`/`<base>_test`; the rest train."""
    from tui.datasets.formats import register_entry

    entries: dict[str, dict] = {}
    train: list[str] = []
    evals: list[str] = []
    name_base = re.sub(r"\W+", "_", base).strip("_") or "data"
    split_order = {None: 0, "train": 0, "val": 1, "test": 2}
    for f in sorted(report.files, key=lambda f: split_order.get(f.split, 0)):
        if f.format is None or f.valid_rows == 0:
            continue
        if f.split in ("val", "test"):
            name = f"{name_base}_{f.split}"
            (evals if f.split == "val" else []).append(name)
        else:
            name = name_base if not train else f"{name_base}_{len(train) + 1}"
            train.append(name)
        entries[name] = {"file_name": str(f.path.resolve()), **register_entry(f)}
    return entries, train, evals


def make_spec(plan, request, report, launch: LaunchOptions, out_root: Path, run_id: str | None = None,
              when: datetime | None = None, hardware_name: str = "detected") -> dict:
    """The BundleSpec: everything the files are rendered from, as plan.json stores it."""
    launch.validate()
    if report is None or not report.files:
        raise BundleError("a bundle needs a dataset: pass --dataset PATH")
    when = when or datetime.now().astimezone()
    model = request.model
    run_id = checked_run_id(run_id or run_id_for(model.name, plan.settings, when))
    base = report.files[0].path.resolve()
    entries, train, evals = dataset_entries(report, base.parent.name if report.files[0].split else base.stem)
    if not train:
        raise BundleError("no training file with valid rows among the datasets")
    out_root = out_root.resolve()
    device = request.devices[0]
    return {
        "schema_version": PLAN_SCHEMA_VERSION,
        "run_id": run_id,
        "created": when.isoformat(timespec="seconds"),
        "sft_tui_version": __version__,
        "paths": bundle_paths(out_root, run_id),
        "model": {"name": model.name, "model_name_or_path": model.model_name_or_path, "source": model.source,
                  "template": model.template, "params": model.params},
        "hardware": {"name": hardware_name, "device": device.name, "vendor": device.vendor,
                     "gpus": plan.n_gpus, "nodes": plan.nodes},
        "datasets": {"entries": entries, "train": train, "eval": evals},
        "launch": launch.__dict__ | {"gpu_ids": launch.gpu_ids or list(range(plan.n_gpus))},
        "plan": plan.to_json(),
    }


def checked_run_id(run_id: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9._-]+", run_id) or run_id in (".", ".."):
        raise BundleError(f"--name {run_id!r}: use letters, digits, '.', '_' and '-' only")
    return run_id


def bundle_paths(out_root: Path, run_id: str) -> dict:
    return {"run_dir": str(out_root / "runs" / run_id), "output_dir": str(out_root / "saves" / run_id)}


def relocated(spec: dict, out_root: Path | None, run_id: str | None) -> dict:
    """A loaded plan.json's spec under another output folder and/or run id (`export --from
    plan.json --out DIR --name ID`); what is not given stays as plan.json says."""
    run_id = checked_run_id(run_id) if run_id else spec["run_id"]
    out_root = out_root.resolve() if out_root else Path(spec["paths"]["run_dir"]).parents[1]
    return spec | {"run_id": run_id, "paths": bundle_paths(out_root, run_id)}


def train_settings(spec: dict) -> dict:
    """train.yaml's settings: the plan's, plus what the bundle decides (data, output, launch)."""
    settings = dict(spec["plan"]["settings"])
    launch, data = spec["launch"], spec["datasets"]
    settings["do_train"] = True
    settings["dataset"] = ",".join(data["train"])
    if data["eval"]:
        settings["eval_dataset"] = ",".join(data["eval"])
    else:
        for key in ("eval_strategy", "eval_steps", "per_device_eval_batch_size"):
            settings.pop(key, None)
    # Paths relative to the run directory, which run_sft.sh makes the working directory: the bundle
    # moves (another folder, another machine) and still writes only into its own saves/<run-id>.
    settings["dataset_dir"] = "."
    settings["output_dir"] = OWN_OUTPUT_DIR.format(run_id=spec["run_id"])
    # LLaMA-Factory finds images/videos under media_dir, which defaults to dataset_dir (this run
    # directory); the rows name them relative to the dataset file's folder.
    media = [entry for entry in data["entries"].values() if set(entry.get("columns", {})) & MEDIA_COLUMNS]
    if media and "media_dir" not in settings:
        settings["media_dir"] = str(Path(media[0]["file_name"]).parent)
    settings["overwrite_output_dir"] = True
    settings["plot_loss"] = True
    settings.setdefault("report_to", launch["report_to"])  # your --set report_to=... wins
    if launch["ray"]:
        settings["ray_num_workers"] = spec["hardware"]["gpus"] * spec["hardware"]["nodes"]
    follows = spec.get("follows") or {}
    if follows.get("checkpoint"):  # a retry that continues the run it follows (sft-tui retry)
        settings["resume_from_checkpoint"] = follows["checkpoint"]
    return {k: v for k, v in settings.items() if v is not None}


def resume_reason(follows: dict) -> str:
    of = f" of {follows['total_steps']}" if follows.get("total_steps") else ""
    return (f"continues run {follows['run_id']} from its step {follows.get('step', '?')}{of} (sft-tui retry); "
            f"run_sft.sh --resume continues from this run's own newest checkpoint instead")


MEDIA_COLUMNS = {"images", "videos", "audios"}
BUNDLE_REASONS = {
    "media_dir": "your images and videos are named relative to the dataset file's folder",
    "do_train": "train (sft-tui bundle)",
    "dataset": "the validated training file(s), registered in this bundle's dataset_info.json",
    "eval_dataset": "the validation split file",
    "dataset_dir": "this run directory (run_sft.sh runs from it), whose dataset_info.json registers your files",
    "output_dir": "checkpoints and the adapter go to saves/<run-id>, beside runs/ wherever the bundle is",
    "overwrite_output_dir": "a fresh run starts over; run_sft.sh --resume continues from the newest checkpoint",
    "plot_loss": "save the loss curve as a PNG",
    "report_to": "no experiment tracker unless you chose one",
    "ray_num_workers": "one Ray worker per GPU",
}


def grouped(settings: dict) -> list[tuple[str, list[str]]]:
    placed = {k for keys in YAML_GROUPS.values() for k in keys}
    groups = [(name, [k for k in keys if k in settings]) for name, keys in YAML_GROUPS.items()]
    groups.append(("other", [k for k in settings if k not in placed]))
    return [(name, keys) for name, keys in groups if keys]


def environment_vars(spec: dict) -> list[tuple[str, str, bool]]:
    """(name, value, overridable from the caller's environment) for run_sft.sh."""
    hw, launch = spec["hardware"], spec["launch"]
    settings = spec["plan"]["settings"]
    out = []
    visible = vendor_of(hw["vendor"]).visible_devices  # the variable that chooses the GPUs, if the vendor has one
    if visible:
        out.append((visible, ",".join(str(i) for i in launch["gpu_ids"]), True))
    if hw["vendor"] in ALLOC_CONF:  # the allocator mode the plan's reserve is modelled for
        out.append((*ALLOC_CONF[hw["vendor"]], True))
    if hw["gpus"] > 1 or hw["nodes"] > 1 or settings.get("deepspeed"):
        out.append(("FORCE_TORCHRUN", "1", False))
    if hw["nodes"] > 1:
        out += [("NNODES", str(hw["nodes"]), True), ("NODE_RANK", "0", True),
                ("MASTER_ADDR", launch["master_addr"] or "127.0.0.1", True), ("MASTER_PORT", str(launch["master_port"]), True)]
    if launch["ray"]:
        out.append(("USE_RAY", "1", False))
    if launch["modelscope"]:
        out.append(("USE_MODELSCOPE_HUB", "1", False))
    out += [("RECORD_VRAM", "1", False), ("LLAMABOARD_ENABLED", "1", False),
            ("LLAMABOARD_WORKDIR", OWN_OUTPUT_DIR.format(run_id=spec["run_id"]), False)]
    return out


def deepspeed_config(stage: int, offload: bool) -> dict:
    """LLaMA-Factory's examples/deepspeed configs: 'auto' values come from train.yaml."""
    zero = {"stage": stage, "allgather_partitions": True, "allgather_bucket_size": 5e8, "overlap_comm": False,
            "reduce_scatter": True, "reduce_bucket_size": "auto", "contiguous_gradients": True, "round_robin_gradients": True}
    if stage == 3:
        zero = {"stage": 3, "overlap_comm": False, "contiguous_gradients": True, "sub_group_size": 1e9,
                "reduce_bucket_size": "auto", "stage3_prefetch_bucket_size": "auto",
                "stage3_param_persistence_threshold": "auto", "stage3_max_live_parameters": 1e9,
                "stage3_max_reuse_distance": 1e9, "stage3_gather_16bit_weights_on_model_save": True}
    if offload:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
        zero["offload_param"] = {"device": "cpu", "pin_memory": True}
    return {
        "train_batch_size": "auto", "train_micro_batch_size_per_gpu": "auto", "gradient_accumulation_steps": "auto",
        "gradient_clipping": "auto", "zero_allow_untested_optimizer": True,
        "fp16": {"enabled": "auto", "loss_scale": 0, "loss_scale_window": 1000, "initial_scale_power": 16,
                 "hysteresis": 2, "min_loss_scale": 1},
        "bf16": {"enabled": "auto"},
        "zero_optimization": zero,
    }


def serving_commands(model_dir, template: str | None) -> list[str]:
    """How to serve a merged model: vLLM, or LLaMA-Factory's OpenAI-style API (the run's README
    and `sft-tui merge` print these)."""
    import shlex

    where = shlex.quote(str(model_dir))
    return [f"vllm serve {where}",
            f"API_PORT=8000 llamafactory-cli api --model_name_or_path {where} --template {shlex.quote(template or 'default')}"
            " --infer_backend huggingface"]


def render_bundle(spec: dict) -> dict[str, str]:
    """Every file of the bundle: name -> text. Pure. BundleError for a value no config can hold."""
    try:
        return _render_files(spec)
    except UnrepresentableValue as err:
        raise BundleError(str(err)) from None


def _render_files(spec: dict) -> dict[str, str]:
    from tui.bundle.location import portable

    spec = portable(spec)
    settings = train_settings(spec)
    reasons = BUNDLE_REASONS | {k: v["text"] for k, v in spec["plan"]["reasons"].items()}  # yours win (report_to)
    if "resume_from_checkpoint" in settings:
        reasons["resume_from_checkpoint"] = resume_reason(spec["follows"])
    output_dir = settings["output_dir"]
    context = dict(spec=spec, settings=settings, reasons=reasons, groups=grouped(settings),
                   env_vars=environment_vars(spec), output_dir=output_dir, launch=spec["launch"], version=__version__,
                   serve_commands=serving_commands(output_dir + "-merged", settings.get("template")))
    files = {
        "plan.json": json.dumps(spec, indent=2, ensure_ascii=False) + "\n",
        "train.yaml": render("train.yaml.j2", **context),
        "dataset_info.json": json.dumps(spec["datasets"]["entries"], indent=2, ensure_ascii=False) + "\n",
        "run_sft.sh": render("run_sft.sh.j2", **context),
        "infer.yaml": render("infer.yaml.j2", **context),
        "export.yaml": render("export.yaml.j2", **context),
        "README.md": render("README.md.j2", **context),
    }
    ds = spec["plan"]["settings"].get("deepspeed")
    if ds:
        files[ds] = json.dumps(deepspeed_config(*DEEPSPEED_FILES[ds]), indent=2) + "\n"
    if spec["launch"]["slurm"]:
        files["run_sft.sbatch"] = render("run_sft.sbatch.j2", **context)
    return files


def load_spec(path: Path) -> dict:
    try:
        spec = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BundleError(f"{path}: no such file") from None
    except (OSError, ValueError) as err:
        raise BundleError(f"{path}: not a readable plan.json ({err})") from None
    errors = schema_errors(spec, "plan")
    if errors:
        raise BundleError(f"{path}: {errors[0].pointer or '/'}: {errors[0].message}")
    # An edited plan.json passes the same settings gate as --set: typed, known, in range.
    settings, problems = check_settings(spec["plan"]["settings"])
    if problems:
        raise BundleError("\n".join(f"{path}: {line}" for line in problems))
    spec["plan"]["settings"] = settings
    if path.name == "plan.json" and (path.parent / "run_sft.sh").is_file():  # a bundle: where it is now
        from tui.bundle.location import located

        spec = located(spec, path.parent)
    return spec
