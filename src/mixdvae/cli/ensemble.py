"""``mixdvae ensemble A B C --out E``: several checkpoints of one recipe (e.g. one per training seed)
written as one ensemble prior (:mod:`mixdvae.dvae.ensemble`), usable wherever separation takes
``--weights``."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["add_parser", "run_ensemble"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ensemble",
        help="Combine checkpoints of one architecture (several training seeds) into one ensemble prior.",
        description="Writes OUT.safetensors + OUT.json: the members' weights and a card that keeps each "
        "member's command, seed and validation figures. Separation reads it as one prior whose variance "
        "combines the members' (geometric: exp of the mean log variance; arithmetic: the mean).",
    )
    p.add_argument("members", type=Path, nargs="+", help="member checkpoints (NAME.safetensors with NAME.json)")
    p.add_argument("--out", type=Path, required=True, help="output checkpoint name (NAME or NAME.safetensors)")
    p.add_argument("--combine", choices=("geometric", "arithmetic"), default="geometric",
                   help="how the members' variances combine (default geometric)")
    p.set_defaults(func=run_ensemble)


def run_ensemble(args: argparse.Namespace) -> int:
    from mixdvae.dvae.ensemble import save_ensemble

    path = save_ensemble(args.out, args.members, args.combine)
    print(f"wrote {path} ({len(args.members)} members, {args.combine} combination)")
    return 0
