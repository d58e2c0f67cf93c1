"""A simulated pedestrian detector: detections made from ground truth, for sequences without det.txt.

Our MOT17 copy holds gt.txt but not the public SDP det.txt (data/SOURCES.md), so the MOT-NT windows
of MOT17 are built from simulated detections. Per ground-truth box b = (x1, y1, x2, y2), of width w
and height h and visibility v:

- **miss** with probability  p_miss(v) = p0 + (1 - p0) (1 - v)^γ,
  so a fully visible person is missed with probability p0 and a fully occluded one always;
- otherwise **detect** it at  b' = b + (w ε1, h ε2, w ε3, h ε4) σ,  ε ~ N(0, I), with
  σ = (σx, σy, σx, σy): Gaussian noise on every edge, its std proportional to the box width
  (x edges) or height (y edges); the width and height of b' are kept >= ``min_size`` pixels by
  moving the right/bottom edge. Its score is 1 - p_miss(v). By default ε is independent from frame
  to frame; with ``noise_corr`` = ρ > 0 it is an AR(1) process along each person's track,
  ε_t = ρ^Δ ε_{t-Δ} + sqrt(1 - ρ^(2Δ)) ν_t (Δ frames since the person's previous box, ν ~ N(0, I)),
  so its variance is unchanged and its lag-one correlation is ρ, as a real detector's errors
  persist while a person's pose and background change slowly;
- add **false positives**: Poisson(λ) per frame, each the size (w, h) of a random ground-truth box
  of that frame (of the whole sequence if the frame has none), placed uniformly inside the image,
  with a score drawn uniformly in [0, 0.5).

Only the boxes the evaluation scores are detected (:attr:`MotBoxes.considered`: flag 1 and, for
MOT16/17, class 1 = pedestrian; MOT15 has no class column, so there every flag-1 box). MOT15 has no
visibility either: v = 1 there, so p_miss = p0.

Calibration of the defaults (measured with this package on the MOT15 public ACF detections,
Hungarian matching at IoU >= 0.5 against flag-1 ground truth, seven sequences):
recall 0.49 to 0.91; edge error std 0.11 to 0.15 of the width (x1, x2) and 0.04 to 0.09 of the
height (y1, y2); 0.6 to 5.7 unmatched detections per frame; the edge errors of one person are
correlated from frame to frame (lag-one correlation 0.48 / 0.39 / 0.50 / 0.34 for x1 / y1 / x2 / y2
over the 128 MOT15 windows of T = 60 of ``mixdvae bench tracking``, 0.1 to 0.2 at lag five).
SDP, the MOT17 detector of the original MOT17-3T data, is a stronger detector than ACF, hence
smaller noise below; with the default miss model the recall over the considered MOT17 ground truth
is 0.72 (the visibility quartiles there are about 0.25 / 0.65 / 0.95).
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from mixdvae.config import check_positive
from mixdvae.data.mot import MotBoxes, SeqInfo
from mixdvae.errors import ConfigError

__all__ = ["SimulatedDetector", "ar1_along_tracks", "miss_probability", "simulate_detections"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class SimulatedDetector:
    """Parameters of the simulated detector (module docstring for the model and its calibration)."""

    miss_floor: float = 0.05
    """p0: miss probability of a fully visible person. A strong detector (SDP: AP 0.81 on MOT17Det)
    still misses some unoccluded people (small, blurred, unusual poses)."""
    miss_gamma: float = 3.0
    """γ: how fast misses rise with occlusion. γ = 3 gives p_miss 0.17 at half visibility, 0.51
    at 20 % and 1 at 0 %, and a recall of 0.72 over the considered MOT17 ground truth, inside the
    0.49 to 0.91 range measured for the MOT15 public detections."""
    noise_x: float = 0.10
    """σx: std of the x1 and x2 edges as a fraction of the box width (MOT15 ACF: 0.11 to 0.15)."""
    noise_y: float = 0.05
    """σy: std of the y1 and y2 edges as a fraction of the box height (MOT15 ACF: 0.04 to 0.09)."""
    noise_corr: float = 0.0
    """ρ: lag-one correlation of a person's edge noise from frame to frame (AR(1); MOT15 ACF: 0.34
    to 0.50). 0 by default (independent noise, the benchmark's MOT17 windows)."""
    false_positives_per_frame: float = 0.0
    """λ: mean number of false positives per frame. 0 by default: the MOT-NT window recipe keeps
    only detections matched to ground truth, so false positives would only cost matching time;
    raise it (MOT15 ACF: 0.6 to 5.7) for whole-sequence tracking with clutter."""
    min_size: float = 1.0
    """Smallest width and height of a noisy box, in pixels."""

    def __post_init__(self) -> None:
        name = type(self).__name__
        for field in ("miss_floor",):
            value = getattr(self, field)
            if not (0.0 <= value <= 1.0):
                raise ConfigError(f"{name}.{field} = {value!r}: must be in [0, 1]")
        check_positive(name, "miss_gamma", self.miss_gamma)
        check_positive(name, "noise_x", self.noise_x, allow_zero=True)
        check_positive(name, "noise_y", self.noise_y, allow_zero=True)
        if not (0.0 <= self.noise_corr < 1.0):
            raise ConfigError(f"{name}.noise_corr = {self.noise_corr!r}: must be in [0, 1)")
        check_positive(name, "false_positives_per_frame", self.false_positives_per_frame, allow_zero=True)
        check_positive(name, "min_size", self.min_size)


def miss_probability(visibility: np.ndarray, config: SimulatedDetector) -> np.ndarray:
    """p_miss(v) = p0 + (1 - p0) (1 - v)^γ; an unknown (NaN) visibility counts as v = 1.

    Shape: (M,) -> (M,).
    """
    v = np.where(np.isnan(visibility), 1.0, np.clip(visibility, 0.0, 1.0))
    return config.miss_floor + (1.0 - config.miss_floor) * (1.0 - v) ** config.miss_gamma


def ar1_along_tracks(innovations: np.ndarray, ids: np.ndarray, frames: np.ndarray, rho: float) -> np.ndarray:
    """Turn i.i.d. N(0, 1) draws into an AR(1) process along each track:
    e_t = rho^Δ e_prev + sqrt(1 - rho^(2Δ)) ν_t, Δ the frames since the track's previous box (the
    first box of a track is ν itself), so every e_t stays N(0, 1) and consecutive frames correlate
    by rho.

    Shape: innovations (M, D), ids (M,), frames (M,) -> (M, D), in the input order.
    """
    out = innovations.copy()
    order = np.lexsort((frames, ids))  # by track, then frame
    prev = None
    for i in order:
        if prev is not None and ids[prev] == ids[i]:
            a = rho ** float(frames[i] - frames[prev])
            out[i] = a * out[prev] + np.sqrt(1.0 - a * a) * innovations[i]
        prev = i
    return out


def simulate_detections(gt: MotBoxes, seqinfo: SeqInfo, config: SimulatedDetector | None = None,
                        rng: np.random.Generator | None = None) -> MotBoxes:
    """Detections (id -1, sorted by frame) simulated from the ground truth ``gt``.

    The random draws are taken in a fixed order (misses, edge noise, false-positive counts, then
    their boxes and scores), so a generator seeded the same way gives the same detections.

    Args:
        gt: ground truth as read by :func:`mixdvae.data.mot.read_gt`.
        seqinfo: the sequence's image size and length (false positives cover frames 1..seqLength).
        config: detector parameters; defaults if None.
        rng: the random generator; ``np.random.default_rng(0)`` if None.

    Shape:
        gt.boxes: (M, 4) pixel xyxy -> boxes: (D, 4) pixel xyxy, D = detected + false positives.
    """
    config = SimulatedDetector() if config is None else config
    rng = np.random.default_rng(0) if rng is None else rng
    if not gt.is_gt:
        raise ValueError(f"simulate_detections: {gt.source} holds detections, not ground truth")
    truth = gt.select(gt.considered)
    m = len(truth)

    p_miss = miss_probability(truth.visibility, config)          # (M,)
    detected = rng.random(m) >= p_miss                            # (M,)
    eps = rng.standard_normal((m, 4))                             # (M, 4) edge noise
    if config.noise_corr > 0:
        eps = ar1_along_tracks(eps, truth.id, truth.frame, config.noise_corr)
    b = truth.boxes
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    scale = np.stack([w * config.noise_x, h * config.noise_y, w * config.noise_x, h * config.noise_y], axis=1)
    noisy = b + eps * scale
    noisy[:, 2] = np.maximum(noisy[:, 2], noisy[:, 0] + config.min_size)
    noisy[:, 3] = np.maximum(noisy[:, 3], noisy[:, 1] + config.min_size)
    tp_frame, tp_boxes, tp_conf = truth.frame[detected], noisy[detected], 1.0 - p_miss[detected]

    fp_frame, fp_boxes, fp_conf = _false_positives(truth, seqinfo, config, rng)
    frame = np.concatenate([tp_frame, fp_frame])
    boxes = np.concatenate([tp_boxes, fp_boxes])
    conf = np.concatenate([tp_conf, fp_conf])
    order = np.argsort(frame, kind="stable")
    logger.debug("%s: simulated %d detections of %d boxes, %d false positives", seqinfo.name,
                 int(detected.sum()), m, fp_frame.shape[0])
    return MotBoxes(source=f"simulated:{seqinfo.name}", frame=frame[order].astype(np.int64),
                    id=np.full(frame.shape[0], -1, dtype=np.int64), boxes=boxes[order], conf=conf[order])


def _false_positives(truth: MotBoxes, seqinfo: SeqInfo, config: SimulatedDetector,
                     rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Poisson(λ) boxes per frame, sized like a random gt box of the frame, uniform in the image."""
    empty = (np.zeros(0, dtype=np.int64), np.zeros((0, 4)), np.zeros(0))
    if config.false_positives_per_frame == 0 or len(truth) == 0:
        return empty
    frames = np.arange(1, seqinfo.seq_length + 1)
    counts = rng.poisson(config.false_positives_per_frame, size=frames.shape[0])  # (L,)
    fp_frame = np.repeat(frames, counts)                                            # (F,)
    if fp_frame.size == 0:
        return empty
    # index of a random gt box of the same frame; frames without gt draw from the whole sequence
    order = np.argsort(truth.frame, kind="stable")
    sorted_frames = truth.frame[order]
    lo = np.searchsorted(sorted_frames, fp_frame, side="left")
    hi = np.searchsorted(sorted_frames, fp_frame, side="right")
    u = rng.random(fp_frame.shape[0])
    n_in_frame = hi - lo
    pick = np.where(n_in_frame > 0, lo + np.floor(u * n_in_frame).astype(np.int64),
                    np.floor(u * len(truth)).astype(np.int64))
    pick = np.minimum(pick, len(truth) - 1)
    src = truth.boxes[order[pick]]
    w, h = src[:, 2] - src[:, 0], src[:, 3] - src[:, 1]
    x1 = rng.random(fp_frame.shape[0]) * np.maximum(seqinfo.im_width - w, 0.0)
    y1 = rng.random(fp_frame.shape[0]) * np.maximum(seqinfo.im_height - h, 0.0)
    conf = 0.5 * rng.random(fp_frame.shape[0])
    return fp_frame.astype(np.int64), np.stack([x1, y1, x1 + w, y1 + h], axis=1), conf
