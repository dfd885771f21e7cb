"""The run sub-commands: run, stop, status, monitor, retry (see tui.runs)."""

from __future__ import annotations

import shlex
import sys
import threading
import time
from pathlib import Path

from tui.cli.common import EXIT_OK, EXIT_PROBLEMS, UserError, print_json
from tui.cli.notify import add_notify_arguments

POLL_S = 0.5  # how often the headless monitor reads the logs
GPU_POLL_S = 1.0


def _quote(path) -> str:
    return shlex.quote(str(path))


def cmd_run(args) -> int:
    from tui.runs.lifecycle import start_run

    status = start_run(Path(args.run_dir), resume=args.resume, force=args.force)
    from tui.cli.history import record_in_history

    record_in_history([status.run_dir])
    run_dir = _quote(status.run_dir)
    from tui.runs.lifecycle import read_state

    note = read_state(Path(status.run_dir)).get("environment_note")
    if args.json:
        print_json(status.to_json() | {"environment_note": note})
    else:
        if note:
            print(note)
        print(f"Started {status.run_dir} (pid {status.pid}){' from the newest checkpoint' if args.resume else ''}.")
        print(f"Watch it:  sft-tui monitor {run_dir}      (or --plain for one line per event)")
        print(f"Stop it:   sft-tui stop {run_dir}")
        print(f"Log:       {_quote(Path(status.run_dir) / 'train.log')}")
    return EXIT_OK


def cmd_stop(args) -> int:
    from tui.runs.lifecycle import stop_run

    say = (lambda message: None) if args.json else (lambda message: print(message, flush=True))
    status = stop_run(Path(args.run_dir), grace=args.grace, progress=say)
    if args.json:
        print_json(status.to_json())
    else:
        print(f"{status.run_dir}: {status.status}; continue later with `sft-tui run {_quote(status.run_dir)} --resume`")
    return EXIT_OK if status.status != "running" else EXIT_PROBLEMS


def cmd_status(args) -> int:
    from tui.runs.lifecycle import find_runs
    from tui.runs.logfiles import format_duration
    from tui.runs.summary import run_summary, runs_in

    paths = runs_in(Path(args.runs_dir))
    from tui.runs.autoretry import follows_of, lineage_line, lineages

    rows = [run_summary(path) | {"follows": follows_of(path)} for path in paths]
    from tui.cli.history import record_in_history

    record_in_history(paths)
    if args.json:
        print_json(rows)
        return EXIT_OK
    if not rows:
        from tui.runs.demo import default_demo_root

        demo = default_demo_root() / "runs"
        also = f"; the demo's runs: sft-tui status {demo}" if demo.is_dir() and find_runs(demo) else ""
        print(f"no runs in {args.runs_dir}/ (`sft-tui export` writes them there; `sft-tui status DIR` looks elsewhere{also})")
        return EXIT_OK
    header = ("RUN", "STATUS", "STEP", "LOSS", "ETA", "OUTPUT")
    table = [header] + [(
        r["name"], r["status"], f"{r['step']}/{r['total_steps']}" if r["step"] is not None else "-",
        f"{r['loss']:.4f}" if isinstance(r["loss"], (int, float)) else "-",
        format_duration(r["eta_s"]) if r["eta_s"] is not None else "-", r["output_dir"] or "-") for r in rows]
    widths = [max(len(str(row[i])) for row in table) for i in range(len(header) - 1)]
    for row, summary in zip(table, [None, *rows]):
        print("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)) + "  " + str(row[-1]))
        if summary and summary["status"] in ("failed", "vanished") and summary["detail"]:
            print(f"  {summary['status']}: {summary['detail']}")
        if summary and summary.get("warning"):
            print(f"  warning: {summary['warning']}")
    for chain in lineages(rows):  # a run and its retries (plan.json's follows), one line each chain
        print(f"retries: {lineage_line(chain)}")
    return EXIT_OK


def cmd_monitor(args) -> int:
    run_dir = Path(args.run_dir)
    if args.auto_retry < 0:
        raise UserError(f"--auto-retry {args.auto_retry} is not a number of retries: give 0 (never) or more")
    if not (args.plain or args.json):
        from tui.app import run_app

        return run_app(monitor=run_dir, auto_retry=args.auto_retry)
    from tui.cli.notify import notifier_from_args

    return follow_chain(run_dir, as_json=args.json, notifier=notifier_from_args(args), auto_retry=args.auto_retry)


def follow_chain(run_dir: Path, as_json: bool, notifier=None, auto_retry: int = 0) -> int:
    """Follow the run; with auto_retry, after it ends, write and start the retry its verdict calls for
    and follow that one (tui.runs.autoretry), up to auto_retry retries. The last run's exit status."""
    from tui.runs.autoretry import after_run

    left = auto_retry
    while True:
        code, kind = follow_headless(run_dir, as_json=as_json, notifier=notifier, with_kind=True)
        if not auto_retry or kind is None:
            return code
        step = after_run(run_dir, kind, left)
        if step is None:
            return code
        if as_json:
            print_json_line({"kind": "retry" if step.started else "not_retried", "text": step.message,
                             "run_dir": str(run_dir), "retry_dir": str(step.started) if step.started else None})
        else:
            print(f"auto-retry: {step.message}", flush=True)
        if notifier is not None:
            from tui.runs.notify import notify

            problem = notify("retried" if step.started else "failed", run_dir, step.message, webhook=notifier.webhook,
                             terminal=notifier.terminal, desktop=notifier.desktop)
            if problem:
                notifier.on_problem(problem)
            notifier.sent.clear()  # the next run's end is news too
        if step.started is None:
            return code
        from tui.cli.history import record_in_history

        record_in_history([step.started])
        run_dir, left = step.started, left - 1


class GpuPoller:
    """Samples the GPUs once a second in a daemon thread; `latest` is read by the printer."""

    def __init__(self):
        from tui.hardware.usage import UsageSampler

        self.sampler = UsageSampler()
        self.latest: list = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self):
        while not self._stop.is_set():
            try:
                self.latest = self.sampler.sample()
            except Exception:  # a sampling hiccup must never end the monitor
                self.latest = []
            self._stop.wait(GPU_POLL_S)

    def close(self):
        self._stop.set()
        self.sampler.close()


