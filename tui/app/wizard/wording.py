"""The core's messages are written for the CLI and name its flags (--name, --force, --env,
--set, --gpus); the app says its own controls instead. The translation happens here, at the app's
boundary, so the CLI keeps its words: every message from tui.bundle, tui.plan, tui.runs or
tui.after the app shows (a reason, a warning, what would fit, an error, a diagnosis) goes through
`in_app_words`. A whole command in backticks (`sft-tui run RUN --resume`) is one to copy into a
shell, and is left as it is."""

from __future__ import annotations

import re

from tui.plan.requests import BUNDLE_OWNED
from tui.runs.preflight import OTHER_ENV

SET_BOX = "in step 4's Set box"
TRAIN_ENV = "set the training environment in step 5 (Train env) and export again"

# (the CLI's words, a regular expression, or a plain string; the app's), in this order
APP_WORDING: list[tuple[re.Pattern | str, str]] = [
    ("choose another --name, or --force to update it", "choose another run name in step 5, or Update it"),
    (OTHER_ENV, f"or {TRAIN_ENV}"),
    (re.compile(r"export again with --env \S+?(?=[,;.)]?(\s|$))"), TRAIN_ENV),
    (re.compile(r"--set (.+?): expected KEY=VALUE with a LLaMA-Factory argument name as KEY"),
     r"\1: expected key=value, with a LLaMA-Factory argument name as key"),
    ("export one with `sft-tui export`", "export one in step 5"),
    (BUNDLE_OWNED["output_dir"], "checkpoints go to saves/<run-id>: choose it with Output and Run name in step 5"),
    ("your --dataset files", "your dataset files"),
    ("pass --dataset PATH", "choose the dataset files in step 3"),
    (re.compile(r"--name ('[^']*')"), r"run name \1"),
    (re.compile(r"plan with --model (\S+?),"), r"plan with the model \1 (step 2),"),
    (re.compile(r"--env ('[^']*')"), r"Train env \1"),
    # a setting to set: key=value, typed into the plan's Set box
    (re.compile(r"your --set (\S+?=\S*)"), r"your \1"),
    (re.compile(r"\(--set ([\w.]+=[^\s)]*)\)"), rf"(\1 {SET_BOX})"),
    (re.compile(r"--set ([\w.]+=[^\s,;)]*)"), rf"\1 {SET_BOX}"),
    # a GPU count: the rows of step 1 on this machine, its GPUs box for a hardware profile
    (re.compile(r"\(--gpus (\d+|N)\)"), "(GPUs in step 1)"),
]


COMMAND = re.compile(r"`([^`]* [^`]*)`")  # a whole command in backticks: one to copy, kept as it is


def in_app_words(message: str) -> str:
    """`message` with the CLI's flags put as the app's controls (unchanged when it names none);
    a whole command in backticks is kept as it is."""
    message = str(message)
    for cli, app in APP_WORDING:  # the sentences that quote a command say another thing in the app
        if isinstance(cli, str) and "`" in cli:
            message = message.replace(cli, app)
    commands = COMMAND.findall(message)
    message = COMMAND.sub("\x00", message)
    for cli, app in APP_WORDING:
        message = cli.sub(app, message) if isinstance(cli, re.Pattern) else message.replace(cli, app)
    for command in commands:
        message = message.replace("\x00", f"`{command}`", 1)
    return message
