"""Seconds of the Kalman + Hungarian tracker (also MixDVAE's initialisation) on synthetic windows.

Usage:
    python benchmarks/kalman_speed.py [--windows 1024] [--length 300] [--sources 3] [--repeats 3]

Prints the median and the range of ``repeats`` runs of ``track_windows(..., "kalman")`` on one
thread (synthetic scenes of ``mixdvae.tracking.synthetic``, seed 0).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--windows", type=int, default=1024)
    p.add_argument("--length", type=int, default=300)
    p.add_argument("--sources", type=int, default=3)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    from mixdvae.tracking.synthetic import synthetic_windows
    from mixdvae.tracking.track import track_windows

    torch.set_num_threads(1)
    ws = synthetic_windows(args.windows, args.length, args.sources, seed=0)
    seconds = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        track_windows(ws, "kalman")
        seconds.append(time.perf_counter() - t0)
    print(f"kalman tracker, {args.windows} windows of T = {args.length}, N = {args.sources}: "
          f"median {np.median(seconds):.2f} s (range {min(seconds):.2f} to {max(seconds):.2f}, {args.repeats} runs)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
