"""Models: a model named by profile, local directory or hub id, resolved to its architecture
(from a profile or a `config.json`), its parameter counts, the LLaMA-Factory chat template, and
whether a local model directory is complete.

Resolution order: a profile (by name or a hub id it covers); a local directory; the local Hugging
Face cache (no network); the hub (config.json only, through tui/models/hub.py). A name that is none
of these gets "did you mean" from the profiles and LLaMA-Factory's model table.
"""

from __future__ import annotations

import difflib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tui.common.profiles import ProfileSet
from tui.models import lf_table
from tui.models.architecture import Architecture, ModelError


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
    source: str  # "profile", "local", "cache" (the Hugging Face cache), "hub" or "modelscope"
    model_name_or_path: str  # what LLaMA-Factory's model_name_or_path gets
    architecture: Architecture
    template: str | None
    hub_ids: list[str] = field(default_factory=list)
    profile_path: Path | None = None
    weights: WeightCheck | None = None
    notes: list[str] = field(default_factory=list)
    counts_from: str = "config"  # "profile", "config" (config.json's formulas) or "meta-device" (the facts)

    @property
    def params(self) -> int:
        """Every parameter: the language model's and a multimodal model's vision tower."""
        return self.architecture.param_count() + self.architecture.vision_params

    @property
    def active_params(self) -> int:
        """Parameters a token passes through: all of them, but for a mixture of experts."""
        return self.architecture.active_param_count() + self.architecture.vision_params

    @property
    def multimodal(self) -> bool:
        return self.architecture.multimodal

    @property
    def vision_params(self) -> int:
        """The vision tower and projector, frozen by LLaMA-Factory's defaults."""
        return self.architecture.vision_params

    def to_json(self) -> dict:
        data = asdict(self)
        data["architecture"].pop("exact_linear", None)
        data["multimodal"] = self.multimodal
        data["vision_params"] = self.vision_params
        data["id"] = self.model_name_or_path
        data["params"] = self.params
        data["active_params"] = self.active_params
        data["experts"] = self.architecture.num_experts if self.architecture.is_moe else None
        data["experts_per_token"] = self.architecture.experts_per_token
        data["profile_path"] = str(self.profile_path) if self.profile_path else None
        return data


def _looks_like_path(spec: str) -> bool:
    return spec.startswith(("/", "./", "../", "~")) or Path(spec).expanduser().is_dir()


def resolve_model(spec: str, profiles: ProfileSet, modelscope: bool | None = None) -> ModelInfo:
    """A model by profile name or a hub id a profile covers (any case), a local directory, or a hub
    id found in the Hugging Face cache or on the hub; with `modelscope` (default: USE_MODELSCOPE_HUB
    set), a ModelScope id in the ModelScope cache or on ModelScope. A profile name resolves to its
    first hub id for LLaMA-Factory to download."""
    spec = spec.strip()
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
                counts_from="profile",
            )
    from tui.models.hub import NotOnHub, cached_config, hub_config, looks_like_hub_id

    if not looks_like_hub_id(spec):
        raise ModelError(f"unknown model {spec!r}: {_did_you_mean(spec, profiles)}")
    from tui.models.modelscope import modelscope_config, use_modelscope

    if modelscope if modelscope is not None else use_modelscope():
        return _from_hub_config(spec, modelscope_config(spec))
    found = cached_config(spec)
    if found is None:
        try:
            found = hub_config(spec)
        except NotOnHub as err:
            raise ModelError(f"{err}; {_did_you_mean(spec, profiles)}") from None
        except ModelError as err:  # offline or unreachable: a typo of a known id still gets its fix
            close = [] if lf_table.lookup(spec) else _close_names(spec, profiles)
            if close:
                raise ModelError(f"{err}; or did you mean {', '.join(close[:5])}?") from None
            raise
    return _from_hub_config(spec, found)


def _did_you_mean(spec: str, profiles: ProfileSet) -> str:
    close = _close_names(spec, profiles)
    what = ("a model profile, a hub id (org/name) or a local directory; "
            "`sft-tui profiles models --search TEXT` searches the profiles and LLaMA-Factory's models")
    return f"did you mean {', '.join(close[:5])}? ({what})" if close else f"name {what}"


def _close_names(spec: str, profiles: ProfileSet) -> list[str]:
    """Profiles, their hub ids and LLaMA-Factory's hub ids close to `spec`, closest first."""
    names = {name.lower(): name for name in profiles.names("models")}
    names |= {h.lower(): h for p in profiles.of("models") for h in p.data["hub_ids"]}
    close = [names[k] for k in difflib.get_close_matches(spec.lower(), list(names), n=3, cutoff=0.6)]
    for suggestion in lf_table.suggest(spec):  # LLaMA-Factory's names are not ids: give the hub id
        listed = lf_table.lookup(suggestion)
        hub_id = suggestion if "/" in suggestion else (listed.hf if listed else None)
        if hub_id and hub_id.lower() not in {c.lower() for c in close}:
            close.append(hub_id)
    return close


