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
import ctypes
import importlib
import importlib.util
import os
import sys
from pathlib import Path

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
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it
EXIT_TERMINATED = 143  # 128 + SIGTERM
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a tool killed by the closed pipe reports

INPUT_ARGS = ("model", "models", "artifact", "input", "data", "golden", "calibrate", "profile", "energy_profile")
"""Argument names (across commands) that name files a command reads."""
OUTPUT_FILE_ARGS = ("out", "report")
"""Argument names that name files a command writes (``make-data --out`` is a folder, never an input)."""


class OneLineParser(argparse.ArgumentParser):
    """An argument error is one line (what is wrong, and where help is), exit status 2."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


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
    parser = OneLineParser(
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


def _values(args: argparse.Namespace, names: tuple[str, ...]) -> list[str]:
    found = []
    for name in names:
        value = getattr(args, name, None)
        found += [str(v) for v in (value if isinstance(value, list) else [value]) if v is not None]
    return found


def program() -> int:
    """The ``silif-deploy`` program: :func:`main` in a process of its own, whose allocator may be tuned."""
    reuse_freed_memory()
    return main()


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)


def reuse_freed_memory() -> None:
    """Have glibc's malloc keep freed blocks of up to 1 GiB for reuse instead of unmapping them.

    Every batch allocates again the arrays of the batch before (spike rasters, float activations:
    20–80 MB each), and an array mapped anew faults and zeroes each of its 4 KB pages again:
    ``report`` of 2,000 SSC C-SiLIF samples spent 9–11 s of its 22–26 s in the kernel, 1.2 s with
    this (peak memory +7 %: the freed arrays are reused, not added). Elsewhere (macOS, musl) the
    allocator is left as it is."""
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return
    mallopt(_M_MMAP_THRESHOLD, 1 << 30)
    mallopt(_M_TRIM_THRESHOLD, 1 << 30)


def main(argv: list[str] | None = None) -> int:
    """Run one command; a reader of stdout that has gone (``silif-deploy inspect ART | head -1``) ends
    it quietly: the Python docs' recipe for SIGPIPE, since Python ignores the signal and raises instead."""
    try:
        code = _run_command(argv)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's flush at exit
        return code
    except BrokenPipeError:
        # what is still buffered would be flushed at exit, fail again and print a traceback
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE


def _run_command(argv: list[str] | None) -> int:
    import signal

    from silif_deploy.converters.files import (
        Terminated, guard_inputs, interrupts_raise, received_signal, refuse_overwriting_inputs,
    )

    argv = sys.argv[1:] if argv is None else argv
    try:
        args = build_parser(_chosen_command(argv)).parse_args(argv)
    except SystemExit as done:  # --help, --version, or a one-line argument error
        return done.code if isinstance(done.code, int) else EXIT_BAD_INPUT
    try:
        with interrupts_raise(), guard_inputs():
            try:
                if args.command != "make-data":
                    inputs = [p for p in _values(args, INPUT_ARGS) if Path(p).exists()]
                    refuse_overwriting_inputs(_values(args, OUTPUT_FILE_ARGS), inputs)
                return int(args._run(args) or 0)
            except Exception:
                # a library's cleanup can fail while the interrupt unwinds it (zipfile closing a
                # member that was being written) and replace the interrupt by its own error
                if received_signal() is None:
                    raise
                raise (Terminated() if received_signal() == signal.SIGTERM else KeyboardInterrupt()) from None
    except SilifDeployError as err:
        print(f"silif-deploy {args.command}: error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except BrokenPipeError:  # stdout's reader has gone: not a file system error, main ends quietly
        raise
    except OSError as err:  # the file system refused (disk full, permissions changed while running)
        where = f" '{err.filename}'" if err.filename else ""
        print(f"silif-deploy {args.command}: error:{where} {err.strerror or err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt as interrupt:  # Ctrl-C, or SIGTERM (Terminated)
        terminated = isinstance(interrupt, Terminated)
        print(f"silif-deploy {args.command}: {'terminated' if terminated else 'interrupted'} "
              "(unfinished outputs removed)", file=sys.stderr)
        return EXIT_TERMINATED if terminated else EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(program())
