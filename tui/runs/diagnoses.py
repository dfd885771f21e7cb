"""What a failed or troubled run's log means, as one sentence that says what to do: LLaMA-Factory's
data errors, out-of-memory errors (CUDA, HIP, MPS) and their numbers, exceptions that mean the
machine cannot run the plan (bf16 on a machine without it), and a loss that went NaN.
"""

from __future__ import annotations

import re

OOM_MARKERS = ("CUDA out of memory", "OutOfMemoryError", "HIP out of memory", "MPS backend out of memory",
               "CUBLAS_STATUS_ALLOC_FAILED", "out of memory")


TRIED = re.compile(r"Tried to allocate ([\d.]+ [KMGT]i?B)")


CAPACITY = re.compile(r"GPU (\d+) has a total capacity of ([\d.]+ [KMGT]i?B) of which ([\d.]+ [KMGT]i?B) is free")


# LLaMA-Factory's data errors (llamafactory/data/parser.py and loader.py), as a sentence that says what to do.
DATA_ERRORS = (
    (re.compile(r"Undefined dataset (\S+) in (\S+)\."),
     "LLaMA-Factory has no dataset named {0} in {1} under dataset_dir: check `dataset:` in train.yaml "
     "against the names in the run's dataset_info.json, or export the bundle again."),
    (re.compile(r"Cannot find valid samples"),
     "No row survived LLaMA-Factory's conversion: the columns declared in dataset_info.json do not match "
     "the file's fields. Run `sft-tui validate` on the file and export again."),
    (re.compile(r"File (.+) not found\."),
     "The dataset file {0} does not exist (moved or deleted since export?): put it back, or fix file_name "
     "in the run's dataset_info.json."),
    (re.compile(r"Cannot open (.+) due to (.+)\."),
     "LLaMA-Factory cannot read {0} ({1}): fix the file or export the bundle again."),
)


# Exceptions that mean the run cannot work on this machine as planned, as a sentence with the fix.
SETUP_ERRORS = (
    (re.compile(r"Your setup doesn't support bf16/gpu"),
     "This machine cannot train in bf16 (it has no GPU, or one without bf16): run it on the hardware it was "
     "planned for, or export it again for this machine (`sft-tui export --hardware detected ...`), whose plan "
     "leaves bf16 off."),
    (re.compile(r"Your setup doesn't support fp16"),
     "This machine cannot train in fp16 (it has no GPU): run it on the hardware it was planned for, or export "
     "it again for this machine (`sft-tui export --hardware detected ...`), whose plan leaves fp16 off."),
)


def nan_loss_warning(step: int | None) -> str:
    return (f"the loss was NaN from step {step} on, so the model learned nothing after it (likely fp16 overflow, "
            "or a learning rate too high): train again with a lower learning_rate (--set learning_rate=...), or "
            "with bf16 instead of fp16 on a GPU that has it")


def setup_error_sentence(exception: str | None) -> str | None:
    return next((sentence for pattern, sentence in SETUP_ERRORS if pattern.search(exception or "")), None)


def data_error_sentence(line: str) -> str | None:
    for pattern, sentence in DATA_ERRORS:
        match = pattern.search(line)
        if match:
            return sentence.format(*match.groups())
    return None


def oom_details(line: str) -> dict:
    details = {}
    if match := TRIED.search(line):
        details["tried_to_allocate"] = match.group(1)
    if match := CAPACITY.search(line):
        details.update(gpu=int(match.group(1)), capacity=match.group(2), free=match.group(3))
    return details
