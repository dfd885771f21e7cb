"""The gate for user settings: every LLaMA-Factory setting a person gives (`--set key=value`
text, a wizard input box, plan.json, a YAML recipe) is checked here and comes out typed.

Names, types, choices and defaults come from LLaMA-Factory's own dataclasses, through the JSON
Schema that tui/lf/llamafactory_args.py generates (schemas/llamafactory-args.json); this module
reads it as data and imports nothing of torch, transformers or llamafactory. Text converts the way
HfArgumentParser converts a command line; the few limits LLaMA-Factory only finds at run time
(or never) are in LIMITS and ALLOWED_BITS below, each with its reason.

A value is only ever compared, parsed as a number or as JSON: never run, evaluated or expanded,
so `$(rm -rf /)` given for a string argument is that string. Every problem is one line that
names the setting, shows the value and says what is allowed.
"""

from __future__ import annotations

import difflib
import json
import math
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from tui.common.errors import SftTuiError
from tui.common.resources import data_dir

SCHEMA_FILE = "llamafactory-args.json"

# transformers' string_to_bool (hf_argparser.py), which HfArgumentParser uses for bool fields.
TRUE_TEXT = ("yes", "true", "t", "y", "1")
FALSE_TEXT = ("no", "false", "f", "n", "0")
# What YAML reads as null; only Optional arguments take it (report_to's "none" is a real value).
NULL_TEXT = ("", "null", "~")
INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")  # not "4k", "1.5", "1e3" or other scripts' digits
NUMBER_TEXT = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")
# torch and the data loaders keep integers in 64 bits; a larger one would overflow there.
INT64_MAX = 2**63 - 1
SHOWN_CHARS = 60  # a value longer than this is cut in messages, which stay one line


@dataclass(frozen=True)
class Limit:
    """Bounds of a numeric setting, JSON-Schema style; None: no bound that side."""

    minimum: float | None = None
    exclusive_minimum: float | None = None
    maximum: float | None = None
    exclusive_maximum: float | None = None
    whole_above_one: bool = False  # a ratio of the total steps below 1, a step count above


LIMITS = {
    # A batch of zero rows trains (or evaluates) nothing.
    "per_device_train_batch_size": Limit(minimum=1),
    "per_device_eval_batch_size": Limit(minimum=1),
    # The optimizer steps once every N micro-batches; N = 0 never steps.
    "gradient_accumulation_steps": Limit(minimum=1),
    # A rank-0 adapter has no trainable weights.
    "lora_rank": Limit(minimum=1),
    # Rows are cut to this many tokens; zero leaves nothing to learn from.
    "cutoff_len": Limit(minimum=1),
    # transformers reads a value below 1 as a ratio of the total steps, and rejects 0 and a
    # fractional step count above 1 (TrainingArguments.__post_init__).
    "save_steps": Limit(exclusive_minimum=0, whole_above_one=True),
    "logging_steps": Limit(exclusive_minimum=0, whole_above_one=True),
    "eval_steps": Limit(exclusive_minimum=0, whole_above_one=True),
    # A zero or negative rate never moves (or climbs) the loss.
    "learning_rate": Limit(exclusive_minimum=0),
    # Zero epochs is no training (max_steps is the way to stop early).
    "num_train_epochs": Limit(exclusive_minimum=0),
    # A dropout probability; 1 would drop every adapter input.
    "lora_dropout": Limit(minimum=0, exclusive_maximum=1),
    # The adapter's scale (alpha / rank); unset means 2 x lora_rank.
    "lora_alpha": Limit(exclusive_minimum=0),
    # A cap on rows read per dataset; unset means all rows.
    "max_samples": Limit(minimum=1),
    # A fraction of the total steps (deprecated in transformers for fractional warmup_steps).
    "warmup_ratio": Limit(minimum=0, maximum=1),
    # transformers rejects negative warmup.
    "warmup_steps": Limit(minimum=0),
}

# Bit widths LLaMA-Factory accepts for on-the-fly quantization, per quantization_method: it has a
# branch for these three methods only (model/model_utils/quantization.py), each with these checks.
ALLOWED_BITS = {"bnb": (4, 8), "hqq": (1, 2, 3, 4, 5, 6, 8), "eetq": (8,)}
# Bit widths LLaMA-Factory asserts for the other quantized models (finetuning_args.py) and
# GPTQModel export (quantization.py).
FIXED_BITS = {
    "ref_model_quantization_bit": (4, 8),
    "reward_model_quantization_bit": (4, 8),
    "export_quantization_bit": (2, 3, 4, 8),
}

TYPE_WORDS = {
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "string": "a string",
    "array": "a list",
    "object": "a mapping",
}


class SettingError(SftTuiError, ValueError):
    """A setting that does not pass the gate; str(error) is the one-line problem."""