def follow_headless(run_dir: Path, as_json: bool, notifier=None, with_kind: bool = False):
    """Print one line (or JSON object) per event until the run ends; exit with the run's status.
    A notifier (tui.cli.notify: --notify/--webhook) is given every event and picks the run's end
    and the health diagnoses."""
    from tui.runs.lifecycle import (
        ENDED,  # a run's last event is named after its ended status
    )
    from tui.runs.watch import RunWatcher, exit_status_of, plain_line

    from tui.cli.history import record_in_history

    watcher = RunWatcher(run_dir)
    if watcher.status.status == "new":
        raise UserError(f"{run_dir} has not been started: `sft-tui run {_quote(run_dir)}`")
    record_in_history([run_dir])
    gpus = GpuPoller() if watcher.status.status == "running" else None
    try:
        while True:
            events = watcher.poll()
            for event in events:
                if as_json:
                    if event.kind != "line":
                        sample = [s.to_json() for s in gpus.latest] if gpus else []
                        print_json_line(event.to_json() | ({"gpus": sample} if sample else {}))
                else:
                    line = plain_line(event, gpus.latest if gpus else None)
                    if line:
                        print(line, flush=True)
                if notifier is not None:
                    notifier.on_event(event, watcher.run_dir)
                if event.kind in ENDED:
                    if event.kind == "failed" and not as_json:
                        print_failure_details(event, run_dir)
                    if watcher.history_note:  # the watcher recorded the run's end in the run history
                        print(f"sft-tui: {watcher.history_note}", file=sys.stderr)
                    return (exit_status_of(event), event.kind) if with_kind else exit_status_of(event)
            time.sleep(POLL_S)
    except KeyboardInterrupt:
        print("monitor closed; training goes on", file=sys.stderr)
        return (130, None) if with_kind else 130
    finally:
        if gpus:
            gpus.close()


def print_failure_details(event, run_dir: Path) -> None:
    cause = event.data.get("cause")
    if cause == "oom":
        print(f"  fix: sft-tui retry {_quote(run_dir)} --fix oom   (the next plan: smaller micro-batch, then 4-bit, then shorter cutoff)")
    elif cause in ("data", "setup") and event.data.get("exception"):
        print(f"  LLaMA-Factory said: {event.data['exception']}")
    elif cause in ("exception", "unknown"):
        if event.data.get("exit_code") == 137:  # SIGKILL: most often the kernel's out-of-memory killer (tui.runs.verdict)
            print(f"  fix: sft-tui retry {_quote(run_dir)} --fix host-oom   (killed with SIGKILL, likely for want of "
                  "host RAM: half the tokenizing and data-loading workers)")
        for line in event.data.get("context", [])[-5:]:
            print(f"  | {line}")
    print(f"  full log: {_quote(Path(run_dir) / 'train.log')}")


def print_json_line(value) -> None:
    import orjson

    sys.stdout.write(orjson.dumps(value).decode() + "\n")
    sys.stdout.flush()


