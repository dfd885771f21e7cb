"""Look-ups over LLaMA-Factory's model table (profiles/llamafactory-models.json), read as data."""

import sys

import pytest

from tui.models import lf_table
from tui.models.lf_table import family_template, lookup, search, suggest, template_for


def test_lookup_ignores_case_and_takes_names_and_modelscope_ids():
    model = lookup("qwen/QWEN2.5-7b-instruct")
    assert model.name == "Qwen2.5-7B-Instruct"
    assert model.hf == "Qwen/Qwen2.5-7B-Instruct"
    assert lookup(" Qwen2.5-7B-Instruct ") == model  # LLaMA-Factory's own name
    llama = lookup("LLM-Research/Meta-Llama-3-8B-Instruct")  # ModelScope only
    assert llama.hf == "meta-llama/Meta-Llama-3-8B-Instruct"
    assert lookup("no-such-org/no-such-model") is None


def test_a_modelscope_id_listed_twice_belongs_to_the_model_whose_hugging_face_id_it_is():
    # LLaMA-Factory gives Qwen2.5-Math-7B-Instruct the ModelScope id of Qwen2.5-Coder-7B-Instruct.
    assert lookup("Qwen/Qwen2.5-Coder-7B-Instruct").name == "Qwen2.5-Coder-7B-Instruct"
    assert lookup("Qwen/Qwen2.5-Math-7B-Instruct").name == "Qwen2.5-Math-7B-Instruct"


def test_renames_work_both_ways():
    # LLaMA-Factory lists the old Llama 3.1 id: the new one finds it.
    assert lookup("meta-llama/Llama-3.1-8B-Instruct").hf == "meta-llama/Meta-Llama-3.1-8B-Instruct"
    assert lookup("meta-llama/Meta-Llama-3.1-8B-Instruct").name == "Llama-3.1-8B-Instruct"
    # LLaMA-Factory lists the new GLM organisation: the old one finds it.
    assert lookup("THUDM/glm-4-9b-chat").hf == "zai-org/glm-4-9b-chat"
    assert template_for("thudm/GLM-4-9B-Chat") == "glm4"


def test_every_rename_names_an_organisation_or_prefix_the_table_holds():
    hub_ids = [hub_id.lower() for model in lf_table._table().models for hub_id in model.hub_ids]
    for old, new in lf_table.RENAMES:
        assert any(h.startswith((old.lower(), new.lower())) for h in hub_ids), (old, new)


def test_template_for_takes_the_group_template_for_a_base_model():
    assert template_for("Qwen/Qwen2.5-7B-Instruct") == "qwen"
    assert template_for("Qwen/Qwen2.5-7B") == "qwen"
    assert template_for("meta-llama/Llama-3.2-1B-Instruct") == "llama3"
    assert template_for("/data/my-model") is None


def test_search_ranks_exact_then_prefix_then_substring():
    names = [model.name for model in search("QWEN3-8b")]
    assert names == [
        "Qwen3-8B-Thinking",  # exact: its hub id is Qwen/Qwen3-8B
        "Qwen3-8B-Base",  # prefixes, shorter names first
        "Qwen3-8B-Thinking-AWQ",
        "DeepSeek-R1-0528-8B-Distill",  # substring: deepseek-ai/DeepSeek-R1-0528-Qwen3-8B
    ]
    assert [model.name for model in search("qwen3-8b", limit=2)] == names[:2]
    assert len(search("qwen", limit=5)) == 5
    assert search("   ") == []
    assert search("no-such-model") == []


def test_suggest_a_close_hub_id_for_a_typo():
    assert suggest("Qwen/Qwen2.5-7B-Instruc")[0] == "Qwen/Qwen2.5-7B-Instruct"
    assert suggest("lama-3.1-8b-instruct")[0] == "Llama-3.1-8B-Instruct"
    assert len(suggest("Qwen/Qwen2.5-7B-Instruc", limit=2)) == 2
    assert suggest("zzzzzzzz") == []


@pytest.mark.parametrize(
    ("model_type", "template"),
    [
        ("llama", "llama3"), ("mistral", "mistral"), ("mixtral", "mistral"), ("qwen2", "qwen"),
        ("qwen2_moe", "qwen"), ("qwen3", "qwen3"), ("qwen3_moe", "qwen3"), ("gemma", "gemma"),
        ("gemma2", "gemma2"), ("gemma3", "gemma3"), ("glm4", "glm4"), ("phi3", "phi"),
        ("deepseek_v2", "deepseek"), ("deepseek_v3", "deepseek3"), ("olmo2", "olmo"),
        ("granite", "granite3"), ("internlm2", "intern2"), ("bert", None),
    ],
)
def test_family_template(model_type, template):
    assert family_template(model_type) == template


def test_every_family_prefix_names_models_of_the_table():
    names = [model.name.lower() for model in lf_table._table().models]
    for model_type, prefixes in lf_table.FAMILY_PREFIXES.items():
        for prefix in prefixes:
            assert any(name.startswith(prefix.lower()) for name in names), (model_type, prefix)


def test_reading_the_table_imports_nothing_from_the_training_environment():
    lookup("Qwen/Qwen2.5-7B-Instruct")
    assert not {"torch", "transformers", "llamafactory"} & set(sys.modules)