@cache
def schema() -> dict:
    """LLaMA-Factory's argument schema (generated; see tui/lf/llamafactory_args.py)."""
    return json.loads((data_dir("schemas") / SCHEMA_FILE).read_text(encoding="utf-8"))


def schema_versions() -> dict[str, str]:
    """The LLaMA-Factory and transformers versions the schema was generated from."""
    return {key: schema()[key] for key in ("llamafactory_version", "transformers_version")}


def is_argument(name: object) -> bool:
    """Whether `name` is an argument `llamafactory-cli train` accepts."""
    return isinstance(name, str) and name in schema()["properties"]


def argument(name: str) -> dict:
    """The schema entry of argument `name` (type, default, description, enum, x-group...)."""
    if not is_argument(name):
        raise SettingError(_unknown(name))
    return schema()["properties"][name]


def suggest(name: object) -> str | None:
    """The argument name closest to `name`, or None when none is close."""
    matches = difflib.get_close_matches(str(name), list(schema()["properties"]), n=1)
    return matches[0] if matches else None


def check_setting(name: str, value: object, *, context: dict | None = None) -> Any:
    """One setting through the gate: its typed value, or SettingError with the problem."""
    typed, problems = check_settings({name: value}, context=context)
    if problems:
        raise SettingError(problems[0])
    return typed[name]


def check_settings(raw: dict[str, object], *, context: dict | None = None) -> tuple[dict, list[str]]:
    """Type and check settings given as text or as typed values.

    Returns (typed settings that passed, one problem line per setting that did not). `context`:
    other settings already in force (e.g. the plan's), read only for checks across settings
    (quantization_bit against quantization_method); it is neither checked nor returned.
    """
    typed: dict = {}
    problems: list[str] = []
    for name, value in raw.items():
        if not is_argument(name):
            problems.append(_unknown(name))
            continue
        try:
            typed[name] = _checked(name, argument(name), value)
        except SettingError as err:
            problems.append(str(err))
    problem = _quantization_problem(typed, context or {}, raw)
    if problem:
        typed.pop("quantization_bit")
        problems.append(problem)
    return typed, problems


def _unknown(name: object) -> str:
    if isinstance(name, str) and name in schema()["x-not-settable"]:
        return f"unknown setting {_show(name)}: LLaMA-Factory computes it itself"
    close = suggest(name)
    hint = f"did you mean {close}?" if close else "not a LLaMA-Factory argument"
    return f"unknown setting {_show(name)}: {hint}"


def _show(value: object) -> str:
    """A value as a message shows it: one line (repr escapes line breaks), cut when long."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    try:
        text = repr(value)
    except (ValueError, RecursionError):  # an int past Python's 4300 digits in it, or too deep
        return f"a {type(value).__name__} too large to show"
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."


def _checked(name: str, entry: dict, value: object) -> Any:
    """The typed value, or SettingError: type first, then choices, then limits."""
    types = entry["type"] if isinstance(entry["type"], list) else [entry["type"]]
    typed = _typed(name, entry, types, value)
    if typed is not None:
        _check_choices(name, entry, typed)
        _check_limit(name, typed)
    return typed


def _typed(name: str, entry: dict, types: list[str], value: object) -> Any:
    wanted = " or ".join(TYPE_WORDS[t] for t in types if t != "null")
    if isinstance(value, str):
        if "null" in types and value.strip().lower() in NULL_TEXT:
            return None
        if "string" in types:
            return value  # as is: never stripped, expanded or split here
        for kind in types:
            converted = _from_text(name, kind, value)
            if converted is not None:
                return [_item(name, entry, i) for i in converted] if kind == "array" else converted
        raise SettingError(f"{name}: {_show(value)} is not {wanted}")
    if value is None and "null" in types:
        return None
    if isinstance(value, bool):
        if "boolean" in types:
            return value
    elif isinstance(value, int) and ("integer" in types or "number" in types):
        return value
    elif isinstance(value, float) and ("integer" in types or "number" in types):
        if not math.isfinite(value):
            raise SettingError(f"{name}: {_show(value)} is not a finite number")
        if "number" in types:
            return value
        if value.is_integer():
            return int(value)  # 4.0 from JSON is the integer 4, as JSON Schema has it
    elif isinstance(value, (list, tuple)):
        if "array" in types:
            return [_item(name, entry, item) for item in value]
        if entry.get("x-comma-separated"):
            if not value and "null" in types:
                return None  # no items: the argument is unset
            if value and all(isinstance(i, str) and i.strip() and "," not in i for i in value):
                return ",".join(value)  # LLaMA-Factory splits this text back into the same list
    elif isinstance(value, dict) and "object" in types:
        return dict(value)
    raise SettingError(f"{name}: {_show(value)} is not {wanted}")


def _from_text(name: str, kind: str, text: str) -> Any:
    """Text read as `kind` (an array: its raw items), or None when it is not written as one."""
    word = text.strip()
    if kind == "boolean" and word.lower() in TRUE_TEXT + FALSE_TEXT:
        return word.lower() in TRUE_TEXT
    if kind in ("integer", "number") and INTEGER_TEXT.fullmatch(word):
        if len(word) > len(str(INT64_MAX)) + 1:  # also keeps int() off huge digit strings
            raise SettingError(f"{name}: {_show(text)} is too large (at most {INT64_MAX})")
        return int(word)  # an integer stays one for a number argument too (save_steps: 500)
    if kind == "number" and NUMBER_TEXT.fullmatch(word):
        number = float(word)
        if not math.isfinite(number):
            raise SettingError(f"{name}: {_show(text)} is not a finite number")
        return number
    if kind == "array":
        # JSON text, or items separated by commas as LLaMA-Factory writes its own lists.
        items = _json(word) if word.startswith("[") else [part.strip() for part in word.split(",")]
        return items if isinstance(items, list) else None
    if kind == "object" and word.startswith("{"):
        mapping = _json(word)
        return mapping if isinstance(mapping, dict) else None
    return None


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # malformed, or nested past Python's stack
        return None


def _item(name: str, entry: dict, item: object) -> Any:
    """A list item typed and checked against the list's `items` schema."""
    items = entry.get("items")
    if not items:
        return item
    kinds = items["type"] if isinstance(items["type"], list) else [items["type"]]
    try:
        typed = _typed(name, items, kinds, item)
    except SettingError:
        wanted = " or ".join(TYPE_WORDS[k] for k in kinds if k != "null")
        raise SettingError(f"{name}: list item {_show(item)} is not {wanted}") from None
    _check_choices(name, items, typed, what="list item ")
    return typed


