"""The run history's file: created with the newest schema, an older one migrated, two writers at once, a
locked and a corrupt database; and a run recorded from its own files (a recorded real run)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

from tests.runs.recorded import recorded_run
from tui.history.store import MIGRATIONS, VERSION, History, default_path
from tui.runs.recording import record_runs

REPO = Path(__file__).resolve().parents[2]


def test_a_new_history_has_the_newest_schema_in_wal_mode(tmp_path):
    with History(tmp_path / "h.sqlite3") as history:
        assert history.conn.execute("PRAGMA user_version").fetchone()[0] == VERSION
        assert history.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        history.record("/r/a", "a", {"model": "m", "settings": {"lora_rank": 8}})
        history.record("/r/a", "a", {"outcome": "finished", "model": None})
        (row,) = history.runs()
    assert (row["model"], row["outcome"], row["settings"]) == ("m", "finished", {"lora_rank": 8})


def test_the_history_lives_in_the_user_data_dir_unless_told(monkeypatch, tmp_path):
    monkeypatch.delenv("SFT_TUI_HISTORY")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_path() == tmp_path / "sft-tui" / "history.sqlite3"


def test_an_older_history_is_migrated_and_keeps_its_runs(tmp_path):
    path = tmp_path / "old.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(MIGRATIONS[0])
    old.execute("INSERT INTO runs (run_dir, run_id, first_seen, updated, model, outcome) "
                "VALUES ('/r/x', 'x', '2026-01-01', '2026-01-01', 'old-model', 'finished')")
    old.execute("PRAGMA user_version = 1")
    old.commit()
    old.close()
    with History(path) as history:
        assert history.conn.execute("PRAGMA user_version").fetchone()[0] == VERSION
        history.record("/r/x", "x", {"seconds_per_step": 1.5})  # a column version 2 added
        (row,) = history.runs()
    assert (row["model"], row["outcome"], row["seconds_per_step"]) == ("old-model", "finished", 1.5)


def test_a_run_nobody_watched_is_recorded_from_its_files(tmp_path):
    run_dir = recorded_run(tmp_path, "finished")
    assert record_runs([run_dir]) is None
    (row,) = History().runs()
    assert (row["run_dir"], row["run_id"], row["outcome"]) == (str(run_dir), "tiny-lora", "finished")
    assert (row["model"], row["device"], row["vendor"], row["method"]) == ("model", "CPU", "cpu", "lora")
    assert row["est_per_device_gib"] == 0.004 and row["est_breakdown"]["activations"] == 0.001
    assert (row["peak_allocated_gib"], row["peak_reserved_gib"]) == (0.0, 0.0)  # RECORD_VRAM=1 on a CPU
    assert row["steps_done"] == 8 and row["runtime_s"] == 0.21 and row["seconds_per_step"] == round(0.21 / 8, 4)
    assert row["train_loss"] == 6.2494  # the final metrics block's train_loss
    assert record_runs([run_dir]) is None  # again: its files did not change, nothing is re-read or added
    assert len(History().runs()) == 1


def test_a_failed_run_is_recorded_with_its_reason(tmp_path):
    run_dir = recorded_run(tmp_path, "oom")
    record_runs([run_dir])
    (row,) = History().runs()
    assert row["outcome"] == "failed" and "out of GPU memory" in row["outcome_reason"]


WRITER = """
import sys
from tui.history.store import History
with History(sys.argv[1]) as h:
    for i in range(40):
        h.record(f"/runs/{sys.argv[2]}-{i}", f"{sys.argv[2]}-{i}", {"model": "m", "outcome": "running"})
        h.record(f"/runs/{sys.argv[2]}-{i}", f"{sys.argv[2]}-{i}", {"outcome": "finished"})
"""


def test_two_writers_at_once_lose_nothing(tmp_path):
    path = tmp_path / "h.sqlite3"
    History(path).close()
    writers = [subprocess.Popen([sys.executable, "-c", WRITER, str(path), name], cwd=REPO, stderr=subprocess.PIPE,
                                text=True) for name in ("a", "b")]
    threads_done = []

    def in_thread():
        with History(path) as history:
            for i in range(40):
                history.record(f"/runs/t-{i}", f"t-{i}", {"outcome": "finished"})
        threads_done.append(True)

    thread = threading.Thread(target=in_thread)
    thread.start()
    errors = [w.communicate(timeout=60)[1] for w in writers]
    thread.join(60)
    assert [w.returncode for w in writers] == [0, 0], errors
    assert threads_done
    rows = History(path).runs()
    assert len(rows) == 120 and {r["outcome"] for r in rows} == {"finished"}


def test_a_locked_history_is_skipped_with_one_sentence(tmp_path):
    path = tmp_path / "h.sqlite3"
    History(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        run_dir = recorded_run(tmp_path, "finished")
        from tui.history import store

        before, store.BUSY_TIMEOUT_S = store.BUSY_TIMEOUT_S, 0.2
        try:
            note = record_runs([run_dir], path)
        finally:
            store.BUSY_TIMEOUT_S = before
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert note and "locked" in note and "\n" not in note
    assert History(path).runs() == []


def test_a_corrupt_history_is_moved_aside_with_one_sentence(tmp_path):
    path = tmp_path / "h.sqlite3"
    path.write_bytes(b"this is not a database, it is a shopping list\n" * 200)
    run_dir = recorded_run(tmp_path, "finished")
    note = record_runs([run_dir], path)
    assert "moved aside" in note and "\n" not in note
    (aside,) = tmp_path.glob("h.sqlite3.corrupt-*")
    assert aside.read_bytes().startswith(b"this is not a database")
    assert [r["run_id"] for r in History(path).runs()] == ["tiny-lora"]  # the new one has the run


def test_a_full_database_refuses_the_write_whole_with_one_sentence(tmp_path):
    """SQLite's own 'database or disk is full' (a page limit stands in for the disk): the write that did not
    fit is rolled back whole, what was there stays, and the caller gets one sentence."""
    import pytest

    from tui.history.store import HistoryProblem

    with History(tmp_path / "h.sqlite3") as history:
        history.record("/r/kept", "kept", {"model": "m", "outcome": "finished"})
        pages = history.conn.execute("PRAGMA page_count").fetchone()[0]
        history.conn.execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(HistoryProblem) as raised:
            history.record("/r/big", "big", {"model": "m", "settings": {"notes": "x" * 200_000}})
        assert "full" in str(raised.value) and "\n" not in str(raised.value)
        assert [r["run_id"] for r in history.runs()] == ["kept"]