def _from_hub_config(repo_id: str, found) -> ModelInfo:
    try:
        architecture = Architecture.from_config(found.config)
    except ModelError as err:
        raise ModelError(f"{repo_id}: {err}") from None
    architecture, counts_from, measured_notes = measured(architecture, found.config)
    template, template_note = hub_template(repo_id, family_type(architecture, found.config))
    notes = [found.note, template_note, *measured_notes, *architecture_notes(architecture)]
    weights = check_weights(found.path.parent) if found.source == "cache" else None
    if weights is not None and not weights.complete:
        notes.append("the cached snapshot lacks weights: LLaMA-Factory downloads them when training starts")
    return ModelInfo(
        name=repo_id.split("/", 1)[1],
        source=found.source,
        model_name_or_path=repo_id,
        architecture=architecture,
        template=template,
        hub_ids=[repo_id],
        weights=weights,
        notes=notes,
        counts_from=counts_from,
    )


def family_type(architecture: Architecture, config: dict) -> str:
    """The model_type that names the family: a multimodal wrapper's own (qwen2_vl), not its text model's."""
    return str(config.get("model_type") or architecture.model_type) if architecture.multimodal else architecture.model_type


def measured(architecture: Architecture, config: dict) -> tuple[Architecture, str, list[str]]:
    """The architecture with the meta-device facts where the training environment gives them
    (else the config-only counts), where the counts come from, and the notes saying so."""
    from tui.models.facts import facts_for
    from tui.models.vision import image_tokens_note

    facts, how = facts_for(config)
    if facts is not None:
        architecture = facts.apply(architecture)
    notes = [how]
    if architecture.multimodal:
        if architecture.vision_params:
            notes.append(f"multimodal: a {architecture.vision_params / 1e9:.2f}B-parameter vision tower and projector, "
                         "frozen (LLaMA-Factory's freeze_vision_tower default) and held in the weights")
        else:
            notes.append(f"multimodal: the vision tower of {config.get('model_type', '?')} is not sized from config.json "
                         "alone; its parameters are not in the estimate")
        tokens = image_tokens_note(config)
        if tokens:
            notes.append(tokens)
    return architecture, "meta-device" if facts is not None else "config", notes


def hub_template(repo_id: str, model_type: str) -> tuple[str | None, str]:
    """(template, note): LLaMA-Factory's for this hub id, else the usual one of its family."""
    template = lf_table.template_for(repo_id)
    if template:
        return template, f"template {template} from LLaMA-Factory's model table"
    return _family_template(model_type)


def _family_template(model_type: str) -> tuple[str | None, str]:
    template = lf_table.family_template(model_type)
    if template:
        return template, f"template {template} is the usual one for {model_type}; check it"
    return None, f"no LLaMA-Factory template known for model_type {model_type}; choose one (template=...)"


def architecture_notes(architecture: Architecture) -> list[str]:
    notes = []
    if not architecture.known_family:
        notes.append(f"model_type {architecture.model_type} is not a family sft-tui knows; "
                     "parameters counted as for a Llama-like decoder")
    if architecture.is_moe:
        notes.append(f"mixture of experts: {architecture.num_experts} experts, {architecture.experts_per_token} per "
                     f"token; {architecture.active_param_count() / 1e9:.2f}B of "
                     f"{architecture.param_count() / 1e9:.2f}B parameters active per token")
    return notes


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
    try:
        architecture = Architecture.from_config(config)
    except ModelError as err:
        raise ModelError(f"{config_path}: {err}") from None
    notes = []
    template, profile_name = _template_for(architecture, profiles)
    if profile_name:
        notes.append(f"architecture matches the {profile_name} profile; template from it")
    else:
        template, note = _family_template(family_type(architecture, config))
        notes.append(note)
    architecture, counts_from, measured_notes = measured(architecture, config)
    notes += measured_notes + architecture_notes(architecture)
    return ModelInfo(
        name=path.resolve().name,
        source="local",
        model_name_or_path=str(path.resolve()),
        architecture=architecture,
        template=template,
        weights=check_weights(path),
        notes=notes,
        counts_from=counts_from,
    )


def _template_for(architecture: Architecture, profiles: ProfileSet) -> tuple[str | None, str | None]:
    """The template of the profile with this architecture; where several share it (a distilled model
    and its base), the one with the same context length."""
    matches = []
    for profile in profiles.of("models"):
        theirs = Architecture.from_config(profile.data["architecture"])
        if theirs.shape() == architecture.shape():
            matches.append((theirs.max_position_embeddings != architecture.max_position_embeddings, profile))
    if not matches:
        return None, None
    _, profile = min(matches, key=lambda match: match[0])
    return profile.data["template"], profile.name


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
