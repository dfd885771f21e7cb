"""Dataset formats as LLaMA-Factory reads them (alpaca, sharegpt, openai): the spec of a
dataset_info.json entry (columns, tags), the standard specs sft-tui registers files with, and the
mapping between a file's own key names and the standard ones that problems are reported in."""

from __future__ import annotations

from dataclasses import dataclass, field

from tui.common.errors import SftTuiError
from tui.datasets.report import FileReport

FORMATS = ("alpaca", "sharegpt", "openai")
# LLaMA-Factory's media columns (DatasetAttr images/videos/audios): the same key in every format.
MEDIA_COLUMNS = ("images", "videos", "audios")


class DatasetFileError(SftTuiError):
    """A file (or dataset_info entry) cannot be read at all: one sentence, exit status 2."""


@dataclass(frozen=True)
class FormatSpec:
    """How LLaMA-Factory reads a file: a dataset_info.json entry's formatting, columns, tags."""

    formatting: str
    columns: dict = field(hash=False)
    tags: dict = field(hash=False)

    def to_dataset_info(self) -> dict:
        entry = {"formatting": self.formatting, "columns": dict(self.columns)}
        if self.tags:
            entry["tags"] = dict(self.tags)
        return entry


SHAREGPT_TAGS = {
    "role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
    "observation_tag": "observation", "function_tag": "function_call", "system_tag": "system",
}


# The spec of each format's standard keys: what sft-tui registers files with, and what a file
# validated without a dataset_info entry is assumed to use.
DEFAULT_SPECS = {
    "alpaca": FormatSpec(
        "alpaca",
        {"prompt": "instruction", "query": "input", "response": "output", "system": "system", "history": "history"},
        {},
    ),
    "sharegpt": FormatSpec("sharegpt", {"messages": "conversations", "system": "system", "tools": "tools"}, SHAREGPT_TAGS),
    "openai": FormatSpec(
        "openai",
        {"messages": "messages", "system": "system", "tools": "tools"},
        {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
         "observation_tag": "tool", "function_tag": "function_call", "system_tag": "system"},
    ),
}


# Roles as sft-tui reasons about them, whatever a file calls them.
USER, ASSISTANT, OBSERVATION, FUNCTION, SYSTEM = "user", "assistant", "observation", "function", "system"


ROLE_OF_TAG = {"user_tag": USER, "assistant_tag": ASSISTANT, "observation_tag": OBSERVATION, "function_tag": FUNCTION, "system_tag": SYSTEM}


PROMPT_ROLES, RESPONSE_ROLES = (USER, OBSERVATION), (ASSISTANT, FUNCTION)


def spec_from_entry(entry: dict) -> FormatSpec:
    """A dataset_info.json entry's spec, read as LLaMA-Factory 0.9.5 reads it (DatasetAttr.join):
    without `columns`, its defaults apply (instruction/input/output, or conversations); with
    `columns`, every column the entry leaves out is not read at all, and likewise `tags`
    replaces all tags (sharegpt's from/value/human/gpt/... also apply to the openai formatting)."""
    formatting = entry.get("formatting", "alpaca")
    if formatting not in FORMATS:
        raise DatasetFileError(f"formatting {formatting!r} is not one of {', '.join(FORMATS)}")
    if "columns" in entry:
        columns = {k: v for k, v in (entry["columns"] or {}).items() if v}
    elif formatting == "alpaca":
        columns = {"prompt": "instruction", "query": "input", "response": "output"}
    else:
        columns = {"messages": "conversations"}
    tags = {}
    if formatting != "alpaca":
        tags = {k: v for k, v in (entry["tags"] or {}).items() if v} if "tags" in entry else dict(SHAREGPT_TAGS)
    return FormatSpec(formatting, columns, tags)


def register_entry(report: "FileReport") -> dict:
    """The dataset_info.json entry (less file_name) that makes LLaMA-Factory read a validated
    file in its standard format as validated. Only columns that occur in the file are declared:
    LLaMA-Factory fails with KeyError on a declared column that no row has."""
    assert report.format is not None  # only a file validated in a format is registered
    spec = DEFAULT_SPECS[report.format]
    entry = spec.to_dataset_info()
    present = set(report.columns_present)
    entry["columns"] = {column: key for column, key in spec.columns.items() if key in present}
    entry["columns"].update({media: media for media in MEDIA_COLUMNS if report.media_rows.get(media)})
    return entry


def row_format(row: dict) -> str | None:
    """The format a row's keys say it is in (standard key names), or None."""
    if "conversations" in row:
        return "sharegpt"
    if "messages" in row:
        return "openai"
    if "instruction" in row or "output" in row:
        return "alpaca"
    return None


class FileNames:
    """Maps sft-tui's standard key names back to a dataset_info entry's own, so that problems
    name the file's fields: pointers by their first segments, messages by quoted key names."""

    def __init__(self, top: dict[str, str], inner: dict[str, str] | None = None):
        self.top, self.inner = top, inner or {}

    def pointer(self, pointer: str) -> str:
        parts = pointer.split("/")
        if len(parts) > 1:
            parts[1] = self.top.get(parts[1], parts[1])
        if len(parts) > 3:
            parts[3] = self.inner.get(parts[3], parts[3])
        return "/".join(parts)

    def message(self, message: str) -> str:
        for standard, own in {**self.top, **self.inner}.items():
            message = message.replace(f'"{standard}"', f'"{own}"')
        return message


_ALPACA_STANDARD_KEY = {"prompt": "instruction", "query": "input", "response": "output", "system": "system", "history": "history"}


def canonical_alpaca(row: dict, spec: FormatSpec) -> tuple[dict, FileNames]:
    """The row under alpaca's standard keys, and the way back to the file's names."""
    canonical, file_key = {}, {}
    for column, standard in _ALPACA_STANDARD_KEY.items():
        key = spec.columns.get(column)
        if key:
            file_key[standard] = key
            if key in row:
                canonical[standard] = row[key]
    for media in MEDIA_COLUMNS:  # under their standard names, as the checker counts them
        key = spec.columns.get(media)
        if key:
            file_key[media] = key
            if key in row:
                canonical[media] = row[key]
    return canonical, FileNames(file_key)


def canonical_messages(row: dict, spec: FormatSpec, role_of: dict) -> tuple[dict, FileNames]:
    """The row as a standard sharegpt conversation, and the way back to the file's names."""
    key, role_key, content_key = spec.columns["messages"], spec.tags["role_tag"], spec.tags["content_tag"]
    sharegpt_role = {USER: "human", ASSISTANT: "gpt", OBSERVATION: "observation", FUNCTION: "function_call", SYSTEM: "system"}
    canonical = {}
    if key in row:
        messages = row[key]
        if isinstance(messages, list):
            canonical["conversations"] = [_canonical_message(m, role_key, content_key, role_of, sharegpt_role) for m in messages]
        else:
            canonical["conversations"] = messages
    return canonical, FileNames({"conversations": key}, {"from": role_key, "value": content_key})


def _canonical_message(message, role_key, content_key, role_of, sharegpt_role):
    if not isinstance(message, dict):
        return message
    out = {}
    if role_key in message:
        out["from"] = sharegpt_role[role_of[message[role_key]]]  # _known_roles ran first
    if content_key in message:
        out["value"] = message[content_key]
    return out
