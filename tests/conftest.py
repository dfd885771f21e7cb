"""Shared fixtures. Rule: the pytest process never imports torch, transformers or llamafactory
(tests/support/llamafactory.py runs them in subprocesses), so TUI tests can check sys.modules.
"""

from __future__ import annotations

import os

import pytest

from tests.support.llamafactory import (
    TrainResult,
    build_tiny_model,
    tiny_sft_config,
    train,
    write_tiny_dataset,
)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny Qwen2-architecture model and byte-level BPE tokenizer, built on disk once."""
    return build_tiny_model(tmp_path_factory.mktemp("tiny-model") / "tiny-qwen2")


@pytest.fixture(scope="session")
def tiny_dataset_dir(tmp_path_factory):
    """16 alpaca rows and a dataset_info.json registering them as `tiny_alpaca`."""
    return write_tiny_dataset(tmp_path_factory.mktemp("tiny-data"))


@pytest.fixture(scope="session")
def tiny_sft_run(tiny_model_dir, tiny_dataset_dir, tmp_path_factory) -> TrainResult:
    """One real `llamafactory-cli train` of the tiny model for 4 LoRA steps on the CPU."""
    workdir = tmp_path_factory.mktemp("tiny-run")
    config = tiny_sft_config(tiny_model_dir, tiny_dataset_dir, workdir / "saves")
    return train(workdir, config)


@pytest.fixture
def user_config_home(tmp_path, monkeypatch):
    """An empty XDG config home, so user profiles come from a folder the test controls."""
    home = tmp_path / "config"
    home.mkdir()
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home))
    return home / "sft-tui"


@pytest.fixture(scope="session", autouse=True)
def no_simulated_steps():
    """SFT_TUI_SIMULATE=0 for the session (and the processes tests start): a plan keeps its instant
    analytic estimate instead of starting a simulation of its training step (seconds each), which
    tests/plan/test_simulated.py and tests/lf/test_simulate_step.py turn on where they test it."""
    before = os.environ.get("SFT_TUI_SIMULATE")
    os.environ["SFT_TUI_SIMULATE"] = "0"
    yield
    if before is None:
        os.environ.pop("SFT_TUI_SIMULATE", None)
    else:
        os.environ["SFT_TUI_SIMULATE"] = before


@pytest.fixture(scope="session", autouse=True)
def private_cache_home(tmp_path_factory):
    """XDG_CACHE_HOME in a tmp dir for the whole session (and the processes tests start): sft-tui's
    caches (hub look-ups, the training environment's packages) never read or write ~/.cache."""
    path = tmp_path_factory.mktemp("cache-home")
    before = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(path)
    yield path
    if before is None:
        os.environ.pop("XDG_CACHE_HOME", None)
    else:
        os.environ["XDG_CACHE_HOME"] = before


@pytest.fixture(scope="session", autouse=True)
def private_data_home(tmp_path_factory):
    """XDG_DATA_HOME in a tmp dir for the whole session (and the processes tests start): the run history
    and the demo's files never go to ~/.local/share."""
    path = tmp_path_factory.mktemp("data-home")
    before = os.environ.get("XDG_DATA_HOME")
    os.environ["XDG_DATA_HOME"] = str(path)
    yield path
    if before is None:
        os.environ.pop("XDG_DATA_HOME", None)
    else:
        os.environ["XDG_DATA_HOME"] = before


@pytest.fixture(autouse=True)
def private_run_history(tmp_path_factory, monkeypatch):
    """Each test its own run history ($SFT_TUI_HISTORY, a file the processes it starts use too): a run one
    test records never calibrates another test's plan."""
    path = tmp_path_factory.mktemp("history") / "history.sqlite3"
    monkeypatch.setenv("SFT_TUI_HISTORY", str(path))
    return path
