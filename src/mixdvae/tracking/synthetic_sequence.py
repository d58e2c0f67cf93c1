"""A synthetic whole sequence with a known answer: people enter and leave, clutter, misses.

Person p follows a trajectory of :func:`mixdvae.data.synthetic.generate_trajectories` on a
1920 x 1080 image, but exists only on frames [start_p, stop_p): start uniform over the first
``1 - min_life`` of the sequence, a life of at least ``min_life`` of the sequence. Detections are
the true boxes plus N(0, (noise size)^2) on every edge, each missed with probability
``miss_rate``; clutter is Poisson(``clutter_per_frame``) boxes per frame, sized like a random
person and placed uniformly. Scores: 1 for true detections, U(0, 1) for clutter.
Used by the tests (tracking must recover the ids) and as a quick sanity check.
"""

from __future__ import annotations

import numpy as np

from mixdvae.data.boxes import denormalise_boxes
from mixdvae.data.mot import MotBoxes, SeqInfo
from mixdvae.data.synthetic import generate_trajectories

__all__ = ["synthetic_sequence"]


def synthetic_sequence(
    num_people: int = 8,
    length: int = 200,
    seed: int = 0,
    noise: float = 0.05,
    miss_rate: float = 0.1,
    clutter_per_frame: float = 1.0,
    min_life: float = 0.3,
    frame_rate: float = 25.0,
) -> tuple[MotBoxes, MotBoxes, SeqInfo]:
    """Ground truth, detections and seqinfo of one synthetic sequence.

    Shape: gt.boxes (G, 4), det.boxes (M, 4), pixel xyxy; frames 1-based.
    """
    rng = np.random.default_rng(seed)
    size = np.array([1920.0, 1080.0])
    info = SeqInfo(name=f"synthetic-{seed}", im_width=1920, im_height=1080, seq_length=length, frame_rate=frame_rate)
    traj = denormalise_boxes(generate_trajectories(num_people, length, seed).astype(np.float64), size)  # (P, T, 4)
    life = np.maximum(2, (rng.uniform(min_life, 1.0, num_people) * length).astype(int))
    start = (rng.random(num_people) * (length - life + 1)).astype(int)
    frames, ids, boxes = [], [], []
    for p in range(num_people):
        t = np.arange(start[p], start[p] + life[p])
        frames.append(t + 1)
        ids.append(np.full(t.size, p + 1))
        boxes.append(traj[p, t])
    g_frame, g_id, g_box = np.concatenate(frames), np.concatenate(ids), np.concatenate(boxes)
    order = np.lexsort((g_id, g_frame))
    g_frame, g_id, g_box = g_frame[order], g_id[order], g_box[order]
    m = g_frame.size
    gt = MotBoxes("synthetic-gt", g_frame, g_id, g_box, np.ones(m), np.ones(m, dtype=np.int64),
                  np.ones(m, dtype=np.int64), np.ones(m))

    wh = g_box[:, 2:] - g_box[:, :2]
    noisy = g_box + noise * np.concatenate([wh, wh], axis=1) * rng.standard_normal((m, 4))
    kept = rng.random(m) >= miss_rate
    counts = rng.poisson(clutter_per_frame, length)
    c_frame = np.repeat(np.arange(1, length + 1), counts)
    c_wh = wh[rng.integers(0, m, c_frame.size)] if m else np.full((c_frame.size, 2), 50.0)
    c_xy = rng.random((c_frame.size, 2)) * (size - c_wh)
    d_frame = np.concatenate([g_frame[kept], c_frame])
    d_box = np.concatenate([noisy[kept], np.concatenate([c_xy, c_xy + c_wh], axis=1)])
    d_conf = np.concatenate([np.ones(int(kept.sum())), rng.random(c_frame.size)])
    order = np.argsort(d_frame, kind="stable")
    det = MotBoxes("synthetic-det", d_frame[order].astype(np.int64), np.full(d_frame.size, -1, dtype=np.int64),
                   d_box[order], d_conf[order])
    return gt, det, info
