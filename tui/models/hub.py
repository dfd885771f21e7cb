"""A hub id's config.json, from the local Hugging Face cache or from the hub, without a traceback.

- `cached_config` looks in the Hugging Face cache (HF_HUB_CACHE, else HF_HOME/hub, else
  ~/.cache/huggingface/hub): what `huggingface-cli download` or an earlier training run left.
  It never touches the network.
- `hub_config` downloads only config.json through `huggingface_hub.hf_hub_download`, honouring
  HF_ENDPOINT, HF_TOKEN (or the token `hf auth login` saved) and HF_HUB_OFFLINE. It keeps what it
  fetched in sft-tui's own cache (platformdirs' user cache dir, `hub/`, laid out like the Hugging
  Face cache), so the user's Hugging Face cache only ever holds what they downloaded themselves,
  and a look-up done once still answers offline.

huggingface_hub is imported inside the functions: sft-tui's start-up never pays for it. The
environment is read at call time and passed explicitly, because huggingface_hub reads its own
settings once, when first imported.
"""

from __future__ import annotations

import json
import logging
import os
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tui.models.architecture import ModelError

HUB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$")
DEFAULT_ENDPOINT = "https://huggingface.co"
_TRUE = {"1", "true", "yes", "on"}
_OFFLINE_HINT = ("to plan offline, name a local model directory or a model profile "
                 "(`sft-tui profiles models --search TEXT` lists them)")


class NotOnHub(ModelError):
    """The hub has no such repository (or hides it: private or gated without a token)."""


@dataclass
class FoundConfig:
    config: dict
    path: Path  # the config.json read
    commit: str | None  # the snapshot's commit, when known
    source: str  # "cache" (the user's Hugging Face cache) or "hub"
    note: str


def looks_like_hub_id(spec: str) -> bool:
    return bool(HUB_ID.match(spec))


def hf_cache_dir() -> Path:
    """The Hugging Face hub cache, as huggingface_hub would pick it from the environment now."""
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(name):
            return Path(os.environ[name]).expanduser()
    return hf_home() / "hub"


def hf_home() -> Path:
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(xdg).expanduser() / "huggingface"


def sft_tui_hub_cache() -> Path:
    """Where sft-tui keeps the config.json files it fetched (platformdirs' user cache dir)."""
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("sft-tui")) / "hub"


