"""How fast the run monitor follows train.log. Prints figures; never fails on time.

    python bench/follow_log.py [--size-gb 1] [--rate 10000] [--seconds 10]

1. Open: a run directory whose train.log is --size-gb large; time from RunWatcher() to the
   last screen of lines (40) in hand. Target: under 1 s (it seeks from the end).
2. Follow: a separate writer process appends --rate lines a second (tqdm bars with carriage
   returns, log records, metric dicts, each stamped with its write time) for --seconds; the
   follower polls every 0.1 s as the monitor does. Reports the follower's CPU use (target: at
   most 10 % of one core) and the lag from write to event (target: under 250 ms).
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import tempfile
import time
from pathlib import Path

from tui.runs.watch import RunWatcher

SCREEN_LINES = 40
POLL_S = 0.1
LINES = (
    " 45%|####5     | {i}/100000 [01:02<01:16, 12.5it/s]\r",
    "[INFO|2026-11-22 18:10:57] llamafactory.train.callbacks:144 >> {{'loss': 6.2564, 'learning_rate': 3.0000e-05, 'epoch': 0.25}} t={t:.6f}\n",
    "{{'loss': '6.256', 'grad_norm': '1.228', 'learning_rate': '3e-05', 'epoch': '0.25'}} t={t:.6f}\n",
    "[WARNING|2026-11-22 18:10:57] some.module:12 >> a warning that matches nothing in particular t={t:.6f}\n",
)


def make_run_dir(root: Path) -> Path:
    run_dir = root / "run"
    run_dir.mkdir()
    (run_dir / "run_sft.sh").write_text("#!/bin/bash\n")
    return run_dir


def write_big_log(path: Path, size: int) -> None:
    block = "".join(LINES[i % 4].format(i=i, t=0.0) for i in range(20000)).encode()
    with open(path, "wb") as f:
        written = 0
        while written < size:
            f.write(block)
            written += len(block)


def bench_open(root: Path, size_gb: float) -> float:
    run_dir = make_run_dir(root)
    write_big_log(run_dir / "train.log", int(size_gb * 1024**3))
    start = time.perf_counter()
    watcher = RunWatcher(run_dir)
    lines = [e for e in watcher.poll() if e.kind == "line"][-SCREEN_LINES:]
    elapsed = time.perf_counter() - start
    assert len(lines) == SCREEN_LINES, len(lines)
    (run_dir / "train.log").unlink()
    return elapsed


def writer(path: str, rate: int, seconds: float) -> None:
    with open(path, "a", buffering=1) as f:
        start = time.monotonic()
        i = 0
        while time.monotonic() - start < seconds:
            due = int((time.monotonic() - start) * rate)
            chunk = []
            while i < due:
                chunk.append(LINES[i % 4].format(i=i, t=time.time()))
                i += 1
            f.write("".join(chunk))
            f.flush()
            time.sleep(0.005)


def bench_follow(root: Path, rate: int, seconds: float) -> tuple[float, list[float], int]:
    run_dir = root / "run"
    (run_dir / "train.log").write_text("")
    watcher = RunWatcher(run_dir)
    proc = multiprocessing.Process(target=writer, args=(str(run_dir / "train.log"), rate, seconds))
    lags, lines = [], 0
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    proc.start()
    while proc.is_alive():
        time.sleep(POLL_S)
        now = time.time()
        for event in watcher.poll():
            if event.kind == "line":
                lines += 1
                stamp = event.text.rpartition(" t=")[2]
                if stamp:
                    lags.append(now - float(stamp))
    proc.join()
    cpu = time.process_time() - cpu_start
    wall = time.perf_counter() - wall_start
    return cpu / wall, lags, lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-gb", type=float, default=1.0)
    parser.add_argument("--rate", type=int, default=10_000)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        opened = bench_open(Path(tmp), args.size_gb)
        print(f"open a {args.size_gb:g} GB train.log, last {SCREEN_LINES} lines: {opened * 1000:.0f} ms (target < 1000 ms)")
        cpu_share, lags, lines = bench_follow(Path(tmp), args.rate, args.seconds)
    lags.sort()
    print(f"follow {args.rate} lines/s for {args.seconds:g} s: {lines} lines read, follower CPU {cpu_share:.1%} of one core "
          f"(target <= 10%)")
    if lags:
        # the lag a line can have is at most the poll interval plus the time to read it
        print(f"lag from write to event: median {statistics.median(lags) * 1000:.0f} ms, "
              f"p99 {lags[int(len(lags) * 0.99)] * 1000:.0f} ms, max {lags[-1] * 1000:.0f} ms (target < 250 ms)")


if __name__ == "__main__":
    main()
