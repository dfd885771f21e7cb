"""Write LLaMA-Factory's training arguments as a JSON Schema (draft 2020-12):

    python tui/lf/llamafactory_args.py [OUT.json]     (stdout without OUT.json)

Run by the training environment's python, never imported by sft-tui (which must not import
llamafactory); it imports nothing from sft-tui, so it works where sft-tui is not installed. The
output is committed as schemas/llamafactory-args.json and read as data by tui/plan/settings.py.

Every argument `llamafactory-cli train` accepts becomes one property: the dataclasses of
LLaMA-Factory's `_TRAIN_ARGS`, in that order, with the types resolved the way HfArgumentParser
resolves them. Output is deterministic (sorted keys, indent 1, trailing newline) so that a test
can regenerate it and compare bytes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import inspect
import json
import pathlib
import re
import sys
import types
import typing

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"

# JSON Schema type of each Python scalar type HfArgumentParser hands to argparse.
SCALARS = {bool: "boolean", int: "integer", float: "number", str: "string", pathlib.Path: "string"}

# LLaMA-Factory splits these str fields on commas in __post_init__ (`split_arg(self.x)` or
# `self.x.split(",")`): a list is written as "a,b" text, and the schema says so.
COMMA_SPLIT = re.compile(r"split_arg\(self\.(\w+)\)|self\.(\w+)\.split\(\s*[\"'],[\"']\s*\)")


def _members(tp) -> list:
    """The alternatives of a Union / Optional / `X | None`, or [tp]."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        return list(typing.get_args(tp))
    return [tp]


def _enum_values(tp) -> list | None:
    """Allowed values of a Literal or an Enum class (Enum -> its members' values), else None."""
    if typing.get_origin(tp) is typing.Literal:
        return [v.value if isinstance(v, enum.Enum) else v for v in typing.get_args(tp)]
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return [member.value for member in tp]
    return None


def _json_type(value) -> str:
    """JSON type of an allowed value (a Literal's, or an Enum member's value)."""
    return "null" if value is None else SCALARS.get(type(value), "string")


def type_schema(tp) -> dict:
    """The JSON Schema of a resolved Python annotation: type, enum, items."""
    json_types: set[str] = set()
    choices: list = []
    free_string = False  # a plain `str` alternative: any string passes
    has_enum_class = False
    out: dict = {}
    for member in _members(tp):
        origin = typing.get_origin(member) or member
        values = _enum_values(member)
        if member is type(None):
            json_types.add("null")
        elif values is not None:
            has_enum_class |= typing.get_origin(member) is not typing.Literal
            choices += [v for v in values if v not in choices]
            json_types.update(_json_type(v) for v in values)
        elif member in SCALARS:
            json_types.add(SCALARS[member])
            free_string |= member is str
        elif isinstance(origin, type) and issubclass(origin, (list, tuple)):
            json_types.add("array")
            args = typing.get_args(member)
            if args:
                out["items"] = type_schema(args[0])
        elif isinstance(origin, type) and issubclass(origin, dict):
            json_types.add("object")
        else:
            # A class argparse cannot build from text (GenerationConfig, ParallelismConfig):
            # only a mapping from a YAML file can stand for it.
            json_types.add("object")
            out["x-python-type"] = f"{member.__module__}.{member.__qualname__}"
    # `SchedulerType | str`: HfArgumentParser drops the str and offers the Enum's values as
    # choices (transformers converts the text with the Enum), so only those values pass. A str
    # beside a Literal (`str | None | Literal[False]`) does let any string pass: no enum then.
    if choices and (has_enum_class or not free_string):
        out["enum"] = choices + ([None] if "null" in json_types and None not in choices else [])
    out["type"] = sorted(json_types) if len(json_types) > 1 else json_types.pop()
    return out


def _default(field: dataclasses.Field):
    """The default as JSON, or None where there is none or it cannot be written as JSON."""
    if field.default is not dataclasses.MISSING:
        value = field.default
    elif field.default_factory is not dataclasses.MISSING:
        value = field.default_factory()
    else:
        return None
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, tuple):
        value = list(value)
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return None
    return value


def _comma_split_fields(cls) -> set[str]:
    names = set()
    for klass in cls.__mro__:
        post_init = klass.__dict__.get("__post_init__")
        if post_init is not None:
            for match in COMMA_SPLIT.finditer(inspect.getsource(post_init)):
                names.add(match.group(1) or match.group(2))
    return names


def _group_names(train_args) -> dict:
    from llamafactory.hparams import DataArguments, FinetuningArguments, GeneratingArguments, ModelArguments

    known = {ModelArguments: "model", DataArguments: "data", FinetuningArguments: "finetuning",
             GeneratingArguments: "generating"}
    groups = {cls: known.get(cls, "training") for cls in train_args}
    if sorted(groups.values()) != sorted(["model", "data", "training", "finetuning", "generating"]):
        raise SystemExit(f"unexpected LLaMA-Factory train arguments: {[c.__name__ for c in train_args]}")
    return groups


def build_schema() -> dict:
    # Importing llamafactory may print; keep stdout for the schema.
    with contextlib.redirect_stdout(sys.stderr):
        import llamafactory
        import transformers
        from llamafactory.hparams.parser import _TRAIN_ARGS  # what `llamafactory-cli train` parses

    properties: dict = {}
    not_settable: dict = {}
    groups = _group_names(_TRAIN_ARGS)
    for cls in _TRAIN_ARGS:
        hints = typing.get_type_hints(cls)  # HfArgumentParser resolves annotations the same way
        comma_split = _comma_split_fields(cls)
        for field in dataclasses.fields(cls):
            help_text = field.metadata.get("help", "")
            if not field.init:
                # HfArgumentParser skips init=False fields: LLaMA-Factory sets them itself.
                not_settable[field.name] = help_text
                continue
            if field.name in properties:
                # Parsed by two classes: the first in _TRAIN_ARGS describes it; note the others.
                properties[field.name].setdefault("x-also-in", []).append(groups[cls])
                continue
            entry = type_schema(hints[field.name])
            entry.update(description=help_text, default=_default(field), **{"x-group": groups[cls]})
            if field.name in comma_split:
                entry["x-comma-separated"] = True
            properties[field.name] = entry
    return {
        "$schema": SCHEMA_DIALECT,
        "$comment": (
            "Generated by tui/lf/llamafactory_args.py from LLaMA-Factory's argument dataclasses; do not"
            " edit. x-group: the dataclass of the argument; x-also-in: other dataclasses with the same"
            " field (the first in LLaMA-Factory's parse order wins); x-comma-separated: a str field"
            " LLaMA-Factory splits on commas; x-not-settable: fields LLaMA-Factory computes itself."
        ),
        "title": "LLaMA-Factory training arguments",
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
        "x-not-settable": not_settable,
        "llamafactory_version": llamafactory.__version__,
        "transformers_version": transformers.__version__,
    }


def render(schema: dict) -> str:
    return json.dumps(schema, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    text = render(build_schema())
    if argv:
        pathlib.Path(argv[0]).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
