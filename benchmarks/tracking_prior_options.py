"""The DVAE prior options of the tracking `default` preset, on the synthetic 3-source scenes of the
tests (64 windows, T = 60, seed 11) and on MOT17 windows (simulated detector): MOTA / IDF1 per
option, with Kalman + Hungarian and VKF for scale (docs/tracking.md). Tuning data only: MOT15 is for
reporting (mixdvae bench tracking).

    python benchmarks/tracking_prior_options.py [--mot17-windows runs/bench_windows/MOT17_T60_N3_s0.npz] [--json out.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import torch

from mixdvae.bench.tracking import _subset
from mixdvae.data.windows import load_windows
from mixdvae.metrics.mot import evaluate_windows
from mixdvae.tracking.presets import DEFAULT
from mixdvae.tracking.synthetic import synthetic_windows
from mixdvae.tracking.track import track_windows

OPTIONS = [
    ("the DVAE's own variance", dict(extra_std=0.0, predictive=False)),
    ("extra_std 0.2", dict(extra_std=0.2, predictive=False)),
    ("extra_std 0.3", dict(extra_std=0.3, predictive=False)),
    ("extra_std 0.5", dict(extra_std=0.5, predictive=False)),
    ("extra_std 0.2, predictive", dict(extra_std=0.2, predictive=True)),
    ("extra_std 0.3, predictive", dict(extra_std=0.3, predictive=True)),
    ("extra_std 0.5, predictive", dict(extra_std=0.5, predictive=True)),
    ("extra_std 0.3, predictive, two-filter smoother", dict(extra_std=0.3, predictive=True, smoother=True)),
    ("kalman, extra_std 0.3", dict(posterior="kalman", extra_std=0.3, predictive=True, kalman_acc_std=0.005)),
    ("kalman, extra_std 0.1", dict(posterior="kalman", extra_std=0.1, predictive=True, kalman_acc_std=0.005)),
    ("kalman, extra_std 0.05", dict(posterior="kalman", extra_std=0.05, predictive=True, kalman_acc_std=0.005)),
    ("kalman, extra_std 0.05, acc_std 0.02", dict(posterior="kalman", extra_std=0.05, predictive=True, kalman_acc_std=0.02)),
    ("kalman, extra_std 0.02, acc_std 0.02", dict(posterior="kalman", extra_std=0.02, predictive=True, kalman_acc_std=0.02)),
    ("kalman, extra_std 0.02 then learned, acc_std 0.02 (default)", dict(posterior="kalman", extra_std=0.02, predictive=True, kalman_acc_std=0.02, kalman_learn_noise=True)),
    ("kalman, extra_std 0.1 then learned, acc_std 0.02", dict(posterior="kalman", extra_std=0.1, predictive=True, kalman_acc_std=0.02, kalman_learn_noise=True)),
    ("kalman, extra_std 0.01, acc_std 0.02", dict(posterior="kalman", extra_std=0.01, predictive=True, kalman_acc_std=0.02)),
    ("kalman, extra_std 0.02, acc_std 0.02, not predictive", dict(posterior="kalman", extra_std=0.02, predictive=False, kalman_acc_std=0.02)),
]


def score(ws, res) -> dict:
    o = evaluate_windows(res.boxes, ws.gt, eta=res.eta, det_gt_index=ws.det_gt_index, protocol="standard").overall
    return {"MOTA": round(o["MOTA"], 1), "IDF1": round(o["IDF1"], 1), "MOTP": round(o["MOTP"], 1), "IDS": o["IDS"]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--mot17-windows", type=Path, default=Path("runs/bench_windows/MOT17_T60_N3_s0.npz"))
    p.add_argument("--max-windows", type=int, default=64)
    p.add_argument("--json", type=Path)
    args = p.parse_args()
    torch.set_num_threads(1)
    sets = {"synthetic scenes (64 w)": synthetic_windows(64, 60, sources=3, seed=11)}
    if args.mot17_windows.is_file():
        sets[f"MOT17 T=60 ({args.max_windows} w)"] = _subset(load_windows(args.mot17_windows), args.max_windows, 0)
    rows = []
    for label, opts in OPTIONS:
        base = dict(posterior="filter", kalman_acc_std=0.005, kalman_learn_noise=False)  # rows start from DEFAULT's other options
        cfg = dataclasses.replace(DEFAULT, dvae=dataclasses.replace(DEFAULT.dvae, **{**base, **opts}))
        rows.append({"row": label, **{name: score(ws, track_windows(ws, "mixdvae", cfg, seed=0)) for name, ws in sets.items()}})
    for label, method in (("(Kalman + Hungarian)", "kalman"), ("(VKF)", "vkf")):
        rows.append({"row": label, **{name: score(ws, track_windows(ws, method, DEFAULT, seed=0)) for name, ws in sets.items()}})
    names = list(sets)
    print("| DVAE prior options | " + " | ".join(f"{n} MOTA | {n} IDF1 | {n} MOTP" for n in names) + " |")
    print("|---|" + "---|---|---|" * len(names))
    for r in rows:
        print(f"| {r['row']} | " + " | ".join(f"{r[n]['MOTA']} | {r[n]['IDF1']} | {r[n]['MOTP']}" for n in names) + " |")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
