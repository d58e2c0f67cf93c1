"""``mixdvae track W.npz``: track the windows of a windows file with a known number of sources."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from mixdvae.cli.track_sequence import SEQUENCE_METHODS, add_sequence_arguments, run_track_sequence, set_threads
from mixdvae.config import load_config_file
from mixdvae.errors import ConfigError
from mixdvae.data.windows import load_windows
from mixdvae.tracking.presets import PRESETS, get_preset
from mixdvae.tracking.results import save_tracking_results
from mixdvae.tracking.batch import track_windows_chunked, tracking_job
from mixdvae.tracking.track import METHODS
from mixdvae.utils.chunks import remove_partial
from mixdvae.utils.device import resolve_device
from mixdvae.utils.distributed import process_group

__all__ = ["add_parser", "run_track"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "track",
        help="Track windows (mixdvae data windows), a MOTChallenge sequence or a folder of sequences.",
        description="A windows file: estimate the N source boxes of every window from its detections alone; "
        "writes the boxes (W, T, N, 4) in pixels, the assignment posteriors (W, T, K, N) and the ELBO history. "
        "A sequence folder (seqinfo.ini, det/det.txt): track the whole sequence with births, deaths and "
        "clutter into a MOTChallenge result file. A folder of sequence folders: one result per sequence in --out.",
    )
    p.add_argument("windows", type=Path, help="windows file (.npz from 'mixdvae data windows') or a MOTChallenge sequence folder (seqinfo.ini, det/det.txt)")
    p.add_argument("--out", "-o", type=Path, required=True, help="results file (.npz; a MOTChallenge .txt for a sequence folder)")
    p.add_argument("--method", choices=list(dict.fromkeys(METHODS + SEQUENCE_METHODS)), default="mixdvae",
                   help="sort, ocsort, bytetrack: sequence folders only; deep-ar: windows only")
    p.add_argument("--preset", choices=sorted(PRESETS), default="default")
    p.add_argument("--weights", type=Path, default=None, help="prior checkpoint (.safetensors, or an original .pt)")
    p.add_argument("--config", type=Path, default=None, help="TOML/JSON [tracking] table overriding the preset")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--batch-size", type=int, default=None, metavar="B",
                   help="windows per VEM batch (default: the preset's, 256); on a GPU a few thousand keep it busy "
                   "(docs/scale.md)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: when stderr is a terminal)")
    p.add_argument("--chunk-size", type=int, default=None, metavar="S",
                   help="windows per resumable chunk (default: the preset's batch size); finished chunks are kept "
                   "in OUT.partial/, a rerun skips them; under torchrun chunks are shared among the ranks")
    p.add_argument("--resume", action="store_true",
                   help="insist on continuing OUT.partial/ (refused if it was started with other settings)")
    add_sequence_arguments(p)  # a sequence folder is handed to mixdvae.cli.track_sequence
    p.set_defaults(func=run_track)


def run_track(args: argparse.Namespace) -> int:
    if args.windows.is_dir():  # a MOTChallenge sequence folder, not a windows file
        return run_track_sequence(args)
    if args.method not in METHODS:
        raise ConfigError(f"--method: '{args.method}' tracks sequence folders only; windows take {list(METHODS)}")
    config = get_preset(args.preset)
    if args.config is not None:
        data = load_config_file(args.config)
        config = config.with_overrides(data.get("tracking", data), str(args.config))
    if args.batch_size is not None:
        config = config.with_overrides({"batch_size": args.batch_size}, "--batch-size")
    windows = load_windows(args.windows)
    set_threads(args.threads)
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    t0 = time.perf_counter()
    with process_group(resolve_device(args.device)) as device:  # torchrun: one chunk share per rank
        job = tracking_job(args.windows, args.method, config, args.weights, args.seed)
        results = track_windows_chunked(windows, args.out, args.method, config, args.weights, device, args.seed,
                                        args.chunk_size, args.resume, progress, job)
        if results is None:  # not rank 0: rank 0 writes the output
            return 0
        save_tracking_results(args.out, results)
        remove_partial(args.out)
    seconds = time.perf_counter() - t0
    W, T, N, _ = results.boxes.shape
    iters = "" if results.elbo is None else f", {results.elbo.shape[1]} VEM iterations max"
    print(f"tracked {W} windows (T = {T}, N = {N}) with {args.method} [{args.preset}] in {seconds:.2f} s{iters}")
    print(f"wrote {args.out}")
    return 0