def _check_choices(name: str, entry: dict, value: Any, what: str = "") -> None:
    choices = entry.get("enum")
    if choices is None or value in choices:
        return
    listed = ", ".join(_show(c) if not isinstance(c, str) else c for c in choices)
    close = []
    if isinstance(value, str) and value:
        words = [c for c in choices if isinstance(c, str)]
        # A cut-short name ('adamw') means the first choice it begins; difflib would say grokadamw.
        close = [c for c in words if c.startswith(value)] or difflib.get_close_matches(value, words, n=1)
    hint = f"; did you mean {close[0]}?" if close else ""
    raise SettingError(f"{name}: {what}{_show(value)} is not one of {listed}{hint}")


def _check_limit(name: str, value: Any) -> None:
    """64-bit integers, LLaMA-Factory's fixed bit widths, then LIMITS."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return
    if isinstance(value, int) and abs(value) > INT64_MAX:
        raise SettingError(f"{name}: {_show(value)} is too large (at most {INT64_MAX})")
    if name in FIXED_BITS and value not in FIXED_BITS[name]:
        allowed = ", ".join(map(str, FIXED_BITS[name]))
        raise SettingError(f"{name}: {_show(value)} is not allowed (allowed: {allowed})")
    limit = LIMITS.get(name)
    if limit is None:
        return
    bounds = (
        (limit.minimum, lambda b: value < b, "too small (at least {})"),
        (limit.exclusive_minimum, lambda b: value <= b, "too small (more than {})"),
        (limit.maximum, lambda b: value > b, "too large (at most {})"),
        (limit.exclusive_maximum, lambda b: value >= b, "too large (less than {})"),
    )
    for bound, broken, words in bounds:
        if bound is not None and broken(bound):
            raise SettingError(f"{name}: {_show(value)} is {words.format(bound)}")
    if limit.whole_above_one and value > 1 and value != int(value):
        raise SettingError(f"{name}: {_show(value)} is not a whole number of steps (below 1 it is a ratio)")


def _quantization_problem(typed: dict, context: dict, raw: dict) -> str | None:
    bits = typed.get("quantization_bit")
    if bits is None:
        return None
    # A method with a problem of its own is not used: the bits are checked against the one that
    # applies without it (the context's, else LLaMA-Factory's default), so what passes here passes alone.
    method_entry = argument("quantization_method")
    method = typed.get("quantization_method", context.get("quantization_method"))
    if method not in method_entry["enum"]:  # the context is meant to be past the gate already
        method = method_entry["default"]
    allowed = ALLOWED_BITS.get(method) if isinstance(method, str) else None
    if allowed is None:
        on_the_fly = ", ".join(sorted(ALLOWED_BITS))
        return (f"quantization_bit: {_show(bits)} cannot be used with quantization_method {method}"
                f" (LLaMA-Factory quantizes on the fly with {on_the_fly} only)")
    if bits not in allowed:
        listed = ", ".join(map(str, allowed))
        return f"quantization_bit: {_show(bits)} is not allowed with quantization_method {method} (allowed: {listed})"
    return None
