"""``mixdvae evaluate tracking``: score a tracking results file against its windows file."""

from __future__ import annotations

import argparse
from pathlib import Path

from mixdvae.data.windows import load_windows
from mixdvae.metrics.mot import PROTOCOLS, TOOLS, evaluate_windows
from mixdvae.tracking.results import check_results_match, load_tracking_results
from mixdvae.utils.io import write_json

__all__ = ["add_parser", "run_evaluate_tracking"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tracking",
        help="Score tracking results (MOTA, MOTP, IDF1, HOTA, IDS, MT, ML, FP, FN) on windows.",
        description="CLEAR MOT, IDF1 (and HOTA with trackeval) at IoU 0.5. The paper protocol "
        "labels hypotheses the way the original work did and cannot see identity switches.",
    )
    p.add_argument("results", type=Path, help="results .npz written by `mixdvae track`")
    p.add_argument("--windows", type=Path, required=True, help="windows .npz the results were made on")
    p.add_argument("--protocol", choices=PROTOCOLS, required=True,
                   help="standard: hypothesis id = source index; paper: original labelling")
    p.add_argument("--tool", choices=TOOLS, default="native",
                   help="native (default: fast, counts as motmetrics does), native-trackeval "
                   "(fast, counts as TrackEval does), motmetrics, or trackeval (adds HOTA)")
    p.add_argument("--json", type=Path, help="also write overall and per-window scores here")
    p.add_argument("--per-window", action="store_true", help="print one row per window as well")
    p.set_defaults(func=run_evaluate_tracking)


def run_evaluate_tracking(args: argparse.Namespace) -> int:
    results = load_tracking_results(args.results)
    windows = load_windows(args.windows)
    check_results_match(results, windows, str(args.results), str(args.windows))
    scores = evaluate_windows(
        results.boxes,
        windows.gt,
        eta=results.eta,
        det_gt_index=windows.det_gt_index,
        protocol=args.protocol,
        tool=args.tool,
        sequence=windows.sequence,
        frames=windows.frames,
    )
    print(scores.table(per_window=args.per_window))
    if args.json is not None:
        write_json(args.json, scores.to_dict())
    return 0
