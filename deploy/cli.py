"""The ``silif-deploy`` command line.

Each subcommand lives in its own module ``silif_deploy.deploy.cmd_<name>`` exposing ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``. Errors a user can fix arrive as
:class:`~silif_deploy.errors.SilifDeployError` and are printed as one line, never a traceback.

Start-up imports only the chosen subcommand's module: the others' one-line ``HELP`` is read from
their source (:func:`command_help`), since importing them would pull in scipy, torch or numba for
commands the user did not ask for.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import sys

from silif_deploy import __version__
from silif_deploy.errors import SilifDeployError

COMMANDS = (
    "export",
    "simulate",
    "inspect",
    "make-data",
    "train",
    "golden",
    "verify",
    "report",
    "compare",
)

EXIT_BAD_INPUT = 2


def _module_name(command: str) -> str:
    return f"silif_deploy.deploy.cmd_{command.replace('-', '_')}"


def command_help(command: str) -> str:
    """The ``HELP`` string of a subcommand's module, read from its source without importing it."""
    spec = importlib.util.find_spec(_module_name(command))
    try:
        with open(spec.origin, encoding="utf-8") as fh:  # type: ignore[union-attr, arg-type]
            tree = ast.parse(fh.read())
        return next(ast.literal_eval(node.value) for node in tree.body if isinstance(node, ast.Assign)
                    and any(isinstance(t, ast.Name) and t.id == "HELP" for t in node.targets))
    except (OSError, TypeError, StopIteration, ValueError):  # no source (a frozen install): import it
        return importlib.import_module(_module_name(command)).HELP


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser; with ``command``, only that subcommand's module is imported and its arguments added
    (the others are listed with their help; ``""`` imports none); without, every subcommand is complete."""
    parser = argparse.ArgumentParser(
        prog="silif-deploy",
        description="Export, quantize, simulate and cost SiLIF / C-SiLIF spiking networks for Loihi-class hardware.",
    )
    parser.add_argument("--version", action="version", version=f"silif-deploy {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        if command is None or name == command:
            module = importlib.import_module(_module_name(name))
            parser_ = sub.add_parser(name, help=module.HELP, description=module.HELP)
            module.add_arguments(parser_)
            parser_.set_defaults(_run=module.run)
        else:
            sub.add_parser(name, help=command_help(name), add_help=False)
    return parser


def _chosen_command(argv: list[str]) -> str:
    """The subcommand in ``argv`` (the first word that is not an option: no top-level option takes a
    value), or ``""`` when there is none or it is unknown (argparse then lists the commands)."""
    word = next((a for a in argv if not a.startswith("-")), "")
    return word if word in COMMANDS else ""


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(_chosen_command(argv)).parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except SilifDeployError as err:
        print(f"silif-deploy {args.command}: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"silif-deploy {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
