"""The gap rule of the tracking `default` (`[tracking.dvae] kalman_gap_std`, docs/tracking.md "Gaps
crossed in a straight line") and the step-noise M-step over 5-frame increments beside it
(`kalman_noise_lag`): MOTA / MOTP (FP) of its variants and of VKF with and without the same rule
(`[tracking.cv] gap_std`) on the tuning sets (synthetic 3-source windows of seeds 11 and 12, 64 x
T = 60; MOT17 windows, simulated detector) and on MOT15 (public detections). The window files are
those of `mixdvae bench tracking --cache-dir DIR` (128 windows per set, the benchmark's subset).

    python benchmarks/tracking_gap_rule.py [--cache-dir runs/bench_windows]
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import torch

from mixdvae.bench.tracking import _subset
from mixdvae.data.windows import load_windows
from mixdvae.metrics.mot import evaluate_windows
from mixdvae.tracking.presets import DEFAULT
from mixdvae.tracking.synthetic import synthetic_windows
from mixdvae.tracking.track import track_windows

R = dataclasses.replace


def variants():
    dvae = lambda **kw: ("mixdvae", R(DEFAULT, dvae=R(DEFAULT.dvae, **kw)))  # noqa: E731
    cv = lambda **kw: ("vkf", R(DEFAULT, cv=R(DEFAULT.cv, **kw)))  # noqa: E731
    return [
        ("MixDVAE, no gap rule (stop-14 default)", dvae(kalman_gap_std=0.0, kalman_noise_lag=1)),
        ("MixDVAE, no gap rule, noise lag 5", dvae(kalman_gap_std=0.0, kalman_noise_lag=5)),
        ("MixDVAE, gap std 0.5, runs >= 5, gaps >= 1", dvae(kalman_gap_std=0.5, kalman_gap_min_gap=1, kalman_noise_lag=1)),
        ("MixDVAE, gap std 0.1, runs >= 5, gaps >= 2", dvae(kalman_gap_std=0.1, kalman_gap_min_gap=2, kalman_noise_lag=1)),
        ("MixDVAE, gap std 0.3, runs >= 5, gaps >= 2", dvae(kalman_gap_std=0.3, kalman_gap_min_gap=2, kalman_noise_lag=1)),
        ("MixDVAE, gap std 0.5, runs >= 5, gaps >= 2", dvae(kalman_gap_std=0.5, kalman_gap_min_run=5, kalman_gap_min_gap=2, kalman_noise_lag=1)),
        ("MixDVAE, gap std 0.5, runs >= 5, gaps >= 3", dvae(kalman_gap_std=0.5, kalman_gap_min_gap=3, kalman_noise_lag=1)),
        ("MixDVAE, gap std 0.5, runs >= 3, gaps >= 2", dvae(kalman_gap_std=0.5, kalman_gap_min_run=3, kalman_gap_min_gap=2, kalman_noise_lag=1)),
        ("MixDVAE, gap std 0.5, runs >= 8, gaps >= 2", dvae(kalman_gap_std=0.5, kalman_gap_min_run=8, kalman_gap_min_gap=2, kalman_noise_lag=1)),
        ("MixDVAE, gap std 0.5, runs >= 5, gaps >= 2, noise lag 2", dvae(kalman_gap_std=0.5, kalman_gap_min_gap=2, kalman_noise_lag=2)),
        ("MixDVAE, gap std 0.5, runs >= 5, gaps >= 2, noise lag 5", dvae(kalman_gap_std=0.5, kalman_gap_min_gap=2, kalman_noise_lag=5)),
        ("MixDVAE, gap std 0.5, runs >= 5, gaps >= 2, noise lag 10", dvae(kalman_gap_std=0.5, kalman_gap_min_gap=2, kalman_noise_lag=10)),
        ("VKF", cv(gap_std=0.0)),
        ("VKF, gap std 0.5, runs >= 5, gaps >= 2", cv(gap_std=0.5, gap_min_gap=2)),
    ]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cache-dir", type=Path, default=Path("runs/bench_windows"))
    args = p.parse_args()
    torch.set_num_threads(1)
    sets = {
        "synthetic seed 11": synthetic_windows(64, 60, 3, seed=11),
        "synthetic seed 12": synthetic_windows(64, 60, 3, seed=12),
    }
    for name, file in (("MOT17 T=60", "MOT17_T60_N3_s0.npz"), ("MOT17 T=120", "MOT17_T120_N3_s0.npz"),
                       ("MOT15 T=60", "MOT15_T60_N3_s0.npz"), ("MOT15 T=120", "MOT15_T120_N3_s0.npz")):
        sets[name] = _subset(load_windows(args.cache_dir / file), 128, 0)
    print("| variant | " + " | ".join(sets) + " |")
    print("|---" * (len(sets) + 1) + "|")
    for label, (method, config) in variants():
        cells = []
        for ws in sets.values():
            score = evaluate_windows(track_windows(ws, method, config).boxes, ws.gt, protocol="standard").overall
            cells.append(f"{score['MOTA']:.2f} / {score['MOTP']:.2f} ({score['FP']})")
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
