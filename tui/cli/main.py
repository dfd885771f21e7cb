"""`sft-tui` sub-commands. Thin: parse arguments, call the core, print text or `--json`.

Imports of the core happen inside each command so that `sft-tui --help` stays fast, and
nothing here imports torch, transformers or llamafactory. With no sub-command, the Textual
wizard opens. Each group of commands is a module of its own (hardware, datasets, plan, runs,
after) with its parsers; common.py holds what they share."""

from __future__ import annotations

import argparse
import sys

from tui.cli.after import add_after_parsers
from tui.cli.bundle import add_bundle_parsers
from tui.cli.common import EXIT_OK, EXIT_USAGE
from tui.common.errors import SftTuiError
from tui.cli.compare import add_compare_parsers
from tui.cli.datasets import add_dataset_parsers
from tui.cli.hardware import add_hardware_parsers
from tui.cli.history import add_history_parsers
from tui.cli.plan import add_plan_parsers
from tui.cli.runs import add_run_parsers


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sft-tui",
        description="Plan, write and watch LLaMA-Factory fine-tunes. "
        "With no command, opens the interactive wizard.",
    )
    from tui import __version__

    parser.add_argument("--version", action="version", version=f"sft-tui {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    add_hardware_parsers(sub)
    add_dataset_parsers(sub)
    add_plan_parsers(sub)
    add_bundle_parsers(sub)
    add_run_parsers(sub)
    add_after_parsers(sub)
    add_compare_parsers(sub)
    add_history_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        from tui.app import run_app

        return run_app()
    try:
        return args.func(args)
    except SftTuiError as err:  # every error kind the core words (UserError, RunError, ...): one line per problem
        for line in str(err).splitlines() or [""]:
            print(f"sft-tui: {line}", file=sys.stderr)
        return EXIT_USAGE
    except ImportError as err:  # a package this environment lacks: the install command, not a traceback
        from tui.common.packages import missing_package_sentence

        print(f"sft-tui: {missing_package_sentence(err)}", file=sys.stderr)
        return EXIT_USAGE
    except BrokenPipeError:  # `sft-tui ... | head`
        return EXIT_OK
    except KeyboardInterrupt:  # Ctrl-C: a word, not a traceback (monitor says its own)
        print("sft-tui: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
