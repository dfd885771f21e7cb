"""ModelScope resolution (--modelscope / USE_MODELSCOPE_HUB=1): the ModelScope cache offline,
ModelScope's API only when the optional modelscope package is installed (a stand-in module here:
nothing reaches the network), else one sentence."""

from __future__ import annotations

import json
import sys

import pytest

from tests.models.test_architecture import TINY
from tui.models import modelscope as ms
from tui.models.architecture import Architecture, ModelError
from tui.models.resolve import resolve_model

QWEN2 = dict(TINY["qwen2"], architectures=["Qwen2ForCausalLM"])


@pytest.fixture(autouse=True)
def _no_facts(monkeypatch, tmp_path):
    monkeypatch.setenv("SFT_TUI_MODEL_FACTS", "0")
    monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path / "ms-cache"))
    monkeypatch.delenv("USE_MODELSCOPE_HUB", raising=False)


def test_a_modelscope_id_in_the_modelscope_cache_resolves_offline(tmp_path, monkeypatch):
    folder = tmp_path / "ms-cache" / "models" / "Qwen" / "Qwen2___5-0___5B-Instruct"  # each dot stored as ___
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(QWEN2), encoding="utf-8")
    monkeypatch.setenv("USE_MODELSCOPE_HUB", "1")
    monkeypatch.setattr(ms, "_modelscope_python", lambda: None)  # never ModelScope's API here
    model = resolve_model("Qwen/Qwen2.5-0.5B-Instruct", _EmptyProfiles())  # no profile covers it here
    assert (model.source, model.model_name_or_path, model.template) == ("modelscope", "Qwen/Qwen2.5-0.5B-Instruct", "qwen")
    assert model.notes[0] == f"config.json from the ModelScope cache ({folder})"


class _EmptyProfiles:  # the built-in profiles cover Qwen/Qwen2.5-0.5B-Instruct: none here
    def of(self, kind):
        return []

    def names(self, kind):
        return []


def test_without_the_modelscope_package_one_sentence(monkeypatch):
    monkeypatch.setattr(ms.importlib.util, "find_spec", lambda name: None)  # not here,
    monkeypatch.setattr("tui.hardware.environment.find_llamafactory", lambda: None)  # no training environment
    with pytest.raises(ModelError) as err:
        resolve_model("someorg/some-model", _EmptyProfiles(), modelscope=True)
    assert "needs the modelscope package (pip install modelscope); or plan with its Hugging Face id" in str(err.value)


FAKE_MODELSCOPE = """
import json, os
from pathlib import Path

def model_file_download(model_id, file_path, cache_dir=None):
    Path(os.environ["ASKED"]).write_text(json.dumps([model_id, file_path, cache_dir]))
    if model_id == "someorg/other":
        raise RuntimeError("404 model not found")
    path = Path(cache_dir) / model_id / file_path
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(os.environ["CONFIG"])
    return str(path)
"""


def test_the_modelscope_api_downloads_config_json_only(monkeypatch, tmp_path):
    package = tmp_path / "fake" / "modelscope" / "hub"
    package.mkdir(parents=True)
    (package.parent / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "file_download.py").write_text(FAKE_MODELSCOPE)
    monkeypatch.setenv("PYTHONPATH", str(tmp_path / "fake"))  # the subprocess's modelscope: no network
    monkeypatch.setenv("ASKED", str(tmp_path / "asked.json"))
    monkeypatch.setenv("CONFIG", json.dumps(QWEN2))
    monkeypatch.setattr(ms.importlib.util, "find_spec", lambda name: object())
    model = resolve_model("someorg/some-model", _EmptyProfiles(), modelscope=True)
    model_id, file_path, cache_dir = json.loads((tmp_path / "asked.json").read_text())
    assert (model_id, file_path) == ("someorg/some-model", "config.json") and cache_dir.endswith("modelscope")
    assert model.source == "modelscope" and model.params == Architecture.from_config(QWEN2).param_count()
    assert model.notes[0] == "config.json from ModelScope"
    with pytest.raises(ModelError, match=r"ModelScope has no config.json for someorg/other or cannot be reached "
                                         r"\(RuntimeError: 404 model not found\)"):
        resolve_model("someorg/other", _EmptyProfiles(), modelscope=True)
    assert "torch" not in sys.modules
