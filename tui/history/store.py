"""The run history as a SQLite file: `history.sqlite3` in the user data dir (platformdirs'
user_data_dir("sft-tui")), or the file $SFT_TUI_HISTORY names.

One row per run, keyed by the run directory's absolute path and its run id. The schema is versioned
with PRAGMA user_version: MIGRATIONS[i] takes a database from version i to i + 1, each in one
transaction, so an older file is brought up to date when it is opened and never left half-migrated.

Writers may meet (two monitors, `status` while `run` records): WAL mode, a busy timeout, and every
write in one BEGIN IMMEDIATE transaction. What cannot be helped never stops a command: a file that is
not a database is moved aside (and a new one begun), a database still locked after the timeout is
skipped; either way the caller gets one sentence (`HistoryProblem`) to print, never a traceback.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path

from tui.common.errors import SftTuiError

FILE_NAME = "history.sqlite3"
ENV_PATH = "SFT_TUI_HISTORY"
BUSY_TIMEOUT_S = 3.0

# Version 1: the run and its plan, the outcome, the first measurements. Version 2: what a run's files
# say beyond those (steps done, seconds per step, eval loss), the planned shape the calibration
# compares runs by, and the files' signature that lets an unchanged run go unread.
MIGRATIONS = (
    """
    CREATE TABLE runs (
        run_dir TEXT NOT NULL,
        run_id TEXT NOT NULL,
        first_seen TEXT NOT NULL,
        updated TEXT NOT NULL,
        model TEXT,
        device TEXT,
        vendor TEXT,
        gpus INTEGER,
        method TEXT,
        settings TEXT,
        est_per_device_gib REAL,
        est_breakdown TEXT,
        est_seconds REAL,
        est_tokens_per_second REAL,
        outcome TEXT,
        outcome_reason TEXT,
        peak_allocated_gib REAL,
        peak_reserved_gib REAL,
        tokens_per_second REAL,
        runtime_s REAL,
        train_loss REAL,
        PRIMARY KEY (run_dir, run_id)
    );
    """,
    """
    ALTER TABLE runs ADD COLUMN model_params INTEGER;
    ALTER TABLE runs ADD COLUMN est_source TEXT;
    ALTER TABLE runs ADD COLUMN est_tokens INTEGER;
    ALTER TABLE runs ADD COLUMN est_flops_per_token REAL;
    ALTER TABLE runs ADD COLUMN attention TEXT;
    ALTER TABLE runs ADD COLUMN cutoff_len INTEGER;
    ALTER TABLE runs ADD COLUMN micro_batch INTEGER;
    ALTER TABLE runs ADD COLUMN planned_steps INTEGER;
    ALTER TABLE runs ADD COLUMN steps_done INTEGER;
    ALTER TABLE runs ADD COLUMN seconds_per_step REAL;
    ALTER TABLE runs ADD COLUMN eval_loss REAL;
    ALTER TABLE runs ADD COLUMN signature TEXT;
    CREATE INDEX runs_by_device ON runs (device, method);
    """,
    # Version 3: the datasheet tokens/s of a plan whose shown estimate was already calibrated, so the next
    # calibration compares measured speed with the datasheet's and never with a calibrated figure.
    """
    ALTER TABLE runs ADD COLUMN est_datasheet_tokens_per_second REAL;
    """,
    # Version 4: the peak memory measured while a monitor followed the run (tui.runs.peaks): per GPU, what NVML
    # says the run's processes used, its largest, and the host RAM of the process tree; beside them the plan's
    # analytic and simulated estimates, so the next plan's memory is corrected like for like.
    """
    ALTER TABLE runs ADD COLUMN gpu_peak_gib TEXT;
    ALTER TABLE runs ADD COLUMN gpu_peak_max_gib REAL;
    ALTER TABLE runs ADD COLUMN host_peak_gib REAL;
    ALTER TABLE runs ADD COLUMN est_analytic_gib REAL;
    ALTER TABLE runs ADD COLUMN est_simulated_gib REAL;
    """,
)
VERSION = len(MIGRATIONS)

COLUMNS = ("model", "model_params", "device", "vendor", "gpus", "method", "attention", "cutoff_len", "micro_batch",
           "planned_steps", "settings", "est_per_device_gib", "est_breakdown", "est_source", "est_seconds", "est_tokens",
           "est_tokens_per_second", "est_datasheet_tokens_per_second", "est_flops_per_token", "outcome", "outcome_reason", "peak_allocated_gib",
           "peak_reserved_gib", "tokens_per_second", "seconds_per_step", "runtime_s", "steps_done", "train_loss",
           "eval_loss", "signature", "gpu_peak_gib", "gpu_peak_max_gib", "host_peak_gib", "est_analytic_gib",
           "est_simulated_gib")
JSON_COLUMNS = ("settings", "est_breakdown", "gpu_peak_gib")


class HistoryProblem(SftTuiError):
    """The history could not be read or written this time; one sentence, for stderr."""


def default_path() -> Path:
    if os.environ.get(ENV_PATH):
        return Path(os.environ[ENV_PATH])
    from platformdirs import user_data_dir

    return Path(user_data_dir("sft-tui")) / FILE_NAME


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def migrate(conn: sqlite3.Connection) -> int:
    """Bring the schema to VERSION, one transaction per step; returns the version found."""
    found = conn.execute("PRAGMA user_version").fetchone()[0]
    if found > VERSION:
        raise HistoryProblem(f"the run history was written by a newer sft-tui (schema {found}, this one knows "
                             f"{VERSION}); it is left as it is")
    for version in range(found, VERSION):
        conn.execute("BEGIN IMMEDIATE")
        try:
            if conn.execute("PRAGMA user_version").fetchone()[0] == version:  # another process may have done it
                for statement in MIGRATIONS[version].split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {version + 1}")
            conn.execute("COMMIT")
        except BaseException:
            _rollback(conn)
            raise
    return found


def _rollback(conn: sqlite3.Connection) -> None:
    if conn.in_transaction:
        try:
            conn.execute("ROLLBACK")
        except sqlite3.Error:
            pass


def _is_corrupt(err: sqlite3.DatabaseError) -> bool:
    text = str(err).lower()
    return not isinstance(err, sqlite3.OperationalError) or "not a database" in text or "malformed" in text


class History:
    """The run history file, opened (created, migrated) once; use as a context manager or close()."""

    def __init__(self, path: Path | None = None, busy_timeout_s: float = BUSY_TIMEOUT_S):
        self.path = Path(path) if path else default_path()
        self.busy_timeout_s = busy_timeout_s
        self.notes: list[str] = []  # what happened to the file (moved aside), for the caller to say
        try:
            self.conn = self._open()
        except sqlite3.DatabaseError as err:
            if not _is_corrupt(err):
                raise HistoryProblem(_busy_sentence(self.path, err)) from None
            aside = self._move_aside()
            self.notes.append(f"the run history {self.path} was not a readable database: it was moved aside to "
                              f"{aside} and a new one begun")
            try:
                self.conn = self._open()
            except sqlite3.Error as again:
                raise HistoryProblem(_busy_sentence(self.path, again)) from None
        except OSError as err:
            raise HistoryProblem(f"the run history {self.path} cannot be opened ({err.strerror or err}); "
                                 "this run is not recorded") from None

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=self.busy_timeout_s, isolation_level=None)
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
            conn.execute("PRAGMA journal_mode = WAL")
            migrate(conn)
            conn.execute("SELECT count(*) FROM runs").fetchone()
        except BaseException:
            conn.close()
            raise
        conn.row_factory = sqlite3.Row
        return conn

    def _move_aside(self) -> Path:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        os.replace(self.path, aside)
        for suffix in ("-wal", "-shm"):
            extra = Path(str(self.path) + suffix)
            if extra.exists():
                os.replace(extra, Path(str(aside) + suffix))
        return aside

    def close(self) -> None:
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    @contextmanager
    def _write(self):
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as err:
            raise HistoryProblem(_busy_sentence(self.path, err)) from None
        try:
            yield self.conn
            self.conn.execute("COMMIT")
        except BaseException as err:
            _rollback(self.conn)  # SQLite may have rolled back already (a full disk does)
            if isinstance(err, sqlite3.Error):
                raise HistoryProblem(_busy_sentence(self.path, err)) from None
            raise

    def record(self, run_dir: str, run_id: str, values: dict) -> None:
        """Insert or update one run: the values given (None leaves a known value as it is)."""
        unknown = set(values) - set(COLUMNS)
        if unknown:
            raise ValueError(f"not a history column: {', '.join(sorted(unknown))}")
        stored = {k: json.dumps(v) if k in JSON_COLUMNS and v is not None else v for k, v in values.items()}
        names = list(stored)
        stamp = now()
        sql = (f"INSERT INTO runs (run_dir, run_id, first_seen, updated{''.join(', ' + n for n in names)}) "
               f"VALUES (?, ?, ?, ?{', ?' * len(names)}) ON CONFLICT (run_dir, run_id) DO UPDATE SET updated = "
               f"excluded.updated{''.join(f', {n} = COALESCE(excluded.{n}, runs.{n})' for n in names)}")
        with self._write() as conn:
            conn.execute(sql, [str(run_dir), run_id, stamp, stamp, *stored.values()])

    def get(self, run_dir: str, run_id: str) -> dict | None:
        row = self._read("SELECT * FROM runs WHERE run_dir = ? AND run_id = ?", (str(run_dir), run_id))
        return row[0] if row else None

    def runs(self, model: str | None = None, hardware: str | None = None, device: str | None = None) -> list[dict]:
        """Every run, newest first; `model` and `hardware` match part of the name, `device` the whole."""
        where, args = [], []
        if model:
            where.append("model LIKE ?")
            args.append(f"%{model}%")
        if hardware:
            where.append("(device LIKE ? OR vendor LIKE ?)")
            args += [f"%{hardware}%", f"%{hardware}%"]
        if device:
            where.append("device = ?")
            args.append(device)
        sql = "SELECT * FROM runs" + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY first_seen DESC, rowid DESC"
        return self._read(sql, args)

    def _read(self, sql: str, args) -> list[dict]:
        try:
            rows = self.conn.execute(sql, args).fetchall()
        except sqlite3.Error as err:
            raise HistoryProblem(_busy_sentence(self.path, err)) from None
        return [_decoded(dict(row)) for row in rows]


def _decoded(row: dict) -> dict:
    for key in JSON_COLUMNS:
        if isinstance(row.get(key), str):
            try:
                row[key] = json.loads(row[key])
            except ValueError:
                row[key] = None
    return row


def _busy_sentence(path: Path, err: Exception) -> str:
    if "locked" in str(err) or "busy" in str(err):
        return f"the run history {path} is locked by another sft-tui; this run is not recorded this time"
    return f"the run history {path} cannot be used ({err}); this run is not recorded this time"
