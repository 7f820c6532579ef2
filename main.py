"""SegLoop: AI-assisted annotation of CT and MR volumes.

`python main.py` opens the application; `python main.py SUBCOMMAND ...` runs one task from the
command line (see `python main.py --help`).
"""
from __future__ import annotations

import argparse
import importlib
import sys


def build_parser(argv: list[str] | None = None) -> argparse.ArgumentParser:
    """Only the chosen subcommand declares its arguments: some take their defaults from modules
    that import torch (seconds), which `--help` or another subcommand should not pay for."""
    from app.cli import COMMAND_MODULES

    argv = sys.argv[1:] if argv is None else argv

    parser = argparse.ArgumentParser(
        prog="python main.py",
        description="SegLoop: AI-assisted annotation of CT and MR volumes. "
                    "With no subcommand, opens the application.")
    parser.add_argument("--data", default=None,
                        help="(GUI) folder of cases to list at start (default: data_source/)")
    parser.add_argument("--results", default=None,
                        help="folder for the case database, labels and logs (default: results/)")
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND")
    for module_name in COMMAND_MODULES:
        module = importlib.import_module(module_name)
        command = sub.add_parser(module.NAME, help=module.HELP, description=module.HELP)
        if module.NAME in argv:
            module.add_arguments(command)
        command.set_defaults(run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if args.command is None:
        from app.gui.application import run_gui

        return run_gui(data_dir=args.data, results_dir=args.results)

    from app.core.errors import SegLoopError

    try:
        return int(args.run(args) or 0)
    except SegLoopError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # a bug: still one line for the user, the traceback kept in a file
        import tempfile
        import traceback

        with tempfile.NamedTemporaryFile("w", prefix="segloop-error-", suffix=".txt", delete=False,
                                         encoding="utf-8") as report:
            traceback.print_exc(file=report)
        print(f"error: internal error ({type(error).__name__}: {error}); details in {report.name}",
              file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