def hub_offline() -> bool:
    return any(os.environ.get(name, "").strip().lower() in _TRUE for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def hub_endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def hub_token() -> str | None:
    """HF_TOKEN, else the token `hf auth login` saved (HF_TOKEN_PATH, else HF_HOME/token)."""
    if os.environ.get("HF_TOKEN", "").strip():
        return os.environ["HF_TOKEN"].strip()
    path = Path(os.environ.get("HF_TOKEN_PATH") or hf_home() / "token").expanduser()
    try:
        return path.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def _read(path: Path) -> dict:
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ModelError(f"{path}: cannot be read as JSON ({err}); delete it and look the model up again") from None
    if not isinstance(config, dict):
        raise ModelError(f"{path}: not a JSON object, so not a model's config.json")
    return config


def _snapshot_commit(path: Path) -> str | None:
    return path.parent.name if path.parent.parent.name == "snapshots" else None


def cached_config(repo_id: str, cache_dir: Path | None = None) -> FoundConfig | None:
    """config.json of `repo_id` (main revision) in a Hugging Face cache, or None. Offline."""
    from huggingface_hub import try_to_load_from_cache

    cache_dir = cache_dir or hf_cache_dir()
    found = try_to_load_from_cache(repo_id, "config.json", cache_dir=str(cache_dir))
    if not isinstance(found, str):  # None, or the marker of a file known not to exist
        return None
    path = Path(found)
    return FoundConfig(_read(path), path, _snapshot_commit(path), "cache",
                       f"config.json from the Hugging Face cache ({path.parent})")


def hub_config(repo_id: str) -> FoundConfig:
    """config.json of `repo_id` from the hub (or sft-tui's cache of it when offline).

    One HEAD request first, without huggingface_hub's retries (which back off for half a minute
    when there is no network), so that an unreachable hub is said at once.
    """
    path, offline = hub_file(repo_id, "config.json")
    endpoint = hub_endpoint()
    when = "from sft-tui's cache of an earlier hub look-up (hub not reached)" if offline else f"from {endpoint}"
    return FoundConfig(_read(path), path, _snapshot_commit(path), "hub", f"config.json {when}")


def hub_tokenizer(repo_id: str) -> Path:
    """tokenizer.json of `repo_id`, for exact token counts: from the Hugging Face cache when it is
    there (offline), else fetched from the hub into sft-tui's cache (only that file)."""
    from huggingface_hub import try_to_load_from_cache

    found = try_to_load_from_cache(repo_id, "tokenizer.json", cache_dir=str(hf_cache_dir()))
    if isinstance(found, str):
        return Path(found)
    return hub_file(repo_id, "tokenizer.json")[0]


def hub_file(repo_id: str, filename: str) -> tuple[Path, bool]:
    """(`filename` of `repo_id` from the hub, or sft-tui's cache of it when the hub cannot be
    reached; whether it came from that cache)."""
    import httpx
    from huggingface_hub import get_hf_file_metadata, hf_hub_download, hf_hub_url
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    endpoint, token, offline = hub_endpoint(), hub_token(), hub_offline()
    cache_dir = str(sft_tui_hub_cache())
    with _quiet_hub_logging():
        try:
            if not offline:
                try:
                    get_hf_file_metadata(hf_hub_url(repo_id, filename, endpoint=endpoint), token=token or False,
                                         timeout=10, endpoint=endpoint)
                except httpx.TransportError:  # no network, DNS, refused, timed out: use what was fetched before
                    offline = True
            found = hf_hub_download(repo_id, filename, cache_dir=cache_dir, endpoint=endpoint,
                                    token=token or False, local_files_only=offline, etag_timeout=10)
        except LocalEntryNotFoundError:
            if hub_offline():
                raise ModelError(f"HF_HUB_OFFLINE is set and {repo_id} is not in the Hugging Face cache "
                                 f"({hf_cache_dir()}): {_OFFLINE_HINT}") from None
            raise ModelError(f"cannot reach the hub ({endpoint}) and {repo_id} is not in the Hugging Face cache "
                             f"({hf_cache_dir()}): {_OFFLINE_HINT}") from None
        except HfHubHTTPError as err:
            raise _hub_error(err, repo_id, endpoint, token, filename) from None
        except (httpx.TransportError, OSError) as err:
            raise ModelError(f"cannot reach the hub ({endpoint}): {err.__class__.__name__}; {_OFFLINE_HINT}") from None
    return Path(found), offline


def _hub_error(err, repo_id: str, endpoint: str, token: str | None, filename: str = "config.json") -> ModelError:
    """One sentence for an error the hub answered."""
    from huggingface_hub.errors import (
        GatedRepoError,
        RemoteEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    status = err.response.status_code if getattr(err, "response", None) is not None else None
    if isinstance(err, GatedRepoError) or status == 403:
        return ModelError(_gated(repo_id, endpoint, token))
    if isinstance(err, RepositoryNotFoundError):
        login = "" if token else "; if it is private or gated, run `hf auth login` or set HF_TOKEN"
        return NotOnHub(f"{repo_id} is not a model on {endpoint} (check the spelling{login})")
    if isinstance(err, RevisionNotFoundError):
        return ModelError(f"{repo_id} has no main revision on {endpoint}")
    if isinstance(err, RemoteEntryNotFoundError) and filename != "config.json":
        return ModelError(f"{repo_id} on {endpoint} has no {filename}: give --tokenizer a local directory with one")
    if isinstance(err, RemoteEntryNotFoundError):
        base = _adapter_base(repo_id, endpoint, token)
        if base is not None:
            return ModelError(
                f"{repo_id} is a LoRA adapter (adapter_config.json, no config.json) trained on {base}: plan with "
                f"--model {base}, and give the adapter to LLaMA-Factory as adapter_name_or_path={repo_id}"
            )
        return ModelError(
            f"{repo_id} exists on {endpoint} but has no config.json, so it is not a Transformers model "
            "LLaMA-Factory can load (a GGUF or ONNX repository?); name the model it was made from"
        )
    return ModelError(f"the hub ({endpoint}) answered {status or 'an error'} for {repo_id}; try again later")


def _adapter_base(repo_id: str, endpoint: str, token: str | None) -> str | None:
    """The base model a PEFT adapter repository names in its adapter_config.json, or None."""
    from huggingface_hub import hf_hub_download

    try:
        path = hf_hub_download(repo_id, "adapter_config.json", cache_dir=str(sft_tui_hub_cache()), endpoint=endpoint,
                               token=token or False, etag_timeout=10)
        base = json.loads(Path(path).read_text(encoding="utf-8")).get("base_model_name_or_path")
    except Exception:  # noqa: BLE001 - only a better message is at stake: any failure means "not an adapter"
        return None
    return base if isinstance(base, str) and base else "the model it names"


@contextmanager
def _quiet_hub_logging():
    """huggingface_hub logs its retries and warnings to stderr; sft-tui says one sentence instead.

    Its telemetry is turned off too: with it on, building the request headers fetches an "agent
    harnesses" list from huggingface.co (whatever HF_ENDPOINT says), a request sft-tui never asked for.
    """
    from huggingface_hub import constants

    constants.HF_HUB_DISABLE_TELEMETRY = True
    logger = logging.getLogger("huggingface_hub")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _gated(repo_id: str, endpoint: str, token: str | None) -> str:
    page = f"{endpoint}/{repo_id}"
    if token:
        return (f"{repo_id} is a gated model and your token has no access to it yet: accept its licence on "
                f"{page} (signed in as the token's owner), then try again")
    return (f"{repo_id} is a gated model: accept its licence on {page}, then run `hf auth login` "
            "or set HF_TOKEN, and try again")
