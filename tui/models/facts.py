"""Architecture facts from the real thing: the training environment's python builds the model from
its config.json on the meta device (tui/lf/model_facts.py, a subprocess: this process never
imports torch or transformers) and reports its exact parameter counts, linear layers, experts, the
vision tower and the modules LLaMA-Factory's `lora_target: all` selects.

Facts are kept in the user cache dir (`model-facts/<sha256 of config.json>.json`), so a config
is built once. Without a training environment (or with SFT_TUI_MODEL_FACTS=0), or when the model
cannot be built there, `facts_for` says why and the config-only formulas stand.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from tui.models.architecture import Architecture, LinearLayer

FACTS_SCRIPT = Path(__file__).parents[1] / "lf" / "model_facts.py"
FACTS_VERSION = 1  # bump when model_facts.py reports differently: old cache entries are ignored
TIMEOUT_S = 180


@dataclass(frozen=True)
class ModelFacts:
    params: int  # every parameter, tied ones once
    language_params: int
    vision_params: int  # the vision (and audio) tower and the multimodal projector
    linear: tuple[LinearLayer, ...]  # the language model's nn.Linear modules `lora_target: all` adapts
    lora_target_all: tuple[str, ...]
    experts: int | None
    experts_per_token: int | None
    expert_params: int
    multimodal: bool
    model_class: str
    transformers: str
    raw: dict

    @classmethod
    def from_json(cls, data: dict) -> "ModelFacts":
        parts = data["parts"]
        linear = tuple(
            LinearLayer(row["name"], row["in_features"], row["out_features"], row["bias"], row["count"])
            for row in data["lora_linear"] if row["part"] == "language"
        )
        return cls(
            params=data["params"],
            language_params=parts["language"],
            vision_params=parts["vision"] + parts["projector"],
            linear=linear,
            lora_target_all=tuple(data["lora_target_all"]),
            experts=data.get("experts"),
            experts_per_token=data.get("experts_per_token"),
            expert_params=data.get("expert_params") or 0,
            multimodal=bool(data.get("multimodal")),
            model_class=data.get("model_class", "?"),
            transformers=data.get("transformers", "?"),
            raw=data,
        )

    def apply(self, architecture: Architecture) -> Architecture:
        """The architecture with its counts replaced by these facts."""
        return replace(
            architecture,
            exact_params=self.language_params,
            exact_linear=self.linear,
            exact_expert_params=self.expert_params if architecture.is_moe else None,
            multimodal=architecture.multimodal or self.multimodal,
            vision_params=self.vision_params,
        )


def config_hash(config: dict) -> str:
    text = json.dumps(config, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{FACTS_VERSION}:{text}".encode()).hexdigest()


def _cache_path(config: dict) -> Path:
    from tui.common.resources import user_cache_dir

    return user_cache_dir() / "model-facts" / f"{config_hash(config)}.json"


def _training_python() -> Path | None:
    from tui.hardware.environment import find_llamafactory

    found = find_llamafactory()
    return found.python if found else None


def run_facts(configs: list[dict], python: Path, timeout: float = TIMEOUT_S) -> list[dict]:
    """model_facts.py's answer for each config (an {"error": ...} where one failed), uncached."""
    with tempfile.TemporaryDirectory(prefix="sft-tui-facts-") as tmp:
        dirs = []
        for i, config in enumerate(configs):
            folder = Path(tmp) / str(i)
            folder.mkdir()
            (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
            dirs.append(str(folder))
        env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_VERBOSITY="error", DO_NOT_TRACK="1")
        done = subprocess.run([str(python), str(FACTS_SCRIPT), *dirs], capture_output=True, text=True,
                              timeout=timeout, check=False, env=env)
    answers = []
    for line in done.stdout.splitlines():
        try:
            found = json.loads(line)
        except ValueError:
            continue
        if isinstance(found, dict):
            answers.append(found)
    if len(answers) != len(configs):
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise RuntimeError(last[:300])
    return answers


def facts_for(config: dict, python: Path | None = None) -> tuple[ModelFacts | None, str]:
    """(facts, how): the cached or freshly read facts and a note saying where the counts come
    from; (None, why not) when they cannot be had, and the config-only formulas stand."""
    if os.environ.get("SFT_TUI_MODEL_FACTS", "1").strip().lower() in {"0", "false", "no", "off"}:
        return None, "parameters from config.json alone (SFT_TUI_MODEL_FACTS=0)"
    cache = _cache_path(config)
    try:
        data = json.loads(cache.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        data = None
    if data is None:
        python = python or _training_python()
        if python is None:
            return None, ("parameters from config.json alone: no training environment with LLaMA-Factory "
                          "here to build the model on the meta device")
        try:
            (data,) = run_facts([config], python)
        except (OSError, RuntimeError, subprocess.TimeoutExpired) as err:
            return None, f"parameters from config.json alone: the training environment could not be asked ({err})"
        if "error" in data:
            return None, f"parameters from config.json alone: transformers could not build the model ({data['error']})"
        from tui.common.files import atomic_write

        try:
            atomic_write(cache, json.dumps(data, indent=1, sort_keys=True) + "\n")
        except OSError:
            pass  # a read-only cache costs a subprocess next time, nothing more
    try:
        facts = ModelFacts.from_json(data)
    except (KeyError, TypeError):
        return None, "parameters from config.json alone: the cached facts are unreadable"
    return facts, (f"parameters and linear layers from {facts.model_class} built on the meta device "
                   f"(transformers {facts.transformers})")
