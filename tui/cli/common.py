"""What every sub-command shares: exit statuses, the user-error exception, JSON output, small
text helpers.

Exit status: 0 success, 1 the command ran and found problems, 2 bad usage or unreadable input."""

from __future__ import annotations

from tui.common.errors import SftTuiError
from tui.common.text import plural  # noqa: F401 - the sub-commands take it from here

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


class UserError(SftTuiError):
    """Bad input from the user: printed as one sentence, exit 2, never a traceback."""


def print_json(value) -> None:
    import orjson

    text = orjson.dumps(value, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS).decode()
    print(text, flush=True)


def yes(flag: bool) -> str:
    return "yes" if flag else "-"


def gib(mib: int | float) -> str:
    return f"{mib / 1024:.1f}"
