"""Dataset validation speed and memory. Prints figures; never fails on time.

    python bench/validate_throughput.py [--rows N] [--baseline-rows N]

1. Generates N alpaca rows of about 1 KB (JSONL) in a temporary folder.
2. sft-tui's validator on them (schema, checks, statistics and duplicate detection all on),
   as `sft-tui validate` runs it (one worker process per usable core for a file this large)
   and in one process (--jobs 1): rows/s, and peak RSS of the whole process tree (this
   process and its workers, sampled every 20 ms), measured in a fresh process.
3. The plain loop people write, `json.loads` + `jsonschema.Draft202012Validator.iter_errors`,
   on the same file in a fresh process (on fewer rows: it is slow), rows/s and peak RSS.
4. The 10,000-row file whose line 9001 is broken JSON: time until sft-tui reports it, and
   whether it named the right line.
Targets on the 2-core dev machine: >= 200k rows/s, >= 10x the plain loop, < 150 MB RSS for 1M rows,
line 9001 reported in < 0.1 s.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

from tui.hardware.cpu import usable_cpus

REPO = Path(__file__).resolve().parents[1]
WORDS = "the a model train data loss batch token layer weight answer question code value result memory".split()


def make_rows(path: Path, n: int, seed: int = 0, broken_line: int | None = None) -> None:
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as f:
        for i in range(1, n + 1):
            if i == broken_line:
                f.write('{"instruction": "Explain \\u00e9t\\u00e9", "output": "unterminated\n')
                continue
            words = lambda k: " ".join(rng.choice(WORDS) for _ in range(k))  # noqa: E731
            row = {"instruction": f"{i}: {words(30)}?", "input": words(20) if i % 3 else "", "output": words(120)}
            f.write(json.dumps(row) + "\n")


SFT_TUI = textwrap.dedent(
    """
    import os, resource, sys, threading, time
    from pathlib import Path
    from tui.datasets.validate import validate_paths

    def tree_rss_mb():
        # This process and its workers (children), from /proc: RSS in pages.
        pids = [os.getpid()]
        try:
            with open(f"/proc/{os.getpid()}/task/{os.getpid()}/children") as f:
                pids += [int(p) for p in f.read().split()]
        except OSError:
            pass
        total = 0
        for pid in pids:
            try:
                with open(f"/proc/{pid}/statm") as f:
                    total += int(f.read().split()[1])
            except OSError:
                pass
        return total * os.sysconf("SC_PAGE_SIZE") / 2**20

    peak, done = [0.0], threading.Event()
    def sample():
        while not done.wait(0.02):
            peak[0] = max(peak[0], tree_rss_mb())
    threading.Thread(target=sample, daemon=True).start()
    start = time.perf_counter()
    report = validate_paths([Path(sys.argv[1])], jobs=int(sys.argv[2]))
    report.to_json()
    elapsed = time.perf_counter() - start
    done.set()
    rss = max(peak[0], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    f = report.files[0]
    first = f.problems[0].line if f.problems else None
    print(f.rows, elapsed, rss, first, f.error_count)
    """
)

PLAIN_LOOP = textwrap.dedent(
    """
    import json, resource, sys, time
    import jsonschema
    schema = json.load(open(sys.argv[2]))
    validator = jsonschema.Draft202012Validator(schema)
    start = time.perf_counter()
    rows = errors = 0
    with open(sys.argv[1], encoding="utf-8") as f:
        for line in f:
            rows += 1
            errors += sum(1 for _ in validator.iter_errors(json.loads(line)))
    elapsed = time.perf_counter() - start
    print(rows, elapsed, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, None, errors)
    """
)


def measure(code: str, *args: str) -> tuple[int, float, float, str, int]:
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True, cwd=REPO)
    rows, elapsed, rss, first, errors = out.stdout.split()
    return int(rows), float(elapsed), float(rss), first, int(errors)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--baseline-rows", type=int, default=50_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        big, small, broken = tmp / "big.jsonl", tmp / "small.jsonl", tmp / "broken.jsonl"
        make_rows(big, args.rows)
        make_rows(small, args.baseline_rows)
        make_rows(broken, 10_000, broken_line=9001)
        # Write the new files out now: else the kernel flushes the 1 GB of dirty pages in the
        # middle of the measurements below, on the same two cores.
        os.sync()
        size_mb = big.stat().st_size / 1e6
        print(f"validate: {args.rows:,} alpaca rows, {size_mb:.0f} MB ({size_mb * 1e6 / args.rows:.0f} bytes/row)")

        jobs = usable_cpus()
        rows, t, rss, _, _ = measure(SFT_TUI, str(big), "0")
        ours = rows / t
        print(f"  sft-tui validator, {jobs} processes {ours:>10,.0f} rows/s  {t:6.2f} s  peak RSS {rss:6.0f} MB  ({rows:,} rows)")
        rows, t, rss_one, _, _ = measure(SFT_TUI, str(big), "1")
        print(f"  sft-tui validator, --jobs 1    {rows / t:>10,.0f} rows/s  {t:6.2f} s  peak RSS {rss_one:6.0f} MB  ({rows:,} rows)")
        schema = str(REPO / "schemas" / "dataset-alpaca.schema.json")
        rows, t, rss_plain, _, _ = measure(PLAIN_LOOP, str(small), schema)
        plain = rows / t
        print(f"  json + jsonschema loop         {plain:>10,.0f} rows/s  {t:6.2f} s  peak RSS {rss_plain:6.0f} MB  ({rows:,} rows)")
        print(f"  speed-up {ours / plain:.1f}x (target >= 10x: {'met' if ours >= 10 * plain else 'NOT met'}); "
              f"throughput target 200,000 rows/s: {'met' if ours >= 200_000 else 'NOT met'}; "
              f"RSS target < 150 MB: {'met' if rss < 150 else 'NOT met'}")

        rows, t, _, first, errors = measure(SFT_TUI, str(broken), "0")
        print(f"  10k rows, line 9001 broken: reported line {first} in {t * 1000:.0f} ms "
              f"({'right line' if first == '9001' else 'WRONG line'}; target < 100 ms)")


if __name__ == "__main__":
    main()
