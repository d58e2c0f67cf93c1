"""``mixdvae track W.npz``: track the windows of a windows file with a known number of sources."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from mixdvae.config import load_config_file
from mixdvae.data.windows import load_windows
from mixdvae.tracking.presets import PRESETS, get_preset
from mixdvae.tracking.results import save_tracking_results
from mixdvae.tracking.track import METHODS, track_windows
from mixdvae.utils.device import resolve_device

__all__ = ["add_parser", "run_track"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "track",
        help="Track windows (mixdvae data windows) with MixDVAE or a baseline.",
        description="Estimate the N source boxes of every window from its detections alone. Writes the "
        "boxes (W, T, N, 4) in pixels, the assignment posteriors (W, T, K, N) and the ELBO history.",
    )
    p.add_argument("windows", type=Path, help="windows file (.npz from 'mixdvae data windows')")
    p.add_argument("--out", "-o", type=Path, required=True, help="results file (.npz)")
    p.add_argument("--method", choices=METHODS, default="mixdvae")
    p.add_argument("--preset", choices=sorted(PRESETS), default="default")
    p.add_argument("--weights", type=Path, default=None, help="prior checkpoint (.safetensors, or an original .pt)")
    p.add_argument("--config", type=Path, default=None, help="TOML/JSON [tracking] table overriding the preset")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: when stderr is a terminal)")
    p.set_defaults(func=run_track)


def run_track(args: argparse.Namespace) -> int:
    config = get_preset(args.preset)
    if args.config is not None:
        data = load_config_file(args.config)
        config = config.with_overrides(data.get("tracking", data), str(args.config))
    windows = load_windows(args.windows)
    device = resolve_device(args.device)
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    t0 = time.perf_counter()
    results = track_windows(windows, args.method, config, args.weights, device, args.seed, progress)
    seconds = time.perf_counter() - t0
    save_tracking_results(args.out, results)
    W, T, N, _ = results.boxes.shape
    iters = "" if results.elbo is None else f", {results.elbo.shape[1]} VEM iterations max"
    print(f"tracked {W} windows (T = {T}, N = {N}) with {args.method} [{args.preset}] in {seconds:.2f} s{iters}")
    print(f"wrote {args.out}")
    return 0
