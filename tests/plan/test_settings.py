"""The gate for user settings (tui.plan.settings): exact problem lines, typed values, and a
property test that no input raises or runs anything."""

import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tui.plan.settings import (
    SettingError,
    argument,
    check_setting,
    check_settings,
    is_argument,
    schema_versions,
    suggest,
)


def problems_of(raw, **kwargs):
    return check_settings(raw, **kwargs)[1]


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ({"lora_rnak": 8}, "unknown setting 'lora_rnak': did you mean lora_rank?"),
        ({"zzqx": 1}, "unknown setting 'zzqx': not a LLaMA-Factory argument"),
        ({"model_max_length": 512}, "unknown setting 'model_max_length': LLaMA-Factory computes it itself"),
        ({"lora_rank": "abc"}, "lora_rank: 'abc' is not an integer"),
        ({"lora_rank": "4k"}, "lora_rank: '4k' is not an integer"),
        ({"lora_rank": "1.5"}, "lora_rank: '1.5' is not an integer"),
        ({"lora_rank": 1.5}, "lora_rank: 1.5 is not an integer"),
        ({"lora_rank": True}, "lora_rank: true is not an integer"),
        ({"lora_rank": None}, "lora_rank: null is not an integer"),
        ({"lora_rank": "null"}, "lora_rank: 'null' is not an integer"),
        ({"learning_rate": "fast"}, "learning_rate: 'fast' is not a number"),
        ({"learning_rate": "1e999"}, "learning_rate: '1e999' is not a finite number"),
        ({"learning_rate": float("nan")}, "learning_rate: nan is not a finite number"),
        ({"bf16": "maybe"}, "bf16: 'maybe' is not true or false"),
        ({"bf16": 1}, "bf16: 1 is not true or false"),
        ({"template": 7}, "template: 7 is not a string"),
        ({"lora_target": ["q_proj", 3]}, "lora_target: ['q_proj', 3] is not a string"),
        ({"lora_target": []}, "lora_target: [] is not a string"),
        ({"lora_target": ["a,b"]}, "lora_target: ['a,b'] is not a string"),
        (
            {"lr_scheduler_type": "cosin"},
            (
                "lr_scheduler_type: 'cosin' is not one of linear, cosine, cosine_with_restarts, polynomial,"
                " constant, constant_with_warmup, inverse_sqrt, reduce_lr_on_plateau, cosine_with_min_lr,"
                " cosine_warmup_with_min_lr, warmup_stable_decay, greedy; did you mean cosine?"
            ),
        ),
        (
            {"finetuning_type": "qlora"},
            "finetuning_type: 'qlora' is not one of lora, oft, freeze, full; did you mean lora?",
        ),
        ({"stage": ""}, "stage: '' is not one of pt, sft, rm, ppo, dpo, kto"),
        (
            {"rope_scaling": "Linear"},
            "rope_scaling: 'Linear' is not one of linear, dynamic, yarn, llama3, null; did you mean linear?",
        ),
        ({"label_names": [1]}, "label_names: list item 1 is not a string"),
        (
            {"fsdp": ["full_shard", "bad"]},
            (
                "fsdp: list item 'bad' is not one of full_shard, shard_grad_op, no_shard, hybrid_shard,"
                " hybrid_shard_zero2, offload, auto_wrap"
            ),
        ),
        ({"liger_kernel_config": "rope"}, "liger_kernel_config: 'rope' is not a mapping"),
        ({"per_device_train_batch_size": 0}, "per_device_train_batch_size: 0 is too small (at least 1)"),
        ({"per_device_train_batch_size": "0"}, "per_device_train_batch_size: 0 is too small (at least 1)"),
        ({"per_device_eval_batch_size": -1}, "per_device_eval_batch_size: -1 is too small (at least 1)"),
        ({"gradient_accumulation_steps": 0}, "gradient_accumulation_steps: 0 is too small (at least 1)"),
        ({"lora_rank": 0}, "lora_rank: 0 is too small (at least 1)"),
        ({"cutoff_len": 0}, "cutoff_len: 0 is too small (at least 1)"),
        ({"save_steps": 0}, "save_steps: 0 is too small (more than 0)"),
        ({"logging_steps": -5}, "logging_steps: -5 is too small (more than 0)"),
        ({"eval_steps": "2.5"}, "eval_steps: 2.5 is not a whole number of steps (below 1 it is a ratio)"),
        ({"learning_rate": 0}, "learning_rate: 0 is too small (more than 0)"),
        ({"num_train_epochs": "0"}, "num_train_epochs: 0 is too small (more than 0)"),
        ({"lora_dropout": 1}, "lora_dropout: 1 is too large (less than 1)"),
        ({"lora_dropout": -0.1}, "lora_dropout: -0.1 is too small (at least 0)"),
        ({"lora_alpha": 0}, "lora_alpha: 0 is too small (more than 0)"),
        ({"max_samples": 0}, "max_samples: 0 is too small (at least 1)"),
        ({"warmup_ratio": 1.5}, "warmup_ratio: 1.5 is too large (at most 1)"),
        ({"warmup_steps": -1}, "warmup_steps: -1 is too small (at least 0)"),
        ({"export_quantization_bit": 5}, "export_quantization_bit: 5 is not allowed (allowed: 2, 3, 4, 8)"),
        (
            {"gradient_accumulation_steps": "9" * 30},
            "gradient_accumulation_steps: '999999999999999999999999999999' is too large (at most 9223372036854775807)",
        ),
        ({"cutoff_len": 2**70}, "cutoff_len: 1180591620717411303424 is too large (at most 9223372036854775807)"),
        ({"lora_rank": [10**5000]}, "lora_rank: a list too large to show is not an integer"),
        ({"lora_rank": "x" * 100}, f"lora_rank: '{'x' * 56}... is not an integer"),
        ({"quantization_bit": 3}, "quantization_bit: 3 is not allowed with quantization_method bnb (allowed: 4, 8)"),
        (
            {"quantization_bit": 7, "quantization_method": "hqq"},
            "quantization_bit: 7 is not allowed with quantization_method hqq (allowed: 1, 2, 3, 4, 5, 6, 8)",
        ),
        (
            {"quantization_bit": 4, "quantization_method": "eetq"},
            "quantization_bit: 4 is not allowed with quantization_method eetq (allowed: 8)",
        ),
        (
            {"quantization_bit": 4, "quantization_method": "gptq"},
            (
                "quantization_bit: 4 cannot be used with quantization_method gptq"
                " (LLaMA-Factory quantizes on the fly with bnb, eetq, hqq only)"
            ),
        ),
        ({"output_dir": "line one\nline two", "lora_rank": "x\ny"}, "lora_rank: 'x\\ny' is not an integer"),
    ],
)
def test_problem_messages(raw, problem):
    assert problems_of(raw) == [problem]


