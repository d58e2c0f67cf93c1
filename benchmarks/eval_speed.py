"""Time the tracking evaluation tools on W synthetic windows (default 128 windows, T = 60, N = 3).

Usage:
    python benchmarks/eval_speed.py [--windows 128] [--length 60] [--sources 3] [--repeats 5]
                                    [--tools native,native-trackeval,motmetrics,trackeval]
                                    [--protocols standard,paper] [--json OUT.json]

Prints, per tool and protocol, the median wall time of ``evaluate_windows`` over the repeats and
its ratio to the native tool, and the overall MOTA / IDF1 / IDS, so that the tools can be seen to
agree. The windows: people on random walks (box sizes and speeds of pedestrians in pixels),
estimates jittered by 10 % of the box size with one swap of two sources in a quarter of the
windows, posteriors that follow the estimates with noise, 10 % missed detections.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import numpy as np

from mixdvae.metrics.mot import TOOLS, evaluate_windows
from mixdvae.utils.io import write_json


def synthetic_windows(W: int, T: int, N: int, seed: int = 0) -> dict[str, np.ndarray]:
    """gt, boxes (W, T, N, 4), eta (W, T, K=N, N), det_gt_index (W, T, K)."""
    rng = np.random.default_rng(seed)
    start = rng.uniform(0, 1500, (W, 1, N, 2))
    xy = start + np.cumsum(rng.normal(0, 3, (W, T, N, 2)), axis=1)  # (W, T, N, 2)
    wh = rng.uniform(40, 120, (W, 1, N, 1)) * np.array([1.0, 2.5])  # width, height
    gt = np.concatenate([xy, xy + wh], axis=-1)
    follows = np.tile(np.arange(N), (W, T, 1))  # person followed by each source
    swapped = rng.random(W) < 0.25
    at = rng.integers(1, T, W)
    for w in np.flatnonzero(swapped):
        follows[w, at[w]:, :2] = follows[w, at[w]:, 1::-1]
    boxes = np.take_along_axis(gt, follows[..., None], axis=2)
    boxes = boxes + rng.normal(0, 0.1, boxes.shape) * np.tile(wh, (1, 1, 1, 2))
    perm = np.stack([[rng.permutation(N) for _ in range(T)] for _ in range(W)])  # (W, T, K)
    source_of_person = np.argsort(follows, axis=-1)
    eta = rng.dirichlet(np.ones(N) * 0.3, (W, T, N))
    np.put_along_axis(eta, np.take_along_axis(source_of_person, perm, axis=-1)[..., None], 5.0, axis=-1)
    eta /= eta.sum(axis=-1, keepdims=True)
    missed = rng.random((W, T, N)) < 0.1
    perm[missed] = -1
    eta[missed] = np.nan
    return {"gt": gt, "boxes": boxes, "eta": eta, "det_gt_index": perm}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--windows", type=int, default=128)
    p.add_argument("--length", type=int, default=60)
    p.add_argument("--sources", type=int, default=3)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--tools", default=",".join(TOOLS))
    p.add_argument("--protocols", default="standard,paper")
    p.add_argument("--json", help="write the timings here")
    args = p.parse_args()
    data = synthetic_windows(args.windows, args.length, args.sources)
    rows = []
    print(f"{args.windows} windows, T={args.length}, N={args.sources}; median of {args.repeats} runs\n")
    print("| Tool | Protocol | median s | × native | MOTA | IDF1 | IDS |")
    print("|---|---|---|---|---|---|---|")
    for protocol in args.protocols.split(","):
        native_s = None
        for tool in args.tools.split(","):
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                scores = evaluate_windows(data["boxes"], data["gt"], eta=data["eta"],
                                          det_gt_index=data["det_gt_index"], protocol=protocol, tool=tool)
                times.append(time.perf_counter() - t0)
            median = statistics.median(times)
            native_s = median if tool == "native" else native_s
            ratio = f"{median / native_s:.0f}" if native_s else "-"
            o = scores.overall
            print(f"| {tool} | {protocol} | {median:.4f} | {ratio} | {o['MOTA']:.2f} | {o['IDF1']:.2f} "
                  f"| {o['IDS']} |")
            rows.append({"tool": tool, "protocol": protocol, "median_s": median, "times_s": times,
                         "MOTA": o["MOTA"], "IDF1": o["IDF1"], "IDS": o["IDS"]})
    if args.json:
        write_json(args.json, {"windows": args.windows, "length": args.length, "sources": args.sources,
                               "repeats": args.repeats, "machine": platform.platform(),
                               "processor": platform.processor(), "results": rows})


if __name__ == "__main__":
    main()
