"""ModelScope resolution (--modelscope / USE_MODELSCOPE_HUB=1): the ModelScope cache offline,
ModelScope's API only when the optional modelscope package is installed (a stand-in module here:
nothing reaches the network), else one sentence."""

from __future__ import annotations

import json
import sys
import types

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
    monkeypatch.setattr(ms.importlib.util, "find_spec", lambda name: None)  # never ModelScope's API here
    model = resolve_model("Qwen/Qwen2.5-0.5B-Instruct", _EmptyProfiles())  # no profile covers it here
    assert (model.source, model.model_name_or_path, model.template) == ("modelscope", "Qwen/Qwen2.5-0.5B-Instruct", "qwen")
    assert model.notes[0] == f"config.json from the ModelScope cache ({folder})"


class _EmptyProfiles:  # the built-in profiles cover Qwen/Qwen2.5-0.5B-Instruct: none here
    def of(self, kind):
        return []

    def names(self, kind):
        return []


def test_without_the_modelscope_package_one_sentence(monkeypatch):
    monkeypatch.setattr(ms.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelError) as err:
        resolve_model("someorg/some-model", _EmptyProfiles(), modelscope=True)
    assert "needs the modelscope package (pip install modelscope); or plan with its Hugging Face id" in str(err.value)


def test_the_modelscope_api_downloads_config_json_only(monkeypatch, tmp_path):
    asked = {}

    def model_file_download(model_id, file_path, cache_dir):
        asked.update(model_id=model_id, file_path=file_path)
        path = tmp_path / "dl" / "config.json"
        path.parent.mkdir()
        path.write_text(json.dumps(QWEN2), encoding="utf-8")
        return str(path)

    def failing(model_id, file_path, cache_dir):
        raise RuntimeError("404 model not found")

    fake = types.ModuleType("modelscope.hub.file_download")
    fake.model_file_download = model_file_download
    monkeypatch.setitem(sys.modules, "modelscope", types.ModuleType("modelscope"))
    monkeypatch.setitem(sys.modules, "modelscope.hub", types.ModuleType("modelscope.hub"))
    monkeypatch.setitem(sys.modules, "modelscope.hub.file_download", fake)
    monkeypatch.setattr(ms.importlib.util, "find_spec", lambda name: object())
    model = resolve_model("someorg/some-model", _EmptyProfiles(), modelscope=True)
    assert asked == {"model_id": "someorg/some-model", "file_path": "config.json"}
    assert model.source == "modelscope" and model.params == Architecture.from_config(QWEN2).param_count()
    fake.model_file_download = failing
    with pytest.raises(ModelError, match=r"ModelScope has no config.json for someorg/other or cannot be reached "
                                         r"\(RuntimeError: 404 model not found\)"):
        resolve_model("someorg/other", _EmptyProfiles(), modelscope=True)
