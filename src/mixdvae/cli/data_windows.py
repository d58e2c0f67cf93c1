"""``mixdvae data windows``: cut MOT-NT windows (T frames, N objects) from MOTChallenge sequences.

Example::

    mixdvae data windows --mot-dir ../shared/data/MOT15/train --sequences PETS09-S2L1,Venice-2 \\
        --length 60 --sources 3 --stride 40 --seed 0 --out mot15-3t-60.npz
    mixdvae data windows --mot-dir ../shared/data/MOT17/train --detector simulated \\
        --length 60 --sources 3 --stride 40 --seed 0 --out mot17-3t-60-sim.npz
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mixdvae.config import load_config
from mixdvae.data.detector import SimulatedDetector
from mixdvae.data.mot import read_seqinfo
from mixdvae.data.windows import make_windows, save_windows
from mixdvae.errors import DataFormatError

__all__ = ["add_parser", "run_windows", "find_sequences"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("windows", help="Cut T-frame, N-object windows (MOT-NT) from MOTChallenge sequences.",
                       description="Match detections to ground truth, cut windows, keep ids seen on every "
                                   "frame, draw seeded N-subsets and shuffle the detections within each frame.")
    p.add_argument("--mot-dir", type=Path, required=True,
                   help="a folder of sequence folders (e.g. MOT15/train) or one sequence folder")
    p.add_argument("--sequences", default=None, help="comma-separated sequence folder names (default: all)")
    p.add_argument("--length", type=int, required=True, help="T, frames per window")
    p.add_argument("--sources", type=int, required=True, help="N, objects per window")
    p.add_argument("--stride", type=int, required=True, help="frames between window starts")
    p.add_argument("--seed", type=int, default=0, help="seeds the subsets, shuffles and simulated detector")
    p.add_argument("--detector", choices=("file", "simulated"), default="file",
                   help="file: det/det.txt; simulated: detections made from gt (default: file)")
    p.add_argument("--detector-config", type=Path, default=None,
                   help="TOML/JSON with a [detector] table of SimulatedDetector fields")
    p.add_argument("--min-obs-ratio", type=float, default=0.65,
                   help="fraction of frames with a matched detection (default: 0.65)")
    p.add_argument("--first-frames", type=int, default=1,
                   help="leading frames on which every kept id must be detected (default: 1)")
    p.add_argument("--max-subsets", type=int, default=20, help="N-subsets drawn per window (default: 20)")
    p.add_argument("--progress", action="store_true", help="show a progress bar")
    p.add_argument("--out", type=Path, required=True, help="output .npz")
    p.set_defaults(func=run_windows)


def find_sequences(mot_dir: Path, names: str | None) -> list[Path]:
    """Sequence folders under ``mot_dir`` (or ``mot_dir`` itself if it holds seqinfo.ini), by name."""
    if not mot_dir.is_dir():
        raise DataFormatError(f"{mot_dir}: folder not found")
    if (mot_dir / "seqinfo.ini").is_file():
        found = {mot_dir.name: mot_dir}
    else:
        found = {d.name: d for d in sorted(mot_dir.iterdir()) if (d / "seqinfo.ini").is_file()}
    if not found:
        raise DataFormatError(f"{mot_dir}: no sequence folders (folders holding seqinfo.ini)")
    if names is None:
        return list(found.values())
    wanted = [n.strip() for n in names.split(",") if n.strip()]
    if not wanted:
        raise DataFormatError(f"--sequences '{names}' names no sequence")
    unknown = [n for n in wanted if n not in found]
    if unknown:
        raise DataFormatError(f"{mot_dir}: no sequence folder '{unknown[0]}' (found: {', '.join(found)})")
    return [found[n] for n in wanted]


def run_windows(args: argparse.Namespace) -> int:
    seq_dirs = find_sequences(args.mot_dir, args.sequences)
    detector_config = None
    if args.detector_config is not None:
        detector_config = load_config(SimulatedDetector, args.detector_config, section="detector")
    ws = make_windows(seq_dirs, length=args.length, sources=args.sources, stride=args.stride, seed=args.seed,
                      detector=args.detector, min_obs_ratio=args.min_obs_ratio, first_frames=args.first_frames,
                      max_subsets=args.max_subsets, detector_config=detector_config, progress=args.progress)
    names = [read_seqinfo(d).name for d in seq_dirs]
    if len(ws) == 0:
        print(f"mixdvae: error: no windows of length {args.length} with {args.sources} sources in "
              f"{', '.join(names)} (stride {args.stride}, min-obs-ratio {args.min_obs_ratio}, detector "
              f"{args.detector}); try a shorter --length, fewer --sources or a lower --min-obs-ratio",
              file=sys.stderr)
        return 2
    save_windows(args.out, ws)
    counts = {name: int((ws.sequence == name).sum()) for name in names}
    width = max(len(n) for n in names)
    for name, count in counts.items():
        print(f"{name:<{width}}  {count:6d} windows")
    print(f"{'total':<{width}}  {len(ws):6d} windows of T={args.length}, N={args.sources} "
          f"({args.detector} detector) -> {args.out}")
    return 0
