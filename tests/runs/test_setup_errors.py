"""Exceptions that mean the run cannot work here as planned become one sentence with the fix."""

from __future__ import annotations

import pytest

from tui.runs.diagnoses import setup_error_sentence


@pytest.mark.parametrize("exception", [
    "OSError: Failed to load tokenizer.",
    "OSError: We couldn't connect to 'https://huggingface.co' to load the files, and couldn't find them in the cached files.",
    "huggingface_hub.errors.LocalEntryNotFoundError: Cannot find the requested files in the disk cache and outgoing "
    "traffic has been disabled. To enable hf.co look-ups and downloads online, set 'local_files_only' to False.",
])
def test_a_model_not_downloaded_with_no_hub_is_one_sentence(exception):
    sentence = setup_error_sentence(exception)
    assert sentence.startswith("LLaMA-Factory could not load the model or its tokenizer: it is not downloaded here")
    assert "`hf download MODEL_ID`" in sentence


def test_other_exceptions_are_left_as_they_are():
    assert setup_error_sentence("ValueError: something else") is None
