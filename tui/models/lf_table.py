"""LLaMA-Factory's model table, read as data: hub id or LLaMA-Factory name -> its entry and template.

The table is profiles/llamafactory-models.json, written by tui/lf/model_table.py in the training
environment (this module never imports llamafactory). Each entry holds LLaMA-Factory's name, its
hub ids (`hf`, `modelscope`, `openmind`), `template` (LLaMA-Factory's DEFAULT_TEMPLATE, set only
for chat/instruct and multimodal models), `group_template` (the template of the group the model
was registered in, base models included), `group` and `multimodal`.

Look-ups ignore case and also go through RENAMES: hub ids that moved after (or before) LLaMA-Factory
recorded them, which the hub still redirects, so a user may type either spelling.
"""

from __future__ import annotations

import difflib
import json
from collections import Counter
from dataclasses import dataclass
from functools import cache

from tui.common.resources import data_dir

TABLE_FILE = "llamafactory-models.json"

# (old, new) hub-id prefixes, tried both ways: LLaMA-Factory's table holds one spelling of each.
RENAMES = (
    # Meta renamed the Llama 3.1 repos; LLaMA-Factory 0.9.5 still lists meta-llama/Meta-Llama-3.1-*.
    ("meta-llama/Meta-Llama-3.1-", "meta-llama/Llama-3.1-"),
    # Zhipu's organisation became zai-org (2025); LLaMA-Factory lists zai-org, older guides say THUDM.
    ("THUDM/", "zai-org/"),
    # Cohere's research organisation became CohereLabs (2025); LLaMA-Factory lists CohereForAI.
    ("CohereForAI/", "CohereLabs/"),
    # LLaMA-Factory misspells TII's organisation for Falcon-H1-1.5B-Deep-Base; the hub id is tiiuae/.
    ("tiuae/", "tiiuae/"),
)

# config.json's model_type -> the LLaMA-Factory name prefixes of the models with that architecture.
# model_type is not in LLaMA-Factory's table, so this link is hand-written; the template itself is
# read from the table (the most common one among those models), so it follows LLaMA-Factory.
# Where one model_type spans generations with different templates, the prefixes pick the
# generation people fine-tune today (llama: Llama 3.x, not Llama 2).
FAMILY_PREFIXES = {
    "llama": ("Llama-3",),
    "mistral": ("Mistral-7B",),
    "mixtral": ("Mixtral",),
    "qwen2": ("Qwen2-", "Qwen2.5-"),
    "qwen2_moe": ("Qwen2-57B-A14B",),
    "qwen3": ("Qwen3-",),
    "qwen3_moe": ("Qwen3-30B-A3B", "Qwen3-235B-A22B"),
    "gemma": ("Gemma-2B", "Gemma-7B", "Gemma-1.1-"),
    "gemma2": ("Gemma-2-",),
    "gemma3": ("Gemma-3-",),
    "qwen2_vl": ("Qwen2-VL-",),
    "qwen2_5_vl": ("Qwen2.5-VL-",),
    "llava": ("LLaVA-1.5-",),
    "glm4": ("GLM-4-",),
    "phi3": ("Phi-3-", "Phi-3.5-"),
    "deepseek_v2": ("DeepSeek-V2-", "DeepSeek-V2.5-"),
    "deepseek_v3": ("DeepSeek-V3-",),
    "granite": ("Granite-3",),
    "internlm2": ("InternLM2-", "InternLM2.5-"),
}

# Templates for families LLaMA-Factory has a template for but no model of in its table:
# LLaMA-Factory 0.9.5 defines "olmo" (OLMo 2's chat format) and lists only OLMo 1 models.
FALLBACK_TEMPLATES = {"olmo2": "olmo"}


@dataclass(frozen=True)
class LFModel:
    """One model of LLaMA-Factory's table (see tui/lf/model_table.py for the fields)."""

    name: str
    group: str
    hf: str | None = None
    modelscope: str | None = None
    openmind: str | None = None
    template: str | None = None
    group_template: str | None = None
    multimodal: bool = False

    @property
    def hub_ids(self) -> tuple[str, ...]:
        return tuple(hub_id for hub_id in (self.hf, self.modelscope, self.openmind) if hub_id)

    @property
    def chat_template(self) -> str | None:
        """The template to train and chat with: LLaMA-Factory's own pick, else its group's.

        LLaMA-Factory names a default only for chat/instruct models; a base model has no chat
        format of its own, and its family's template is what its instruct sibling was tuned with.
        """
        return self.template or self.group_template


