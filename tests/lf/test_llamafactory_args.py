"""schemas/llamafactory-args.json is what tui/lf/llamafactory_args.py writes for the installed
LLaMA-Factory: regenerated in a subprocess (the pytest process never imports llamafactory)."""

import importlib.util
import json
import subprocess
import sys

import pytest

from tests.support.llamafactory import REPO, offline_env

COMMITTED = REPO / "schemas" / "llamafactory-args.json"


def _properties() -> dict:
    return json.loads(COMMITTED.read_text(encoding="utf-8"))["properties"]


@pytest.mark.llamafactory
@pytest.mark.skipif(
    importlib.util.find_spec("llamafactory") is None,  # finds the package without importing it
    reason="llamafactory is not installed in this environment (the train extra)",
)
def test_committed_schema_is_what_the_generator_writes(tmp_path):
    out = tmp_path / "llamafactory-args.json"
    result = subprocess.run(
        [sys.executable, str(REPO / "tui" / "lf" / "llamafactory_args.py"), str(out)],
        env=offline_env(),
        check=False,  # the assertion below shows stderr
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert out.read_bytes() == COMMITTED.read_bytes(), (
        "schemas/llamafactory-args.json is stale: regenerate it with "
        "`python tui/lf/llamafactory_args.py schemas/llamafactory-args.json`"
    )


def test_schema_header_names_the_versions_and_the_dialect():
    schema = json.loads(COMMITTED.read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["llamafactory_version"] == "0.9.5"
    assert schema["transformers_version"]
    assert schema["additionalProperties"] is False
    assert COMMITTED.read_text(encoding="utf-8").endswith("}\n")


def test_spot_checks():
    props = _properties()
    assert props["lora_rank"]["type"] == "integer"
    assert props["lora_rank"]["default"] == 8
    assert props["lora_rank"]["x-group"] == "finetuning"
    assert "cosine" in props["lr_scheduler_type"]["enum"]
    assert props["lr_scheduler_type"]["type"] == "string"  # SchedulerType | str -> its values
    assert props["bf16"] == {**props["bf16"], "type": "boolean", "default": False, "x-group": "training"}
    assert props["learning_rate"]["type"] == "number"
    assert props["max_samples"]["type"] == ["integer", "null"]
    assert props["finetuning_type"]["enum"] == ["lora", "oft", "freeze", "full"]
    assert props["quantization_method"]["default"] == "bnb"  # an Enum default as its value
    assert props["rope_scaling"]["enum"][-1] is None  # Optional[Enum]: null is a choice
    assert props["include_for_metrics"] == {**props["include_for_metrics"], "type": "array", "default": []}
    assert props["template"]["x-group"] == "data"
    assert props["cutoff_len"]["description"]


def test_fields_llamafactory_splits_on_commas_stay_strings():
    props = _properties()
    for name in ("lora_target", "dataset", "additional_target"):
        assert props[name]["x-comma-separated"] is True
        assert "string" in props[name]["type"]


def test_fields_llamafactory_computes_are_not_settable():
    schema = json.loads(COMMITTED.read_text(encoding="utf-8"))
    assert "model_max_length" in schema["x-not-settable"]
    assert "model_max_length" not in schema["properties"]


def test_every_default_fits_its_own_schema():
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(COMMITTED.read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    defaults = {name: entry["default"] for name, entry in schema["properties"].items()}
    assert not list(jsonschema.Draft202012Validator(schema).iter_errors(defaults))