def test_quantization_method_from_context():
    assert problems_of({"quantization_bit": "4"}, context={"quantization_method": "eetq"}) == [
        "quantization_bit: 4 is not allowed with quantization_method eetq (allowed: 8)"
    ]
    assert check_settings({"quantization_bit": "8"}, context={"quantization_method": "eetq"}) == (
        {"quantization_bit": 8},
        [],
    )


def test_a_bad_quantization_method_is_one_problem_not_two():
    assert problems_of({"quantization_bit": 4, "quantization_method": "nope"}) == [
        "quantization_method: 'nope' is not one of bnb, gptq, awq, aqlm, quanto, eetq, hqq, mxfp4, fp8"
    ]


def test_typed_values_from_text():
    typed, problems = check_settings(
        {
            "lora_rank": "16",
            "learning_rate": "2e-4",
            "num_train_epochs": "3",
            "lora_dropout": "0.05",
            "bf16": "Yes",
            "fp16": "0",
            "gradient_checkpointing": "TRUE",
            "lr_scheduler_type": "cosine",
            "lora_target": "q_proj,v_proj",
            "dataset": "alpaca_en_demo,identity",
            "max_samples": "null",
            "eval_dataset": "",
            "save_steps": "0.25",
            "report_to": "none",
            "include_for_metrics": "inputs,loss",
            "label_names": '["labels"]',
            "liger_kernel_config": '{"rope": true}',
            "output_dir": "saves/run 1",
        }
    )
    assert problems == []
    assert typed == {
        "lora_rank": 16,
        "learning_rate": 2e-4,
        "num_train_epochs": 3,
        "lora_dropout": 0.05,
        "bf16": True,
        "fp16": False,
        "gradient_checkpointing": True,
        "lr_scheduler_type": "cosine",
        "lora_target": "q_proj,v_proj",
        "dataset": "alpaca_en_demo,identity",
        "max_samples": None,
        "eval_dataset": None,
        "save_steps": 0.25,
        "report_to": "none",
        "include_for_metrics": ["inputs", "loss"],
        "label_names": ["labels"],
        "liger_kernel_config": {"rope": True},
        "output_dir": "saves/run 1",
    }
    assert type(typed["lora_rank"]) is int and type(typed["learning_rate"]) is float


