"""JSON Schema validation (jsonschema-rs) for everything sft-tui reads: profiles, datasets, plans.

Schemas live in the shipped `schemas/` folder as `<name>.schema.json` (draft 2020-12).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import jsonschema_rs
import orjson

from tui.common.resources import data_dir


@dataclass(frozen=True)
class SchemaError:
    pointer: str  # JSON pointer of the failing value, "" for the document itself
    message: str


@cache
def validator(name: str):
    path = data_dir("schemas") / f"{name}.schema.json"
    return jsonschema_rs.validator_for(orjson.loads(path.read_bytes()))


def json_pointer(parts) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def schema_errors(instance, name: str) -> list[SchemaError]:
    """Every violation of schema `name` by `instance`, most specific location first."""
    errors = [
        SchemaError(json_pointer(err.instance_path), err.message)
        for err in validator(name).iter_errors(instance)
    ]
    return sorted(errors, key=lambda e: (-e.pointer.count("/"), e.pointer))
