"""Models: their architecture (from a profile or a local `config.json`), parameter counts
computed from it, the chat template, and whether a local model directory is complete.

Counts cover the dense decoder families LLaMA-Factory trains most (Llama, Qwen2, Qwen3,
Mistral): embeddings, per layer the q/k/v/o attention projections (with q/k/v biases where the
architecture has them), the gated MLP, the RMSNorms (and Qwen3's per-head q/k norms), the final
norm, and an untied lm_head. Mixture-of-experts models are refused rather than miscounted.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tui.common.profiles import ProfileSet
from tui.models.architecture import Architecture, ModelError

# The LLaMA-Factory template for a local model whose architecture matches no profile.
_TEMPLATE_BY_MODEL_TYPE = {"qwen2": "qwen", "qwen3": "qwen3", "llama": "llama3", "mistral": "mistral"}


@dataclass
class WeightCheck:
    complete: bool
    missing: list[str] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        said = [f"missing weight file {name}" for name in self.missing]
        said += [f"unfinished download {name}" for name in self.incomplete]
        return said


@dataclass
class ModelInfo:
    name: str
    source: str  # "profile" or "local"
    model_name_or_path: str  # what LLaMA-Factory's model_name_or_path gets
    architecture: Architecture
    template: str | None
    hub_ids: list[str] = field(default_factory=list)
    profile_path: Path | None = None
    weights: WeightCheck | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def params(self) -> int:
        return self.architecture.param_count()

    def to_json(self) -> dict:
        data = asdict(self)
        data["params"] = self.params
        data["profile_path"] = str(self.profile_path) if self.profile_path else None
        return data


def _looks_like_path(spec: str) -> bool:
    return spec.startswith(("/", "./", "../", "~")) or Path(spec).expanduser().is_dir()


def resolve_model(spec: str, profiles: ProfileSet) -> ModelInfo:
    """A model by profile name, by a hub id a profile covers (case-insensitive), or a local
    directory. A profile name resolves to its first hub id for LLaMA-Factory to download."""
    if _looks_like_path(spec):
        return read_local_model(Path(spec).expanduser(), profiles)
    wanted = spec.lower()
    for profile in profiles.of("models"):
        hub_ids = profile.data["hub_ids"]
        if wanted == profile.name or wanted in (h.lower() for h in hub_ids):
            exact = next((h for h in hub_ids if h.lower() == wanted), hub_ids[0])
            return ModelInfo(
                name=profile.name,
                source="profile",
                model_name_or_path=exact,
                architecture=Architecture.from_config(profile.data["architecture"]),
                template=profile.data["template"],
                hub_ids=list(hub_ids),
                profile_path=profile.source,
            )
    raise ModelError(
        f"unknown model {spec!r}: not a model profile, a hub id one covers, or a local directory "
        f"(known: {', '.join(profiles.names('models'))}; `sft-tui profiles models` lists their hub ids)"
    )


def read_local_model(path: Path, profiles: ProfileSet) -> ModelInfo:
    if not path.is_dir():
        raise ModelError(f"{path}: no such model directory")
    config_path = path / "config.json"
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{path}: no config.json, so this is not a Hugging Face model directory") from None
    except (OSError, ValueError) as err:
        raise ModelError(f"{config_path}: cannot be read as JSON ({err})") from None
    architecture = Architecture.from_config(config)
    notes = []
    template, profile_name = _template_for(architecture, profiles)
    if profile_name:
        notes.append(f"architecture matches the {profile_name} profile; template from it")
    elif template:
        notes.append(f"template {template} guessed from model_type {architecture.model_type}")
    else:
        notes.append(f"no template known for model_type {architecture.model_type}; choose one")
    return ModelInfo(
        name=path.resolve().name,
        source="local",
        model_name_or_path=str(path.resolve()),
        architecture=architecture,
        template=template,
        weights=check_weights(path),
        notes=notes,
    )


def _template_for(architecture: Architecture, profiles: ProfileSet) -> tuple[str | None, str | None]:
    for profile in profiles.of("models"):
        if Architecture.from_config(profile.data["architecture"]).shape() == architecture.shape():
            return profile.data["template"], profile.name
    return _TEMPLATE_BY_MODEL_TYPE.get(architecture.model_type), None


def check_weights(path: Path) -> WeightCheck:
    """Every shard an index names is present, and no download was left unfinished."""
    incomplete = sorted(p.name for p in path.glob("*.incomplete"))
    missing: list[str] = []
    notes: list[str] = []
    for index_name in ("model.safetensors.index.json", "pytorch_model.bin.index.json"):
        index_path = path / index_name
        if index_path.is_file():
            try:
                shards = set(json.loads(index_path.read_text(encoding="utf-8"))["weight_map"].values())
            except (OSError, ValueError, KeyError, AttributeError):
                return WeightCheck(False, [index_name], incomplete, [f"{index_name} is unreadable"])
            missing = sorted(s for s in shards if not (path / s).is_file())
            notes.append(f"{len(shards)} shard(s) listed in {index_name}")
            break
    else:
        singles = ("model.safetensors", "pytorch_model.bin")
        if not any((path / name).is_file() for name in singles):
            missing = ["model.safetensors (or pytorch_model.bin)"]
    if not any((path / t).is_file() for t in ("tokenizer.json", "tokenizer.model", "vocab.json")):
        notes.append("no tokenizer files (tokenizer.json, tokenizer.model or vocab.json)")
    return WeightCheck(not missing and not incomplete, missing, incomplete, notes)
