"""Start-up time of the sft-tui command line. Prints figures; never fails on time.

    python bench/startup.py [--runs N]

Median (and min/max) wall time of `sft-tui --help` and `sft-tui detect --json` over N runs,
and whether torch, transformers or llamafactory got imported (they must not: the TUI process
stays light). Target on the 2-core dev machine: `--help` <= 0.3 s. Then the time from a fresh
process to the wizard's first frame (target: under 1 s).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

BIN = Path(sys.executable).parent
HEAVY = ("torch", "transformers", "llamafactory")
HELP_TARGET_S = 0.3


def time_command(argv: list[str], runs: int) -> list[float]:
    subprocess.run(argv, capture_output=True, check=True)  # warm the file cache
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return times


def heavy_imports(args: list[str]) -> list[str]:
    code = (
        "import sys, io, contextlib\nfrom tui.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    try:\n        main({args!r})\n    except SystemExit:\n        pass\n"
        f"print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return [m for m in out.strip().splitlines()[-1].split(",") if m] if out.strip() else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    runs = parser.parse_args().runs
    exe = str(BIN / "sft-tui")
    print(f"sft-tui start-up, {runs} runs each ({sys.platform}, python {sys.version.split()[0]})")
    for label, args in (("--help", ["--help"]), ("detect --json", ["detect", "--json"])):
        times = time_command([exe, *args], runs)
        heavy = heavy_imports(args)
        print(
            f"  sft-tui {label:<14} median {statistics.median(times):.3f} s"
            f"  (min {min(times):.3f}, max {max(times):.3f})"
            f"  heavy imports: {', '.join(heavy) if heavy else 'none'}"
        )
        if label == "--help":
            verdict = "meets" if statistics.median(times) <= HELP_TARGET_S else "MISSES"
            print(f"  {'':<22} {verdict} the {HELP_TARGET_S} s target")
    paint = first_paint_seconds(runs)
    print(f"  first wizard screen painted (new process to first frame, headless): median {statistics.median(paint):.3f} s"
          f"  (min {min(paint):.3f}, max {max(paint):.3f}); target < {FIRST_PAINT_TARGET_S} s")


FIRST_PAINT_TARGET_S = 1.0
PAINT_CODE = """
import time, asyncio
start = time.perf_counter()
from tui.app.main import SftTuiApp
async def main():
    app = SftTuiApp()
    async with app.run_test(size=(100, 32)) as pilot:
        await pilot.pause()
        print(time.perf_counter() - start + {interpreter})
asyncio.run(main())
"""


def first_paint_seconds(runs: int) -> list[float]:
    """A fresh interpreter, the app mounted and its first frame composed (headless). The
    interpreter's own start is measured apart and added."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        interpreter = time.perf_counter() - started
        out = subprocess.run([sys.executable, "-c", PAINT_CODE.format(interpreter=interpreter)], capture_output=True,
                             text=True, check=True).stdout
        times.append(float(out.strip().splitlines()[-1]))
    return times


if __name__ == "__main__":
    main()