def test_typed_values_from_json_or_yaml():
    typed, problems = check_settings(
        {"lora_rank": 8.0, "learning_rate": 1, "lora_target": ["q_proj", "v_proj"], "bf16": False, "max_samples": None}
    )
    assert problems == []
    assert typed == {
        "lora_rank": 8, "learning_rate": 1, "lora_target": "q_proj,v_proj", "bf16": False, "max_samples": None
    }
    assert type(typed["lora_rank"]) is int
    # An Optional comma-separated argument given no items is unset.
    assert check_settings({"adapter_name_or_path": []}) == ({"adapter_name_or_path": None}, [])


def test_values_are_never_expanded():
    raw = {"output_dir": "$(rm -rf /)", "run_name": "${HOME}/`id`", "template": "~/x; ls"}
    assert check_settings(raw) == (raw, [])


def test_only_bad_settings_are_left_out():
    typed, problems = check_settings({"lora_rank": "8", "cutoff_len": "4k", "lora_rnak": 8})
    assert typed == {"lora_rank": 8}
    assert len(problems) == 2


def test_check_setting_raises_the_problem():
    assert check_setting("cutoff_len", "2048") == 2048
    with pytest.raises(SettingError, match=r"^cutoff_len: '4k' is not an integer$"):
        check_setting("cutoff_len", "4k")


def test_lookups():
    assert is_argument("lora_rank") and not is_argument("lora_rnak") and not is_argument(3)
    assert suggest("lora-rank") == "lora_rank"
    assert suggest("zzqx") is None
    assert argument("lora_rank")["default"] == 8
    with pytest.raises(SettingError, match="did you mean lora_rank"):
        argument("lora_rnak")
    assert schema_versions()["llamafactory_version"] == "0.9.5"


def test_the_gate_imports_no_training_library():
    code = "import sys, tui.plan.settings as s; s.check_settings({'lora_rank': '8'}); " + (
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'transformers', 'llamafactory'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# --- property: any input gives (typed, problems), and nothing is run ---------------------------

REAL_KEYS = ["lora_rank", "learning_rate", "bf16", "lr_scheduler_type", "lora_target", "dataset",
             "max_samples", "quantization_bit", "quantization_method", "report_to", "fsdp",
             "label_names", "liger_kernel_config", "deepspeed", "output_dir", "lora_dropout",
             "save_steps", "rope_scaling", "include_num_input_tokens_seen", "debug"]


def _near_miss(key: str):
    return st.sampled_from([key.upper(), key[:-1], key + "s", key.replace("_", "-"), " " + key, key[::-1]])


def _values(marker: str):
    shell = [f"$(touch {marker})", f"`touch {marker}`", f"; touch {marker}", f"| touch {marker}", "${HOME}", "~"]
    scalars = st.one_of(
        st.sampled_from(["", " ", "null", "none", "true", "No", "0", "-1", "1.5", "2e-4", "4k", "inf", "nan",
                         "[1, 2]", "[[[[", '{"a": 1}', "[" * 5000, "9" * 5000, "a,b", "é\u2028\n\r\t\x00"]
                        + shell),
        st.text(),
        st.integers(),
        st.integers(min_value=-(10**4000), max_value=10**4000),  # under repr's 4300 digits: hypothesis prints examples
        st.floats(allow_nan=True, allow_infinity=True),
        st.booleans(),
        st.none(),
    )
    def containers(inner):
        return st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=3)

    return st.recursive(scalars, containers, max_leaves=8)


@pytest.fixture
def nothing_runs(monkeypatch):
    """Any attempt to start a process fails the test."""
    def refuse(*args, **kwargs):
        raise AssertionError(f"the gate tried to run something: {args!r}")

    monkeypatch.setattr(subprocess, "Popen", refuse)
    monkeypatch.setattr(os, "system", refuse)
    monkeypatch.setattr(os, "popen", refuse)


def test_any_input_returns_typed_and_problems(tmp_path, nothing_runs):
    marker = tmp_path / "executed"

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        st.dictionaries(
            st.one_of(st.sampled_from(REAL_KEYS), st.sampled_from(REAL_KEYS).flatmap(_near_miss), st.text(max_size=12)),
            _values(str(marker)),
            max_size=6,
        ),
        st.one_of(st.none(), st.fixed_dictionaries({"quantization_method": _values(str(marker))})),
    )
    def check(raw, context):
        typed, problems = check_settings(raw, context=context)
        assert set(typed) <= set(raw)
        assert all(isinstance(p, str) and p and len(p.splitlines()) == 1 for p in problems)
        assert len(typed) + len(problems) == len(raw)  # each setting is typed or has its problem
        assert check_settings(typed, context=context) == (typed, [])  # typed values pass again

    check()
    assert not marker.exists()
