"""``mixdvae evaluate ...``: score forecasts, tracking results, separations.

Each sub-command lives in ``mixdvae.cli.evaluate_<name>`` exposing ``add_parser(subparsers)``.
"""

from __future__ import annotations

import argparse
import importlib

EVALUATE_MODULES = [
    "mixdvae.cli.evaluate_forecast",
    "mixdvae.cli.evaluate_tracking",
    "mixdvae.cli.evaluate_separation",
    "mixdvae.cli.evaluate_sequence",
]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="Score a prior's forecasts, a tracker's results or separated sources.")
    ev_sub = p.add_subparsers(dest="evaluate_command", metavar="WHAT", parser_class=type(p))
    ev_sub.required = True
    for name in EVALUATE_MODULES:
        importlib.import_module(name).add_parser(ev_sub)
