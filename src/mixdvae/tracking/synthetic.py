"""Synthetic tracking scenes with a known assignment, from the trajectory generator.

Each window holds N trajectories of :func:`mixdvae.data.synthetic.generate_trajectories` on a
1920 x 1080 image; detections are the true boxes plus Gaussian noise proportional to the box size,
some are missed, and the K = N slots of every frame are shuffled, so the index carries no identity.
Used by the tests (MixDVAE must recover the assignment) and usable as a quick sanity benchmark.
"""

from __future__ import annotations

import numpy as np

from mixdvae.data.boxes import denormalise_boxes
from mixdvae.data.synthetic import generate_trajectories
from mixdvae.data.windows import WindowSet

__all__ = ["synthetic_windows"]


def synthetic_windows(
    num_windows: int, length: int, sources: int = 3, seed: int = 0, noise: float = 0.05, miss_rate: float = 0.1
) -> WindowSet:
    """``num_windows`` scenes of ``sources`` objects over ``length`` frames.

    Detection noise: each edge gets N(0, (noise * w)^2) horizontally, N(0, (noise * h)^2)
    vertically; each detection is missed with probability ``miss_rate`` (never on frame 1).
    Shape: gt (W, T, N, 4) pixels, det (W, T, N, 4) with NaN rows, det_gt_index (W, T, N).
    """
    rng = np.random.default_rng(seed)
    size = np.array([1920.0, 1080.0])
    boxes = generate_trajectories(num_windows * sources, length, seed).astype(np.float64)
    gt = denormalise_boxes(boxes, size).reshape(num_windows, sources, length, 4).transpose(0, 2, 1, 3)
    w = gt[..., 2] - gt[..., 0]
    h = gt[..., 3] - gt[..., 1]
    scale = np.stack([w, h, w, h], axis=-1)
    det = gt + noise * scale * rng.standard_normal(gt.shape)
    missed = rng.random(gt.shape[:3]) < miss_rate
    missed[:, 0] = False
    det[missed] = np.nan
    index = np.broadcast_to(np.arange(sources), gt.shape[:3]).copy()
    index[missed] = -1
    perm = np.argsort(rng.random(gt.shape[:3]), axis=-1)  # a random slot order per frame
    det = np.take_along_axis(det, perm[..., None], axis=2)
    index = np.take_along_axis(index, perm, axis=2)
    return WindowSet(
        gt=gt,
        det=det,
        det_gt_index=index.astype(np.int64),
        sequence=np.array([f"synthetic-{i}" for i in range(num_windows)]),
        ids=np.tile(np.arange(1, sources + 1), (num_windows, 1)).astype(np.int64),
        image_size=np.tile(size, (num_windows, 1)),
        frames=np.tile([1, length], (num_windows, 1)).astype(np.int64),
        recipe={"synthetic": True, "length": length, "sources": sources, "seed": seed, "noise": noise,
                "miss_rate": miss_rate},
    )
