"""A ModelScope id's config.json, for `--modelscope` / USE_MODELSCOPE_HUB=1 (what LLaMA-Factory
downloads from then):

- the local ModelScope cache first (MODELSCOPE_CACHE, else ~/.cache/modelscope/hub; models under
  `models/ORG/NAME` or `ORG/NAME`, each dot of the name stored as `___`), no network;
- else ModelScope's own API (`modelscope.hub.file_download.model_file_download`, config.json only,
  into sft-tui's cache), only where the optional `modelscope` package is installed (here, or in the
  training environment: LLaMA-Factory depends on it), in a subprocess (modelscope imports torch);
- else one sentence saying what to install or how to plan without it.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

from tui.models.architecture import ModelError
from tui.models.hub import FoundConfig, _read

_TRUE = {"1", "true", "yes", "on", "y"}
DOWNLOAD_TIMEOUT_S = 120
# Errors end the script with one line on stderr: "ErrorName: message".
_DOWNLOAD = (
    "import sys\n"
    "try:\n"
    "    from modelscope.hub.file_download import model_file_download\n"
    "    print(model_file_download(model_id=sys.argv[1], file_path='config.json', cache_dir=sys.argv[2]))\n"
    "except Exception as err:\n"
    "    sys.exit(f'{type(err).__name__}: {str(err).strip()[:200]}'.splitlines()[0])\n"
)


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
    python = _modelscope_python()
    if python is None:
        raise ModelError(
            f"{model_id} is not in the ModelScope cache ({modelscope_cache_dir()}), and looking it up on ModelScope "
            "needs the modelscope package (pip install modelscope); or plan with its Hugging Face id, "
            "a local model directory or a model profile"
        )
    from tui.common.resources import user_cache_dir

    try:  # a subprocess: modelscope imports torch, which the TUI process never does
        done = subprocess.run([str(python), "-c", _DOWNLOAD, model_id, str(user_cache_dir() / "modelscope")],
                              capture_output=True, text=True, timeout=DOWNLOAD_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise ModelError(f"ModelScope could not be asked for {model_id} ({type(err).__name__})") from None
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines or not Path(lines[-1]).is_file():
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1][:200]
        raise ModelError(f"ModelScope has no config.json for {model_id} or cannot be reached ({last})")
    path = Path(lines[-1])
    return FoundConfig(_read(path), path, None, "modelscope", "config.json from ModelScope")


def _modelscope_python() -> Path | None:
    """A python that has modelscope: this one (the optional extra), else the training environment's
    (LLaMA-Factory depends on modelscope)."""
    if importlib.util.find_spec("modelscope") is not None:
        return Path(sys.executable)
    from tui.hardware.environment import find_llamafactory

    found = find_llamafactory()
    return found.python if found else None
