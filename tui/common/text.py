"""Small wording rules every stage and both front ends share: a count with its noun in agreement,
a value spelled as train.yaml spells it, and the names close to a mistyped one ("did you mean")."""

from __future__ import annotations

import difflib
import json


def plural(n: int, word: str, many: str | None = None) -> str:
    """'1 row', '2 rows' (`many` for a plural that is not word + s)."""
    return f"{n} {word if n == 1 else many or word + 's'}"


def yaml_spelling(value) -> str:
    """A setting's value as train.yaml spells it: null, true/false, numbers and words as they are."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def close_names(typed: str, names: list[str], limit: int = 3) -> list[str]:
    """The names `typed` may mean, any case: those it begins (a profile named without its memory,
    rtx4090 for rtx4090-24g), else difflib's close matches."""
    by_key = {name.lower(): name for name in names}
    key = typed.lower()
    begun = [name for k, name in sorted(by_key.items()) if k.startswith(key)] if key else []
    if begun:
        return begun[:limit]
    return [by_key[k] for k in difflib.get_close_matches(key, list(by_key), n=limit, cutoff=0.6)]
