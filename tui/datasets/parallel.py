"""Large JSONL files checked in parallel: the file cut into byte ranges at line ends, each
range checked by this process or a worker process, and the parts merged in file order into the
report a single process makes."""

from __future__ import annotations

import gc
import os
import pickle
import subprocess
import sys
import tempfile
import threading
from array import array
from collections import deque
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Iterator

from tui.datasets.checker import FileChecker
from tui.datasets.formats import FormatSpec
from tui.datasets.lengths import LengthStats
from tui.datasets.reading import jsonl_chunks
from tui.datasets.repeats import Seen
from tui.datasets.report import FileReport, Progress

# Workers take about 0.1 s to start: below 128 MiB (some 130k rows of 1 KB) they win too little.
PARALLEL_MIN_BYTES = 128 << 20


RANGE_BYTES = 16 << 20  # one worker task: small for steady progress, large next to its overhead


RESULT_BYTES = 1 << 20  # about the pickled result of one task: 24 bytes a row, some 16k rows


@dataclass(frozen=True)
class RangeTask:
    """One worker's share of a JSONL file: the lines in bytes start..end."""

    path: Path
    start: int
    end: int
    spec: FormatSpec
    segment: int
    max_errors: int
    max_line_bytes: int


def validate_range(task: RangeTask) -> tuple[int, FileReport, LengthStats, list[array]]:
    """In a worker: (lines in the range, its report with lines counted from the range's start,
    its lengths, its seen-buckets)."""
    report, seen, lengths = FileReport(path=task.path), Seen(), LengthStats()
    checker = FileChecker(report, task.spec, seen, task.segment, lengths, task.max_errors, task.max_line_bytes)
    lines = 0
    for first_line, chunk in jsonl_chunks(task.path, None, task.start, task.end):
        checker.check_lines(first_line, chunk)
        lines = first_line + len(chunk) - 1
    return lines, report, lengths, seen.buckets


def validate_ranges(tasks: list[RangeTask], jobs: int, report: FileReport, seen: Seen,
                     lengths: LengthStats, progress: Progress | None) -> None:
    """The ranges of one file, checked by Workers and merged in file order: the first
    `max_errors` problems are the first ones of the file, as in one process."""
    total = tasks[-1].end
    lines_before = 0
    # Workers first: zip asks it for one more result at the end, so that it ends (and cleans up)
    for (lines, part, part_lengths, buckets), task in zip(Workers(tasks, jobs), tasks):
        seen.segments[task.segment][1] = lines_before
        report.rows += part.rows
        report.valid_rows += part.valid_rows
        for kind, n in part.counts.items():
            report.counts[kind] = report.counts.get(kind, 0) + n
        room = task.max_errors - len(report.problems)
        report.problems += [replace(p, line=p.line + lines_before) for p in part.problems[:max(room, 0)]]
        if part.columns_present:
            report.columns_present = sorted({*report.columns_present, *part.columns_present})
        for kind, n in part.media_rows.items():
            report.media_rows[kind] = report.media_rows.get(kind, 0) + n
        lengths.merge(part_lengths)
        seen.merge(buckets)
        lines_before += lines
        if progress:
            progress(report.rows, task.end, total)


_WORKER_CODE = "from tui.datasets.parallel import worker_main; worker_main()"