def cmd_retry(args) -> int:
    from tui.bundle.spec import BundleError
    from tui.plan.requests import RequestError
    from tui.runs.retry import RetryError, resume_sentence, retry_run

    try:
        retry = retry_run(Path(args.run_dir), args.fix)
    except (RetryError, BundleError, RequestError, ValueError) as err:
        raise UserError(str(err)) from None
    if args.json:
        print_json({"run_dir": str(retry.run_dir), "follows": retry.follows, "fits": retry.fits,
                    "per_device_gib": retry.per_device_gib,
                    "changes": {k: {"from": a, "to": b} for k, (a, b) in retry.changes.items()}, "why": retry.why,
                    "resumes": retry.resumes, "fix": retry.fix, "notes": retry.notes})
        return EXIT_OK if retry.fits else EXIT_PROBLEMS
    print(f"Wrote {retry.run_dir}, following {retry.follows}:")
    for key, (old, new) in retry.changes.items():
        print(f"  {key}: {old} -> {new}")
    for why in retry.why:
        print(f"  why: {why}")
    print(f"  {resume_sentence(retry)}")
    for note in retry.notes:
        print(f"  {note}")
    print(f"  estimated peak {retry.per_device_gib:.1f} GiB per device: {'fits' if retry.fits else 'DOES NOT FIT'}")
    if not retry.fits:
        print(f"sft-tui: the retried plan still does not fit ({retry.per_device_gib:.1f} GiB per device), so it "
              "would run out of memory again: train on a GPU with more memory or on more GPUs (--gpus N), or "
              f"shorten cutoff_len (`sft-tui export --from {_quote(Path(retry.run_dir) / 'plan.json')} --set "
              "cutoff_len=N`)", file=sys.stderr)
        return EXIT_PROBLEMS
    print(f"Start it:  sft-tui run {_quote(retry.run_dir)}")
    return EXIT_OK


def cmd_demo(args) -> int:
    from tui.runs.demo import prepare_demo

    say = (lambda step, message: print(f"demo: {message}", flush=True))
    status = prepare_demo(Path(args.dir) if args.dir else None, progress=say)
    print(f"demo: training {status.run_dir}")
    if args.plain:
        return follow_headless(Path(status.run_dir), as_json=False)
    from tui.app import run_app

    return run_app(monitor=Path(status.run_dir))


def add_run_parsers(sub) -> None:
    p = sub.add_parser("demo", help="train a tiny model on a sample dataset here, for real, and watch it",
                       description="Builds a tiny Qwen2 model locally, plans for this machine, exports a bundle and "
                       "runs it with LLaMA-Factory (well under a minute on a laptop CPU).")
    p.add_argument("--dir", metavar="DIR", help="where the demo's files go (default: the user data directory)")
    p.add_argument("--plain", action="store_true", help="print one line per event instead of opening the monitor")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("run", help="start a run directory's run_sft.sh detached, and say how to watch it")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--resume", action="store_true", help="continue from the newest checkpoint")
    p.add_argument("--force", action="store_true",
                   help="start it even though it was planned for other hardware than this machine's")
    p.add_argument("--json", action="store_true", help="print the run's status as JSON")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("stop", help="stop a run: the trainer saves and stops, then no process of it is left",
                       description="SIGABRT to the trainer (LLaMA-Factory finishes the step and stops), SIGTERM to "
                       "every process of the run after --grace seconds, then SIGKILL.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--grace", type=float, default=60.0, metavar="S", help="seconds to let the trainer stop cleanly (60)")
    p.add_argument("--json", action="store_true", help="print the final status as JSON")
    p.set_defaults(func=cmd_stop)

    p = sub.add_parser("status", help="a table of runs: status, step, loss, ETA, output directory")
    p.add_argument("runs_dir", nargs="?", default="runs", metavar="RUNS_DIR", help="a runs/ directory or one run (default: ./runs)")
    p.add_argument("--json", action="store_true", help="print a JSON list")
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("monitor", help="watch a run (started by anyone, or a copied run directory)",
                       description="Opens the monitor screen; --plain prints one line per event and exits when the "
                       "run ends, with the run's exit status (0 finished, its exit code when failed, 130 stopped).")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--plain", action="store_true", help="one line per event (step/total, loss, lr, ETA, GPU memory)")
    p.add_argument("--json", action="store_true", help="one JSON object per event")
    p.add_argument("--auto-retry", type=int, default=0, metavar="N",
                   help="when the run ends in a failure whose logs call for a fix (oom, host-oom, nan, diverged), "
                   "write that retry, start it and follow it, up to N retries in a chain (0: never)")
    add_notify_arguments(p)
    p.set_defaults(func=cmd_monitor)

    p = sub.add_parser("retry", help="write the next run directory after a failure (--fix oom|host-oom|nan|diverged)",
                       description="Only the fix the run's own logs call for is made; any other, and a failure no "
                       "setting fixes, is refused with what the run has.")
    p.add_argument("run_dir", metavar="RUN_DIR")
    p.add_argument("--fix", required=True, choices=["oom", "host-oom", "nan", "diverged"],
                   help="what went wrong: oom (out of GPU memory: smaller micro-batch, then 4-bit, then shorter cutoff), "
                   "host-oom (killed by the kernel, exit 137: half the tokenizing and data-loading workers), nan (the "
                   "loss or gradient norm went NaN) or diverged (a loss spike, an exploding gradient norm): from the "
                   "last checkpoint before it with the learning rate halved and clipping on"),
    p.add_argument("--json", action="store_true", help="print the new run and its changes as JSON")
    p.set_defaults(func=cmd_retry)
