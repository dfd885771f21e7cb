"""Profiles: YAML files of named hardware, models and recipes.

Built-in profiles ship in `profiles/<kind>/<name>.yaml`; a user's own go in
`user_config_dir("sft-tui")/profiles/<kind>/<name>.yaml`, and a user profile with the same
name wins. Every file is validated against its JSON Schema; a broken file is reported with its
path and the failing field, and the others still load.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from tui.common.resources import data_dir, user_profiles_dir
from tui.common.schemas import schema_errors
from tui.common.text import close_names

KINDS = ("hardware", "models", "recipes")
SCHEMA_OF_KIND = {
    "hardware": "hardware-profile",
    "models": "model-profile",
    "recipes": "recipe-profile",
}
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


@dataclass(frozen=True)
class Profile:
    name: str
    kind: str
    source: Path
    data: dict
    origin: str  # "built-in" or "user"
    overrides: Path | None = None  # the built-in file a user profile replaces


@dataclass(frozen=True)
class ProfileProblem:
    path: Path
    field: str  # JSON pointer, "" for the whole file
    message: str

    def __str__(self) -> str:
        where = f"{self.field}: " if self.field else ""
        return f"{self.path}: {where}{self.message}"


@dataclass
class ProfileSet:
    by_kind: dict[str, dict[str, Profile]] = field(default_factory=dict)
    problems: list[ProfileProblem] = field(default_factory=list)

    def of(self, kind: str) -> list[Profile]:
        return sorted(self.by_kind.get(kind, {}).values(), key=lambda p: p.name)

    def get(self, kind: str, name: str) -> Profile | None:
        return self.by_kind.get(kind, {}).get(name.lower())

    def names(self, kind: str) -> list[str]:
        return [p.name for p in self.of(kind)]

    def close_names(self, kind: str, typed: str) -> list[str]:
        """The profiles of `kind` a mistyped or cut-short name may mean ("did you mean")."""
        return close_names(typed, self.names(kind))


def read_profile_file(path: Path, kind: str) -> tuple[dict | None, list[ProfileProblem]]:
    """The file's data if it is valid YAML matching the kind's schema, else its problems."""
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_YAML_LOADER)
    except OSError as err:
        return None, [ProfileProblem(path, "", f"cannot be read ({err.strerror})")]
    except UnicodeDecodeError:
        return None, [ProfileProblem(path, "", "is not UTF-8 text")]
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        return None, [ProfileProblem(path, "", f"is not valid YAML{where}: {getattr(err, 'problem', err)}")]
    if not isinstance(data, dict):
        return None, [ProfileProblem(path, "", "must be a YAML mapping of settings")]
    errors = schema_errors(data, SCHEMA_OF_KIND[kind])
    if errors:
        return None, [ProfileProblem(path, e.pointer, e.message) for e in errors]
    return data, []


def load_profiles(kinds=KINDS, user_dir: Path | None = None) -> ProfileSet:
    builtin_root = data_dir("profiles")
    user_root = user_profiles_dir() if user_dir is None else user_dir
    result = ProfileSet()
    for kind in kinds:
        found: dict[str, Profile] = {}
        for origin, root in (("built-in", builtin_root), ("user", user_root)):
            folder = root / kind
            if not folder.is_dir():
                continue
            for path in sorted(folder.glob("*.y*ml")):
                data, problems = read_profile_file(path, kind)
                result.problems += problems
                if data is None:
                    continue
                name = path.stem.lower()
                replaced = found.get(name)
                found[name] = Profile(
                    name, kind, path, data, origin, replaced.source if replaced else None
                )
        result.by_kind[kind] = found
    return result
