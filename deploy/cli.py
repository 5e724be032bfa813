"""The ``silif-deploy`` command line.

Each subcommand lives in its own module ``silif_deploy.deploy.cmd_<name>`` exposing ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int``. Errors a user can fix arrive as
:class:`~silif_deploy.errors.SilifDeployError` and are printed as one line, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
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
    "sweep",
)

EXIT_BAD_INPUT = 2


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="silif-deploy",
        description="Export, quantize, simulate and cost SiLIF / C-SiLIF spiking networks for Loihi-class hardware.",
    )
    parser.add_argument("--version", action="version", version=f"silif-deploy {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"silif_deploy.deploy.cmd_{name.replace('-', '_')}")
        command = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(command)
        command.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
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