class Workers:
    """validate_range of each task, yielded in task order, by this process and `jobs - 1`
    worker processes, each taking the next task when it is ready for one: a slow worker does
    fewer tasks, and this process works while the workers start (about 0.1 s each).

    Plain `python -c` subprocesses rather than multiprocessing: its spawn and forkserver modes
    run the caller's main script again in every worker (a script without an
    `if __name__ == "__main__"` guard makes it start workers forever), and fork is unsafe in the
    TUI, which validates from a thread. A thread per worker feeds it pickled tasks on stdin,
    two ahead so that it never waits, and reads its pickled results from stdout."""

    AHEAD = 2

    def __init__(self, tasks: list[RangeTask], jobs: int):
        self.tasks, self.jobs = tasks, jobs
        self.next_task = 0
        self.results: dict[int, tuple] = {}
        self.failure: str | None = None
        self.changed = threading.Condition(threading.RLock())

    def _claim(self) -> int | None:
        with self.changed:  # _result holds it already: the lock is reentrant
            if self.next_task == len(self.tasks) or self.failure:
                return None
            self.next_task += 1
            return self.next_task - 1

    def _feed(self, worker: subprocess.Popen[bytes], errors) -> None:
        tasks, results = worker.stdin, worker.stdout
        assert tasks is not None and results is not None  # started with stdin=PIPE, stdout=PIPE
        waiting: deque[int] = deque()
        try:
            while True:
                while len(waiting) < self.AHEAD and (index := self._claim()) is not None:
                    pickle.dump(self.tasks[index], tasks, protocol=pickle.HIGHEST_PROTOCOL)
                    tasks.flush()
                    waiting.append(index)
                if not waiting:
                    break
                result = pickle.load(results)
                with self.changed:
                    self.results[waiting.popleft()] = result
                    self.changed.notify_all()
        except Exception as err:  # whatever it is, _result must hear of it, or it waits forever
            if isinstance(err, (EOFError, OSError)):  # the worker died: its last words say why
                worker.wait()
                errors.seek(0)
                tail = errors.read().decode(errors="replace").strip().splitlines()[-1:] or [f"exit status {worker.returncode}"]
                why = tail[0]
            else:
                why = repr(err)
            with self.changed:
                self.failure = self.failure or f"a validation worker failed: {why}"
                self.changed.notify_all()
        finally:
            try:
                tasks.close()
            except OSError:  # a dead worker's pipe
                pass

    def __iter__(self) -> Iterator[tuple]:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).resolve().parents[2]), os.environ.get("PYTHONPATH")]))}
        workers, feeders = [], []
        try:
            for _ in range(min(self.jobs, len(self.tasks)) - 1):
                errors = tempfile.TemporaryFile()
                worker = subprocess.Popen([sys.executable, "-c", _WORKER_CODE], stdin=subprocess.PIPE,
                                          stdout=subprocess.PIPE, stderr=errors, env=env)
                workers.append((worker, errors))
                _widen_pipe(worker.stdout)
                feeders.append(threading.Thread(target=self._feed, args=(worker, errors), daemon=True))
                feeders[-1].start()
            for index in range(len(self.tasks)):
                yield self._result(index)
        finally:
            with self.changed:
                self.failure = self.failure or "stopped"  # no more tasks for the feeders
            for worker, _ in workers:
                worker.kill()
                worker.wait()
            for feeder in feeders:
                feeder.join()
            for worker, errors in workers:
                if worker.stdout is not None:  # always: started with stdout=PIPE
                    worker.stdout.close()
                errors.close()

    def _result(self, index: int) -> tuple:
        """Task `index`'s result; while it is not there, this process does the next free task."""
        while True:
            with self.changed:
                if index in self.results:
                    return self.results.pop(index)
                if self.failure:
                    raise RuntimeError(self.failure)
                mine = self._claim()
                if mine is None:
                    self.changed.wait()
                    continue
            was_enabled = gc.isenabled()
            gc.disable()  # as in the workers (worker_main); for this task only
            try:
                result = validate_range(self.tasks[mine])
            finally:
                if was_enabled:
                    gc.enable()
            with self.changed:
                self.results[mine] = result


def _widen_pipe(pipe) -> None:
    """Room in a worker's result pipe for a few results (Linux; elsewhere it stays as it is).
    With the 64 KiB default, a worker waits on every result until the feeder thread has read it
    all, and the feeder reads a chunk at a time between this process's own work (it needs the
    GIL for each), so the worker idled for a fifth of the time."""
    try:
        import fcntl

        with open("/proc/sys/fs/pipe-max-size") as f:
            fcntl.fcntl(pipe.fileno(), fcntl.F_SETPIPE_SZ, min(int(f.read()), 4 * RESULT_BYTES))
    except (ImportError, AttributeError, OSError, ValueError):
        pass


def worker_main() -> None:
    """The worker process of Workers. It makes no reference cycles and lives for one file, so
    the cyclic garbage collector, which walks every row kept for a batch, is off."""
    gc.disable()
    tasks, out = sys.stdin.buffer, sys.stdout.buffer
    while True:
        try:
            task = pickle.load(tasks)
        except EOFError:
            return
        pickle.dump(validate_range(task), out, protocol=pickle.HIGHEST_PROTOCOL)
        out.flush()
