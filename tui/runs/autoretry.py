"""`sft-tui monitor RUN_DIR --auto-retry N`: after a run ends, the retry its own files call for
(tui.runs.verdict), written by the code `sft-tui retry --fix FIX` runs (tui.runs.retry) and started
as `sft-tui run` starts a bundle (tui.runs.lifecycle.start_run: run_sft.sh detached); and the chain
of runs that `follows` in plan.json links, for `sft-tui status`.

The rules, in order: a run that was stopped is not retried (whoever stopped it is there to decide);
a run whose verdict has no fix (finished well, a missing file, a bad template, a traceback) ends the
chain, with the verdict's sentence when it failed; a retry whose plan still does not fit is written
but not started; otherwise the retry is written and started, up to N in the chain.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tui.runs.verdict import read_verdict


@dataclass
class NextStep:
    """What the monitor does after a run ended: `started` a retry (its run directory), or not, and why."""

    message: str  # one sentence, for the terminal and the notification
    started: Path | None = None
    refused: bool = False  # a failure no retry fixes, or a retry that could not be made or started


def after_run(run_dir: Path, ended_kind: str, retries_left: int) -> NextStep | None:
    """The retry of an ended run, written and started, when its verdict has a fix and retries are left;
    None when there is nothing to say (it finished well, or was stopped)."""
    from tui.bundle.spec import BundleError
    from tui.plan.requests import RequestError
    from tui.runs.lifecycle import RunError, start_run
    from tui.runs.retry import RetryError, retry_run

    run_dir = Path(run_dir)
    if ended_kind == "stopped":
        return None
    verdict = read_verdict(run_dir)
    name = run_dir.name
    if verdict.fix is None:
        if ended_kind == "finished":
            return None
        return NextStep(f"run {name} ended and {no_fix_sentence(verdict)}", refused=True)
    if retries_left <= 0:
        return NextStep(f"run {name} ended: {verdict.diagnosis}; no automatic retry is left (--auto-retry): "
                        f"sft-tui retry {run_dir} --fix {verdict.fix}", refused=True)
    try:
        retry = retry_run(run_dir, verdict.fix)
    except (RetryError, BundleError, RequestError, ValueError) as err:
        return NextStep(f"run {name} ended: {verdict.diagnosis}; no retry was made: {err}", refused=True)
    what = retry_words(retry)
    if not retry.fits:
        return NextStep(f"run {name} ended: {verdict.diagnosis}; wrote retry {retry.run_dir.name}{what}, but not "
                        f"started: its plan still does not fit ({retry.per_device_gib:.1f} GiB per device)", refused=True)
    try:
        start_run(retry.run_dir)
    except RunError as err:
        return NextStep(f"run {name} ended: {verdict.diagnosis}; wrote retry {retry.run_dir.name}{what}, but it did not "
                        f"start: {err}", refused=True)
    return NextStep(f"run {name} ended: {verdict.diagnosis}; started retry {retry.run_dir.name}{what}",
                    started=Path(retry.run_dir))


def no_fix_sentence(verdict) -> str:
    """'is not retried: <the verdict's diagnosis> (no retry fixes that: <advice>)', for a verdict without a fix."""
    if verdict.status == "running":
        return f"is not retried: {verdict.diagnosis}; {verdict.advice}"
    why = verdict.diagnosis or f"it is {verdict.status} and its logs show nothing a retry fixes"
    advice = f": {verdict.advice}" if verdict.advice else ""
    return f"is not retried: {why} (no retry fixes that{advice})"


def retry_words(retry) -> str:
    """' from checkpoint-40 with learning_rate 1e-4, max_grad_norm 1.0' (or 'from the start')."""
    if retry.resumes and "checkpoint" in retry.resumes:
        where = f" from {Path(retry.resumes['checkpoint']).name}"
    else:
        where = " from the start"
    changes = ", ".join(f"{key} {new:g}" if isinstance(new, float) else f"{key} {new}"
                        for key, (_, new) in retry.changes.items())
    return where + (f" with {changes}" if changes else "")


def follows_of(run_dir: Path) -> str | None:
    """The run id this run is a retry of (plan.json's `follows`), or None."""
    try:
        follows = json.loads((Path(run_dir) / "plan.json").read_text()).get("follows")
    except (OSError, ValueError, AttributeError):
        return None
    return follows.get("run_id") if isinstance(follows, dict) else None


def lineages(rows: list[dict]) -> list[list[dict]]:
    """Chains of two runs or more (a run, its retry, the retry's retry...), oldest first, from
    `sft-tui status`'s rows (each with `name` and `follows`). A run retried twice by hand branches:
    each branch is a chain."""
    by_name = {row["name"]: row for row in rows}
    children: dict[str, list[dict]] = {}
    for row in rows:
        if row.get("follows") in by_name:
            children.setdefault(row["follows"], []).append(row)
    chains: list[list[dict]] = []

    def walk(chain: list[dict]) -> None:
        after = sorted(children.get(chain[-1]["name"], []), key=lambda r: r["name"])
        if not after:
            chains.append(chain)
        for child in after:
            walk(chain + [child])

    for row in sorted(rows, key=lambda r: r["name"]):
        if row.get("follows") not in by_name and row["name"] in children:
            walk([row])
    return chains


def lineage_line(chain: list[dict]) -> str:
    """'X -> X-retry1 -> X-retry2 (running)': the runs, and the last one's status."""
    return " -> ".join(row["name"] for row in chain) + f" ({chain[-1]['status']})"