@dataclass(frozen=True)
class _Table:
    models: tuple[LFModel, ...]
    by_key: dict[str, LFModel]  # lower-cased hub id or name -> model
    candidates: dict[str, str]  # lower-cased hub id or name -> its spelling, for suggest()


@cache
def _table() -> _Table:
    raw = json.loads((data_dir("profiles") / TABLE_FILE).read_text(encoding="utf-8"))
    models = tuple(LFModel(**entry) for entry in raw["models"])
    by_key: dict[str, LFModel] = {}
    # Hugging Face ids first, then names, then the other hubs: LLaMA-Factory reuses a few ModelScope
    # ids for two models (Qwen2.5-Math-7B-Instruct's is Qwen2.5-Coder-7B-Instruct's), and the model
    # whose Hugging Face id it is keeps it.
    for key_of in (lambda m: [m.hf], lambda m: [m.name], lambda m: [m.modelscope, m.openmind]):
        for model in models:
            for key in key_of(model):
                if key:
                    by_key.setdefault(key.lower(), model)
    candidates = {spelling.lower(): spelling for model in models for spelling in (model.name, *model.hub_ids)}
    return _Table(models, by_key, candidates)


def _key(text: str) -> str:
    return text.strip().rstrip("/").lower()


def lookup(hub_id: str) -> LFModel | None:
    """The entry for a hub id (Hugging Face, ModelScope, openMind) or LLaMA-Factory name, any case."""
    table = _table()
    key = _key(hub_id)
    if key in table.by_key:
        return table.by_key[key]
    for old, new in RENAMES:
        for typed, listed in ((old.lower(), new.lower()), (new.lower(), old.lower())):
            if key.startswith(typed):
                renamed = listed + key[len(typed) :]
                if renamed in table.by_key:
                    return table.by_key[renamed]
    return None


def hub_ids() -> list[str]:
    """Every Hugging Face hub id of the table, in the table's order (for completing what is typed)."""
    return [model.hf for model in _table().models if model.hf]


def template_for(hub_id: str) -> str | None:
    """The LLaMA-Factory template for a hub id or name (LFModel.chat_template), None if unknown."""
    model = lookup(hub_id)
    return model.chat_template if model else None


def search(text: str, limit: int = 20) -> list[LFModel]:
    """Models whose name or hub id contains `text` (any case): exact matches, then prefixes, then the rest.

    A hub id also matches by its repository part alone ("qwen2.5-7b" is a prefix of
    "Qwen/Qwen2.5-7B-Instruct"). Within a rank, shorter names come first.
    """
    needle = _key(text)
    if not needle:
        return []
    ranked = []
    for model in _table().models:
        spellings = [model.name, *model.hub_ids, *(hub_id.split("/", 1)[-1] for hub_id in model.hub_ids)]
        rank = min(_rank(needle, spelling.lower()) for spelling in spellings)
        if rank < 3:
            ranked.append((rank, len(model.name), model.name.lower(), model))
    return [model for *_, model in sorted(ranked, key=lambda row: row[:3])[:limit]]


def _rank(needle: str, haystack: str) -> int:
    """0 exact, 1 prefix, 2 substring, 3 no match."""
    if haystack == needle:
        return 0
    if haystack.startswith(needle):
        return 1
    return 2 if needle in haystack else 3


def suggest(text: str, limit: int = 3) -> list[str]:
    """Hub ids and LLaMA-Factory names close to `text`, for "did you mean" (difflib, any case)."""
    candidates = _table().candidates
    return [candidates[key] for key in difflib.get_close_matches(_key(text), list(candidates), n=limit)]


def family_template(model_type: str) -> str | None:
    """The usual LLaMA-Factory template for a config.json model_type, None if no family is known.

    The most common template among the table's models of that family (FAMILY_PREFIXES), ties to
    the alphabetically first; FALLBACK_TEMPLATES where the table lists none of them.
    """
    prefixes = tuple(prefix.lower() for prefix in FAMILY_PREFIXES.get(model_type, ()))
    counts = Counter(
        model.chat_template
        for model in _table().models
        if prefixes and model.name.lower().startswith(prefixes) and model.chat_template
    )
    if counts:
        return min(counts, key=lambda template: (-counts[template], template))
    return FALLBACK_TEMPLATES.get(model_type)
