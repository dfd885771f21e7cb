"""Host RAM per node with its parts, and the cost of each cutoff_len."""

from __future__ import annotations

import json

import pytest

from tests.plan.test_planner import request
from tui.cli.main import main
from tui.plan.host_ram import PROCESS_GIB, SHARD_GIB, host_ram, host_ram_warning
from tui.plan.planner import plan
from tui.plan.values import DataFacts

SEVENTY_B = 70_553_706_496


def test_every_process_loads_its_own_shards_and_offload_lands_in_ram():
    one = host_ram(SEVENTY_B, 1, 0.0, None, None, None)
    eight = host_ram(SEVENTY_B, 8, 0.0, None, None, None)
    assert one.parts["loading"] == SHARD_GIB  # one shard at a time, never the whole 70B
    assert eight.parts["loading"] == pytest.approx(8 * one.parts["loading"])
    assert eight.parts["processes"] == 8 * PROCESS_GIB
    assert host_ram(SEVENTY_B, 2, 40.0, None, None, None).parts["offload"] == 80.0
    tokens = host_ram(SEVENTY_B, 1, 0.0, 10_000_000, 4, None)
    assert tokens.parts["preprocessing"] > one.parts["preprocessing"]
    assert one.fits is None and host_ram_warning(one) is None  # unknown RAM: no verdict


def test_too_little_ram_is_one_sentence_with_the_fix():
    short = host_ram(SEVENTY_B, 8, 0.0, None, None, available_gib=48)
    assert short.fits is False
    warning = host_ram_warning(short)
    assert warning == ("host RAM: training needs about 56 GiB of 43 GiB usable on the node (most for loading: 40 GiB): "
                       "fewer GPUs per node, or a machine with more RAM (each process loads its own shards)")
    merge_only = host_ram(SEVENTY_B, 1, 0.0, None, None, available_gib=64)
    assert merge_only.fits is False and host_ram_warning(merge_only).startswith(
        "host RAM: merging the adapter (sft-tui merge) needs about 140 GiB of 58 GiB usable here")
    assert host_ram(SEVENTY_B, 1, 0.0, None, None, available_gib=512).fits is True


def test_a_plan_compares_host_ram_with_the_profile_or_this_machine():
    req = request("h100-80g", "llama-3.1-70b", gpus=8)
    req.host_ram_gib = 128.0
    result = plan(req)
    assert result.host_ram.available_gib == 128.0 and result.host_ram.fits is False
    assert any(w.startswith("host RAM: merging the adapter") for w in result.warnings)
    assert result.to_json()["estimate"]["host_ram_parts"]["loading"] == 8 * SHARD_GIB


DATA = DataFacts(train_rows=100, row_tokens_max=1500, row_tokens={100: 60, 700: 30, 1500: 10}, exact_tokens=True)


def test_cutoff_options_cost_each_multiple_of_256_up_to_the_longest_row():
    result = plan(request("rtx4080-16g", "qwen2.5-7b", data=DATA))
    options = result.cutoff_options
    assert [o["cutoff_len"] for o in options] == [256, 512, 768, 1024, 1280, 1536]
    assert [o["rows_truncated"] for o in options] == [40, 40, 10, 10, 10, 0]
    assert [o["per_device_gib"] for o in options] == sorted(o["per_device_gib"] for o in options)
    assert all(isinstance(o["fits"], bool) for o in options)
    assert result.to_json()["cutoff_options"] == options


def test_many_candidates_are_thinned_and_the_longest_kept():
    data = DataFacts(train_rows=10, row_tokens_max=32000, row_tokens={32000: 10}, exact_tokens=True)
    options = plan(request("a100-80g", "qwen2.5-0.5b", data=data)).cutoff_options
    assert len(options) <= 24 and options[-1]["cutoff_len"] == 32000 // 256 * 256 + (256 if 32000 % 256 else 0)


def test_the_cli_prints_the_cutoff_table(capsys, tmp_path):
    rows = [{"instruction": "q " * n, "output": "a"} for n in (10, 300, 900)]
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["plan", "--model", "qwen2.5-0.5b", "--hardware", "rtx4080-16g", "--dataset", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Cutoff options (rows truncated, memory per device at this batch):" in out
    assert "host RAM per node:" in out


def test_on_the_cpu_the_step_is_the_ram_so_there_is_no_second_verdict():
    req = request("cpu", "qwen2.5-0.5b")
    req.host_ram_gib = 24.0
    assert plan(req).host_ram.available_gib is None
