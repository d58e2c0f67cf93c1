"""Where the trackers lose boxes on a windows file: in the frames where an object has no good
detection (docs/tracking.md, "The MOT15 gap to VKF at T = 60: what was tried").

For each ground-truth box the best IoU with any detection of its frame says whether the frame had a
good detection (IoU >= 0.5). For each method it prints the number of ground-truth boxes no estimated
box covers at IoU >= 0.5 ("lost"), split into frames with and without a good detection, and the same
count after replacing, for each object, the matched track (Hungarian on the mean IoU over the window)
in the frames without a good detection by the linear interpolation of that track's own boxes in the
frames around them ("gap-linear"). The last line is the same interpolation of the good detections
themselves (an oracle that knows which detection is which object's).

    python benchmarks/tracking_gaps.py runs/bench_windows/MOT15_T60_N3_s0.npz [--methods mixdvae,vkf]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from mixdvae.bench.tracking import _subset
from mixdvae.data.boxes import box_iou
from mixdvae.data.windows import load_windows
from mixdvae.tracking.presets import get_preset
from mixdvae.tracking.track import track_windows


def best_iou(gt: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """max_k IoU(gt_tn, boxes_tk), 0 where a box is missing.  Shape: (W, T, N, 4), (W, T, K, 4) -> (W, T, N)"""
    iou = box_iou(gt, boxes)  # (W, T, N, K)
    return np.nan_to_num(iou, nan=0.0).max(axis=-1)


def good_detections(gt: np.ndarray, det: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per object and frame, whether a detection covers it at IoU >= 0.5, and that detection (NaN else).
    Shape: (W, T, N, 4), (W, T, K, 4) -> (W, T, N), (W, T, N, 4)"""
    iou = np.nan_to_num(box_iou(gt, det), nan=0.0)
    k = iou.argmax(axis=-1)
    good = np.take_along_axis(iou, k[..., None], -1)[..., 0] >= 0.5
    box = np.take_along_axis(det, k[..., None].repeat(4, -1), 2)
    return good, np.where(good[..., None], box, np.nan)


def interpolate_gaps(track: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Linear interpolation of ``track`` over the frames where ``keep`` is False (held constant
    beyond the first and last kept frames).  Shape: (T, 4), (T,) -> (T, 4)"""
    t = np.nonzero(keep)[0]
    if len(t) == 0:
        return track.copy()
    grid = np.arange(len(track))
    return np.stack([np.interp(grid, t, track[t, c]) for c in range(track.shape[1])], axis=-1)


def gap_linear(gt: np.ndarray, boxes: np.ndarray, good: np.ndarray) -> np.ndarray:
    """Each object's matched track, linearly interpolated over its frames without a good detection.
    Shape: (W, T, N, 4), (W, T, N, 4), (W, T, N) -> (W, T, N, 4)"""
    out = boxes.copy()
    for w in range(gt.shape[0]):
        iou = np.nan_to_num(box_iou(gt[w], boxes[w]), nan=0.0).mean(axis=0)  # (N, N)
        for i, j in zip(*linear_sum_assignment(-iou)):
            out[w, :, j] = interpolate_gaps(boxes[w, :, j], good[w, :, i])
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("windows", type=Path)
    p.add_argument("--methods", default="mixdvae,vkf")
    p.add_argument("--preset", default="default")
    p.add_argument("--max-windows", type=int, default=128)
    args = p.parse_args()
    ws = load_windows(args.windows)
    ws = _subset(ws, args.max_windows, 0)  # the benchmark's windows
    gt = ws.gt
    good, det_box = good_detections(gt, ws.det)
    print(f"{args.windows}: {len(gt)} windows, {good.size} ground-truth boxes, {int((~good).sum())} without a good detection")
    print("| method | lost | lost, good detection | lost, no good detection | lost, gap-linear |")
    print("|---|---|---|---|---|")
    for method in args.methods.split(","):
        boxes = track_windows(ws, method, get_preset(args.preset)).boxes
        lost = best_iou(gt, boxes) < 0.5
        lost_lin = best_iou(gt, gap_linear(gt, boxes, good)) < 0.5
        print(f"| {method} | {int(lost.sum())} | {int((lost & good).sum())} | {int((lost & ~good).sum())} | {int(lost_lin.sum())} |")
    oracle = np.stack([np.stack([interpolate_gaps(np.nan_to_num(det_box[w, :, i]), good[w, :, i])
                                 for i in range(gt.shape[2])], axis=1) for w in range(len(gt))])
    lost = best_iou(gt, oracle) < 0.5
    print(f"| good detections, gap-linear (oracle) | {int(lost.sum())} | {int((lost & good).sum())} | {int((lost & ~good).sum())} | - |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
