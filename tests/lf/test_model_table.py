"""profiles/llamafactory-models.json is what tui/lf/model_table.py writes for the installed
LLaMA-Factory: regenerated in a subprocess (the pytest process never imports llamafactory)."""

import importlib.util
import json
import subprocess
import sys

import pytest

from tests.support.llamafactory import REPO, offline_env

COMMITTED = REPO / "profiles" / "llamafactory-models.json"


def _models() -> dict[str, dict]:
    """The committed entries by Hugging Face id."""
    return {entry["hf"]: entry for entry in json.loads(COMMITTED.read_text(encoding="utf-8"))["models"]}


@pytest.mark.llamafactory
@pytest.mark.skipif(
    importlib.util.find_spec("llamafactory") is None,  # finds the package without importing it
    reason="llamafactory is not installed in this environment (the train extra)",
)
def test_committed_table_is_what_the_generator_writes(tmp_path):
    out = tmp_path / "llamafactory-models.json"
    result = subprocess.run(
        [sys.executable, str(REPO / "tui" / "lf" / "model_table.py"), str(out)],
        check=False,  # the assertion below shows stderr
        env=offline_env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert out.read_bytes() == COMMITTED.read_bytes(), (
        "profiles/llamafactory-models.json is stale: regenerate it with "
        "`python tui/lf/model_table.py profiles/llamafactory-models.json`"
    )


def test_header_and_shape():
    table = json.loads(COMMITTED.read_text(encoding="utf-8"))
    assert table["llamafactory_version"] == "0.9.5"
    assert COMMITTED.read_text(encoding="utf-8").endswith("]\n}\n")
    names = [entry["name"] for entry in table["models"]]
    assert names == sorted(names, key=lambda name: (name.lower(), name))
    assert len(set(names)) == len(names) > 500
    assert all(entry["hf"] for entry in table["models"])  # every model has a Hugging Face id


def test_spot_checks():
    models = _models()
    instruct = models["Qwen/Qwen2.5-7B-Instruct"]
    assert instruct == {
        "group": "Qwen2.5-0.5B",
        "group_template": "qwen",
        "hf": "Qwen/Qwen2.5-7B-Instruct",
        "modelscope": "Qwen/Qwen2.5-7B-Instruct",
        "multimodal": False,
        "name": "Qwen2.5-7B-Instruct",
        "template": "qwen",
    }
    # LLaMA-Factory names no default template for a base model; its group's template is kept.
    assert models["Qwen/Qwen2.5-7B"]["template"] is None
    assert models["Qwen/Qwen2.5-7B"]["group_template"] == "qwen"
    assert models["meta-llama/Llama-3.2-1B-Instruct"]["template"] == "llama3"
    assert models["Qwen/Qwen2-VL-7B-Instruct"]["multimodal"] is True
    assert models["Qwen/Qwen2-VL-7B-Instruct"]["template"] == "qwen2_vl"
    assert models["Qwen/Qwen2-VL-7B-Instruct"]["openmind"] == "LlamaFactory/Qwen2-VL-7B-Instruct"
    assert "openmind" not in instruct
