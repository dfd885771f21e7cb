"""A plan's sentences agree in number: a one-row dataset is "1 training row", never "1 rows"."""

from __future__ import annotations

import json
import re

from tui.cli.main import main

ONE_PLURAL = re.compile(r"\b1 (?:training |valid |optimizer )?(?:rows|steps|GPUs|errors|warnings|devices)\b")


def test_a_one_row_dataset_is_planned_in_the_singular(tmp_path, capsys):
    data = tmp_path / "one.jsonl"
    data.write_text('{"instruction": "Say hi", "input": "", "output": "hi"}\n')
    code = main(["plan", "--model", "qwen2.5-0.5b", "--hardware", "rtx4080-16g", "--dataset", str(data),
                 "--set", "num_train_epochs=1", "--set", "per_device_train_batch_size=1",
                 "--set", "gradient_accumulation_steps=1", "--json"])
    plan = json.loads(capsys.readouterr().out)
    said = "\n".join([*(r["text"] for r in plan["reasons"].values()), *plan["warnings"],
                      *plan["time_estimate"]["assumptions"]] if plan.get("time_estimate") else
                     [*(r["text"] for r in plan["reasons"].values()), *plan["warnings"]])
    assert code in (0, 1) and "1 training row is a small dataset" in said, said
    assert not ONE_PLURAL.findall(said), ONE_PLURAL.findall(said)


def test_a_value_in_a_reason_is_spelled_as_train_yaml_spells_it(capsys):
    code = main(["plan", "--model", "qwen2.5-0.5b", "--hardware", "rtx4080-16g", "--set", "quantization_bit=null",
                 "--set", "packing=true", "--json"])
    reasons = json.loads(capsys.readouterr().out)["reasons"]
    assert code == 0
    assert "sft-tui would choose null" in reasons["quantization_bit"]["text"], reasons["quantization_bit"]
    assert not re.search(r"would choose (none|None|True|False)\b", json.dumps(reasons))
