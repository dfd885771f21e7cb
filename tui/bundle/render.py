"""Jinja rendering for run bundles, with the only quoting in sft-tui:

- `yaml_value`: any plan value as a YAML scalar that PyYAML (YAML 1.1) and OmegaConf (which
  LLaMA-Factory loads train.yaml with) both read back as exactly that value: strings always
  double-quoted with every non-printable character escaped (so `yes`, `on`, `1e-4`, `null` stay
  strings), floats always with a dot before any exponent (YAML 1.1 reads `1e-05` as a string).
- `sh`: any value as one shell word (shlex.quote): spaces, quotes, `$()`, backticks, `;`,
  newlines and leading dashes are inert.
- `comment`: text on one line, for `# reason` comments.

One value has no YAML spelling that both loaders read back: a string containing `${`, which
OmegaConf parses as an interpolation (a malformed one fails the whole load). `yaml_value`
refuses it (UnrepresentableValue) rather than write a config LLaMA-Factory misreads.
"""

from __future__ import annotations

import json
import math
import shlex
from functools import cache

import jinja2

from tui.common.errors import SftTuiError
from tui.common.resources import data_dir

_YAML_SAFE = {"\\": "\\\\", '"': '\\"'}


class UnrepresentableValue(SftTuiError, ValueError):
    """A value LLaMA-Factory's YAML loader cannot be given unchanged."""


def _yaml_char(ch: str) -> str:
    code = ord(ch)
    if ch in _YAML_SAFE:
        return _YAML_SAFE[ch]
    # YAML's printable set, minus the characters a double-quoted scalar folds as line breaks.
    printable = (0x20 <= code <= 0x7E or 0xA0 <= code <= 0xD7FF
                 or 0xE000 <= code <= 0xFFFD or 0x10000 <= code <= 0x10FFFF)
    if printable and code not in (0x2028, 0x2029, 0xFEFF):
        return ch
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def yaml_value(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        text = repr(value)
        mantissa, e, exponent = text.partition("e")
        if "." not in mantissa:
            mantissa += ".0"
        if e and exponent[0] not in "+-":
            exponent = "+" + exponent
        return mantissa + (e + exponent if e else "")
    if isinstance(value, str):
        if "${" in value:
            raise UnrepresentableValue(f"{value!r} contains '${{', which LLaMA-Factory's config loader (OmegaConf) "
                                       "reads as an interpolation; rename it")
        return '"' + "".join(map(_yaml_char, value)) + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(yaml_value(v) for v in value) + "]"
    raise TypeError(f"no YAML scalar for {type(value).__name__}")


def sh(value) -> str:
    if isinstance(value, bool):
        value = "true" if value else "false"
    return shlex.quote(str(value))


def comment(text) -> str:
    return " ".join(str(text).split())


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(data_dir("templates"))),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters.update(yaml_value=yaml_value, sh=sh, comment=comment, tojson=lambda v: json.dumps(v, indent=2, ensure_ascii=False))
    return env


def render(template: str, **context) -> str:
    return environment().get_template(template).render(**context)
