"""The core's messages are written for the CLI and name its flags (--name, --force, --env,
--set); the app says its own controls instead. The translation happens here, at the app's
boundary, so the CLI keeps its words: every message from tui.bundle, tui.plan or tui.runs the
wizard shows goes through `in_app_words`."""

from __future__ import annotations

import re

from tui.plan.requests import BUNDLE_OWNED
from tui.runs.preflight import OTHER_ENV

# (the CLI's words, a regular expression, or a plain string; the app's)
APP_WORDING: list[tuple[re.Pattern | str, str]] = [
    ("choose another --name, or --force to update it", "choose another run name in step 5, or Update it"),
    (OTHER_ENV, "or set the training environment in step 5 and export again"),
    (re.compile(r"--set (.+?): expected KEY=VALUE with a LLaMA-Factory argument name as KEY"),
     r"\1: expected key=value, with a LLaMA-Factory argument name as key"),
    ("export one with `sft-tui export`", "export one in step 5"),
    (BUNDLE_OWNED["output_dir"], "checkpoints go to saves/<run-id>: choose it with Output and Run name in step 5"),
    ("your --dataset files", "your dataset files"),
]


def in_app_words(message: str) -> str:
    """`message` with the CLI's flags put as the app's controls (unchanged when it names none)."""
    for cli, app in APP_WORDING:
        message = cli.sub(app, message) if isinstance(cli, re.Pattern) else message.replace(cli, app)
    return message
