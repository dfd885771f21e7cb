"""A ModelScope id's config.json, for `--modelscope` / USE_MODELSCOPE_HUB=1 (what LLaMA-Factory
downloads from then):

- the local ModelScope cache first (MODELSCOPE_CACHE, else ~/.cache/modelscope/hub; models under
  `models/ORG/NAME` or `ORG/NAME`, each dot of the name stored as `___`), no network;
- else ModelScope's own API (`modelscope.hub.file_download.model_file_download`, config.json only,
  into sft-tui's cache), only when the optional `modelscope` package is installed;
- else one sentence saying what to install or how to plan without it.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from tui.models.architecture import ModelError
from tui.models.hub import FoundConfig, _read

_TRUE = {"1", "true", "yes", "on", "y"}


def use_modelscope() -> bool:
    """USE_MODELSCOPE_HUB as LLaMA-Factory reads it (any of 1, true, yes, on)."""
    return os.environ.get("USE_MODELSCOPE_HUB", "").strip().lower() in _TRUE


def modelscope_cache_dir() -> Path:
    if os.environ.get("MODELSCOPE_CACHE"):
        return Path(os.environ["MODELSCOPE_CACHE"]).expanduser()
    return Path.home() / ".cache" / "modelscope" / "hub"


def cached_modelscope_config(model_id: str, cache_dir: Path | None = None) -> FoundConfig | None:
    cache_dir = cache_dir or modelscope_cache_dir()
    org, name = model_id.split("/", 1)
    for base in (cache_dir / "models", cache_dir):
        for folder in (name, name.replace(".", "___")):
            path = base / org / folder / "config.json"
            if path.is_file():
                return FoundConfig(_read(path), path, None, "modelscope",
                                   f"config.json from the ModelScope cache ({path.parent})")
    return None


def modelscope_config(model_id: str) -> FoundConfig:
    found = cached_modelscope_config(model_id)
    if found is not None:
        return found
    if importlib.util.find_spec("modelscope") is None:
        raise ModelError(
            f"{model_id} is not in the ModelScope cache ({modelscope_cache_dir()}), and looking it up on ModelScope "
            "needs the modelscope package (pip install modelscope); or plan with its Hugging Face id, "
            "a local model directory or a model profile"
        )
    from tui.common.resources import user_cache_dir

    try:
        from modelscope.hub.file_download import model_file_download

        path = Path(model_file_download(model_id=model_id, file_path="config.json",
                                        cache_dir=str(user_cache_dir() / "modelscope")))
    except Exception as err:  # noqa: BLE001 - modelscope's errors vary by version: one sentence, no traceback
        text = str(err).strip().splitlines()[0][:200] if str(err).strip() else ""
        raise ModelError(f"ModelScope has no config.json for {model_id} or cannot be reached "
                         f"({type(err).__name__}{': ' + text if text else ''})") from None
    return FoundConfig(_read(path), path, None, "modelscope", "config.json from ModelScope")
