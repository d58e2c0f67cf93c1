"""``mixdvae data trajectories``: make synthetic single-object box trajectories for pretraining.

Example::

    mixdvae data trajectories --num 20000 --length 60 --seed 0 --out runs/data/train.npz
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mixdvae.data.boxes import REFERENCE_IMAGE_SIZE, denormalise_boxes, to_reference_encoding
from mixdvae.data.synthetic import generate_trajectories, trajectory_meta
from mixdvae.data.trajectories import save_trajectories

__all__ = ["add_parser", "run_data_trajectories"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "trajectories",
        help="Synthetic single-object box trajectories (reference recipe, any length).",
        description="Draw piecewise static/line/parabola/sinusoid box trajectories (reference-implementation.md "
        "section 2), reject invalid ones, and write exactly NUM of them as an .npz (key 'boxes': (NUM, T, 4) "
        "normalised x1, y1, x2, y2; key 'meta': JSON).",
    )
    p.add_argument("--num", type=int, required=True, help="trajectories to write (>= 1)")
    p.add_argument("--length", type=int, default=60, help="frames per trajectory, >= 3 (default: 60)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    p.add_argument("--out", type=Path, required=True, help="output .npz file")
    p.add_argument(
        "--encoding",
        choices=("normalised", "reference"),
        default="normalised",
        help="normalised (x1, y1, x2, y2) (default), or the original code's (x, y, x + w, y - h) / "
        "(1920, 1080) for priors used by the 'reference' preset",
    )
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: when stderr is a terminal)",
    )
    p.set_defaults(func=run_data_trajectories)


def run_data_trajectories(args: argparse.Namespace) -> int:
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    boxes = generate_trajectories(args.num, args.length, args.seed, progress=progress)
    meta = trajectory_meta(args.num, args.length, args.seed)
    if args.encoding == "reference":
        # Normalised boxes of a 16:9 image -> pixels of 1920 x 1080 -> the reference encoding.
        boxes = to_reference_encoding(denormalise_boxes(boxes, REFERENCE_IMAGE_SIZE)).astype("float32")
    meta["encoding"] = args.encoding
    save_trajectories(args.out, boxes, meta)
    print(f"wrote {boxes.shape[0]} trajectories of {boxes.shape[1]} frames to {args.out}")
    return 0
