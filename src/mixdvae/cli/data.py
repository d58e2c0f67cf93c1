"""``mixdvae data ...``: make datasets (synthetic trajectories, MOT windows, audio mixtures).

Each ``data`` sub-command lives in its own module ``mixdvae.cli.data_<name>`` exposing
``add_parser(subparsers)``.
"""

from __future__ import annotations

import argparse
import importlib

DATA_MODULES = [
    "mixdvae.cli.data_trajectories",
    "mixdvae.cli.data_windows",
    "mixdvae.cli.data_mixtures",
    "mixdvae.cli.data_spectra",
]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("data", help="Make datasets: synthetic trajectories, MOT windows, audio mixtures.")
    data_sub = p.add_subparsers(dest="data_command", metavar="DATASET", parser_class=type(p))
    data_sub.required = True
    for name in DATA_MODULES:
        importlib.import_module(name).add_parser(data_sub)
