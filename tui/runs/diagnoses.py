"""What a failed or troubled run's log means, as one sentence that says what to do: LLaMA-Factory's
data errors, out-of-memory errors (CUDA, HIP, MPS) and their numbers, exceptions that mean the
machine cannot run the plan (bf16 on a machine without it), and a loss that went NaN.
"""

from __future__ import annotations

import math
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
    (re.compile(r"Failed to load tokenizer|couldn't connect to '?https?://|offline mode is enabled|LocalEntryNotFoundError"),
     "LLaMA-Factory could not load the model or its tokenizer: it is not downloaded here and the hub cannot be "
     "reached (HF_HUB_OFFLINE is set, or no network): download it first (`hf download MODEL_ID`), or plan with a "
     "local model directory."),
    (re.compile(r"Your setup doesn't support fp16"),
     "This machine cannot train in fp16 (it has no GPU): run it on the hardware it was planned for, or export "
     "it again for this machine (`sft-tui export --hardware detected ...`), whose plan leaves fp16 off."),
)


def nan_loss_warning(step: int | str | None) -> str:
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


# --- training health: what the logged numbers of a running training say, one sentence each ---------

def _n(value: float) -> str:
    return f"{value:.4g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"


def health_nan(step: int, what: str, value: float) -> str:
    word = "NaN" if math.isnan(value) else "inf"
    return (f"the {what} became {word} at step {step}, so nothing is learned from here on: likely fp16 overflowing on a "
            "card without bf16 (train in bf16 where the GPU has it, else in fp32 with fp16 off), a learning rate too "
            "high (lower learning_rate), or a bad row (check the data with `sft-tui validate`)")


def health_grad_norm(step: int, grad_norm: float, median: float | None) -> str:
    size = ("inf" if grad_norm == float("inf") or median is None
            else f"{_n(grad_norm)}, {grad_norm / median:.0f}x its median {_n(median)}")
    return (f"grad_norm exploded at step {step} ({size}): likely a learning rate too high or a bad batch; lower "
            "learning_rate or lengthen the warmup (warmup_ratio), and check the rows with `sft-tui validate`")


def health_spike(step: int, loss: float, median: float) -> str:
    return (f"the loss spiked to {_n(loss)} at step {step}, {loss / median:.1f}x its recent median {_n(median)}: likely "
            "a learning rate too high or a bad batch; lower learning_rate or lengthen the warmup (warmup_ratio), and "
            "check the rows with `sft-tui validate`")


def health_zero(step: int) -> str:
    return (f"the loss is exactly 0 at step {step}, so every label is likely masked and nothing is learned: check that "
            "the template matches the model, that cutoff_len is longer than the prompts, or set train_on_prompt")


def health_overfitting(step: int, evals: list[float]) -> str:
    rising = " -> ".join(_n(v) for v in evals)
    return (f"eval_loss rose at {len(evals) - 1} evaluations in a row ({rising}, step {step}) while the training loss "
            "fell: the model is overfitting; train fewer epochs (num_train_epochs), or keep the best checkpoint "
            "(load_best_model_at_end with metric_for_best_model eval_loss)")


def health_flat(step: int, points: int, first: float, last: float, change: float) -> str:
    return (f"the loss has not moved ({_n(first)} at the first logged step, {_n(last)} at step {step}; {change:.2%} over "
            f"the last {points} logged steps): likely a learning rate too low or every weight frozen; raise learning_rate, or check "
            "finetuning_type and lora_target")
