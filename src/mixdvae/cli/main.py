"""``mixdvae`` entry point: builds the parser from one module per command and runs it.

Errors a user can cause end as one line on stderr and exit code 2; Ctrl-C exits 130 after the
command has saved what it finished.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from mixdvae import __version__
from mixdvae.errors import MixDVAEError
from mixdvae.utils.io import check_output_file, first_line
from mixdvae.utils.logging import configure_cli_logging

# Each module defines ``add_parser(subparsers)``; the order is the order of ``mixdvae --help``.
COMMAND_MODULES = [
    "mixdvae.cli.train",
    "mixdvae.cli.ensemble",
    "mixdvae.cli.data",
    "mixdvae.cli.evaluate",
    "mixdvae.cli.track",
    "mixdvae.cli.separate",
    "mixdvae.cli.bench",
    "mixdvae.cli.plot",
]


class _Parser(argparse.ArgumentParser):
    """argparse that exits 2 with a single line for usage errors."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mixdvae", description="Mixture of dynamical VAEs: tracking and separation.")
    parser.add_argument("--version", action="version", version=f"mixdvae {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_cli_logging(args.verbose)
    try:
        if getattr(args, "json", None) is not None:  # every --json is a results file written at the end
            check_output_file(args.json, "--json")
        return int(args.func(args) or 0)
    except MixDVAEError as err:
        print(f"mixdvae: error: {first_line(err)}", file=sys.stderr)
        return 2
    except OSError as err:  # a path the system refuses: --out names a file, no permission, disk full
        print(f"mixdvae: error: {describe_os_error(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mixdvae: interrupted; finished results were kept", file=sys.stderr)
        return 130


def describe_os_error(err: OSError) -> str:
    """One line for an error of the operating system: ``PATH: reason`` (``PATH -> PATH2: reason`` for a
    rename), or the error's first line when it names no path."""
    reason = err.strerror or first_line(err)
    if err.filename is None:
        return reason
    where = str(err.filename) if err.filename2 is None else f"{err.filename} -> {err.filename2}"
    return f"{where}: {reason}"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
