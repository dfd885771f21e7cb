"""Where sft-tui's data folders are: `templates/`, `schemas/`, `profiles/`, `samples/` (the demo's data).

In a source checkout (editable install) they sit at the top of the repository, beside `tui/`;
in a wheel they are shipped inside the package as `tui/_data/<name>` (see pyproject.toml).
Users add their own profiles under `user_config_dir("sft-tui")/profiles/<kind>/`.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parents[1]  # tui/
DATA_FOLDERS = ("templates", "schemas", "profiles", "samples")


@cache
def data_dir(name: str) -> Path:
    """The shipped folder `name` (one of DATA_FOLDERS)."""
    if name not in DATA_FOLDERS:
        raise ValueError(f"unknown data folder {name!r}")
    for candidate in (_PACKAGE_DIR / "_data" / name, _PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"sft-tui's {name}/ folder is missing (looked in {_PACKAGE_DIR / '_data'} and "
        f"{_PACKAGE_DIR.parent}); reinstall sft-tui"
    )


def user_config_dir() -> Path:
    """The user's sft-tui config folder (platformdirs; XDG_CONFIG_HOME is honoured on Linux)."""
    from platformdirs import user_config_dir as _user_config_dir

    return Path(_user_config_dir("sft-tui"))


def user_profiles_dir() -> Path:
    return user_config_dir() / "profiles"


def user_cache_dir() -> Path:
    """The user's sft-tui cache folder (platformdirs; XDG_CACHE_HOME is honoured on Linux)."""
    from platformdirs import user_cache_dir as _user_cache_dir

    return Path(_user_cache_dir("sft-tui"))
