"""``mixdvae bench sequences``: whole-sequence trackers on MOT15 and MOT17 train (:mod:`mixdvae.bench.sequences`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mixdvae.errors import ConfigError

__all__ = ["add_sequences_parser", "run_bench_sequences"]

_SHARED = Path("..") / "shared" / "data"


def add_sequences_parser(bench_sub: argparse._SubParsersAction) -> None:
    q = bench_sub.add_parser("sequences", help="MixDVAE, VKF, Kalman, SORT, OC-SORT, ByteTrack on whole MOT15 / MOT17 sequences.",
                            description="Every method on every sequence of MOT15 train (public det.txt) and MOT17 train "
                            "(simulated detector), scored with TrackEval; totals, per sequence and frames per second.")
    q.add_argument("--json", type=Path, default=None, help="save the full results here")
    q.add_argument("--mot15-dir", type=Path, default=_SHARED / "MOT15" / "train", help="public det.txt")
    q.add_argument("--mot17-dir", type=Path, default=_SHARED / "MOT17" / "train", help="simulated detector (no det.txt)")
    q.add_argument("--datasets", default="MOT15,MOT17", help="comma-separated: MOT15, MOT17")
    q.add_argument("--methods", default=None, help="comma-separated (default: all)")
    q.add_argument("--config", type=Path, default=None, help="TOML/JSON [sequence] table overriding the defaults")
    q.add_argument("--seed", type=int, default=0, help="seed of the simulated detector and of the VEM")
    q.add_argument("--device", default="cpu", help="cpu (default), cuda, cuda:N or auto")
    q.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    q.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)
    q.set_defaults(func=run_bench_sequences)


def run_bench_sequences(args: argparse.Namespace) -> int:
    from mixdvae.bench.sequences import BENCH_DETECTOR, SequenceBenchSpec, format_sequence_tables, run_sequence_bench
    from mixdvae.config import config_to_dict
    from mixdvae.cli.track_sequence import load_sequence_config, set_threads
    from mixdvae.tracking.sequence import SEQUENCE_METHODS
    from mixdvae.utils.device import resolve_device
    from mixdvae.utils.io import write_json

    set_threads(args.threads)
    folders = {"MOT15": args.mot15_dir, "MOT17": args.mot17_dir}
    names = [d.strip() for d in str(args.datasets).split(",") if d.strip()]
    bad = [d for d in names if d not in folders]
    if bad:
        raise ConfigError(f"--datasets: unknown {bad} (choose from {sorted(folders)})")
    methods = SEQUENCE_METHODS
    if args.methods:
        methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
        unknown = [m for m in methods if m not in SEQUENCE_METHODS]
        if unknown:
            raise ConfigError(f"--methods: unknown {unknown} (choose from {list(SEQUENCE_METHODS)})")
    spec = SequenceBenchSpec({d: folders[d] for d in names}, methods, load_sequence_config(args.config), args.seed,
                             str(resolve_device(args.device)))
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    header = {"spec": {"datasets": {k: str(v) for k, v in spec.datasets.items()}, "methods": list(methods),
                       "seed": spec.seed, "device": spec.device, "threads": args.threads,
                       "config": config_to_dict(spec.config), "detector": config_to_dict(BENCH_DETECTOR)}}
    # the JSON is rewritten after every dataset, so an interrupted run keeps what it finished
    save = None if not args.json else (lambda partial: write_json(args.json, {**header, **partial}))
    result = run_sequence_bench(spec, progress, on_cell=save)
    print(format_sequence_tables(result))
    if args.json:
        write_json(args.json, {**header, **result})
        print(f"wrote {args.json}", file=sys.stderr)
    return 0
