"""``mixdvae evaluate sequence RESULT.txt --gt SEQ_DIR/gt/gt.txt``: score a whole-sequence result file."""

from __future__ import annotations

import argparse
from pathlib import Path

from mixdvae.metrics.mot import TOOLS

__all__ = ["add_parser", "run_evaluate_sequence"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sequence",
        help="Score a MOTChallenge result file (HOTA, MOTA, IDF1, IDS, FP, FN) against gt.txt.",
        description="TrackEval (default) at IoU 0.5 on the boxes the MOTChallenge evaluation considers. "
        "seqinfo.ini is read from the folder above gt/ unless --seqinfo is given.",
    )
    p.add_argument("result", type=Path, help="MOTChallenge result file (frame,id,x,y,w,h,conf,...)")
    p.add_argument("--gt", type=Path, required=True, help="ground truth, SEQ_DIR/gt/gt.txt")
    p.add_argument("--seqinfo", type=Path, default=None, help="seqinfo.ini (default: GT/../../seqinfo.ini)")
    p.add_argument("--tool", choices=TOOLS, default="trackeval", help="trackeval (default, adds HOTA) or another counter")
    p.add_argument("--json", type=Path, default=None, help="also write {'overall', 'per_window', ...} here")
    p.set_defaults(func=run_evaluate_sequence)


def run_evaluate_sequence(args: argparse.Namespace) -> int:
    from mixdvae.data.mot import read_det, read_gt, read_seqinfo
    from mixdvae.metrics.sequence import evaluate_mot_sequences, mot_sequence_boxes
    from mixdvae.utils.io import write_json

    info = read_seqinfo(args.seqinfo if args.seqinfo is not None else args.gt.parent.parent)
    gt = read_gt(args.gt, info)
    result = read_det(args.result, info)
    scores = evaluate_mot_sequences([mot_sequence_boxes(gt, result, info)], tool=args.tool)
    print(scores.table())
    if args.json is not None:
        write_json(args.json, scores.to_dict())
    return 0
