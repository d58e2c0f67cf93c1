"""Kalman filter + Hungarian assignment tracker for windows with a known number of sources (SORT-like).

Each of the N tracks is a constant-velocity Kalman filter on the four box coordinates
(x1, y1, x2, y2), one independent [position, velocity] model per coordinate, as in the VKF prior
(:mod:`mixdvae.inference.lgssm`, same A and Q):

    x_t = A x_{t-1} + w_t,  A = [[1, 1], [0, 1]],  w_t ~ N(0, q [[1/3, 1/2], [1/2, 1]]),
    o_t = p_t + e_t,        e_t ~ N(0, R)

with the noise scaled by the size of the box that started the track (its width for x1, x2, its
height for y1, y2): sqrt(R) = ``obs_std`` · size, sqrt(q) = ``accel_std`` · size, and the
initial state N([o, 0], diag(R, (``init_velocity_std`` · size)^2)). Per frame:

1. predict every started track;
2. assign the frame's valid detections to started tracks by a minimum-cost matching (every
   window at once by enumerating the matchings where there are at most ``_MAX_MATCHINGS`` of them,
   e.g. 6 for 3 tracks and 3 detections; else ``scipy.optimize.linear_sum_assignment`` per window)
   on a cost (``mahalanobis``: the negative log-likelihood sum_d (o_d - m_d)^2 / S_d + log S_d with
   S = P_pp + R the innovation variance, gated by sum_d (o_d - m_d)^2 / S_d <= ``gate``;
   ``iou``: 1 - IoU(predicted box, detection), gated by IoU >= ``min_iou``). A gated pair is never
   matched; an unmatched track coasts on its prediction;
3. update the matched tracks;
4. start tracks: while fewer than N tracks exist, unmatched detections start new ones, the detection
   overlapping the existing tracks least first (ties, e.g. on the first frame: by x1, then y1, x2, y2).

The detection index is never used as identity: the labelling of the tracks is a function of the set
of boxes in each frame, so shuffling detections within frames changes nothing but the rows of
``assign``. Compare roboflow/trackers ``trackers/core/sort`` (we cite, never copy), which also
deletes and creates tracks; here N is known, so tracks live for the whole window.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from mixdvae.config import check_positive
from mixdvae.data.boxes import box_iou
from mixdvae.errors import ConfigError

__all__ = ["KalmanTrackerConfig", "KalmanResult", "kalman_track", "min_cost_matchings"]

logger = logging.getLogger(__name__)

_FORBIDDEN = 1e12  # cost of a gated pair, far above any admissible cost
_MAX_MATCHINGS = 720  # enumerate matchings of all windows at once up to this many (6! = 720)


def min_cost_matchings(cost: np.ndarray, ok: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per window, the matching of min(N, K) (track, detection) pairs that uses the fewest gated
    pairs and, among those, has the least total cost: what ``linear_sum_assignment`` returns on
    ``where(ok, cost, _FORBIDDEN)``, computed for all windows at once by enumerating the
    P = max(N, K)! / |N - K|! matchings when P <= ``_MAX_MATCHINGS`` (one scipy call per window
    otherwise). Gated pairs are kept in the output; the caller drops them.

    Shape: cost, ok (W, N, K) -> window, track, detection indices (M,) each
    """
    from itertools import permutations

    W, N, K = cost.shape
    if W == 0 or N == 0 or K == 0:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty
    size = min(N, K)
    P = int(np.prod(np.arange(max(N, K) - size + 1, max(N, K) + 1)))
    if P > _MAX_MATCHINGS:
        forced = np.where(ok, cost, _FORBIDDEN)
        rows_cols = [linear_sum_assignment(forced[w]) for w in range(W)]
        window = np.concatenate([np.full(len(r), w, dtype=np.int64) for w, (r, _) in enumerate(rows_cols)])
        return window, np.concatenate([r for r, _ in rows_cols]), np.concatenate([c for _, c in rows_cols])
    if N <= K:  # each option gives a distinct detection to every track
        tracks = np.broadcast_to(np.arange(N), (P, N))
        dets = np.array(list(permutations(range(K), N)), dtype=np.int64)
    else:  # each option gives a distinct track to every detection
        dets = np.broadcast_to(np.arange(K), (P, K))
        tracks = np.array(list(permutations(range(N), K)), dtype=np.int64)
    gated = (~ok[:, tracks, dets]).sum(-1)  # (W, P)
    total = np.where(ok[:, tracks, dets], cost[:, tracks, dets], 0.0).sum(-1)  # (W, P)
    total = np.where(gated == gated.min(axis=1, keepdims=True), total, np.inf)
    best = np.argmin(total, axis=1)  # (W,)
    window = np.repeat(np.arange(W), size)
    return window, tracks[best].reshape(-1), dets[best].reshape(-1)


@dataclass(frozen=True)
class KalmanTrackerConfig:
    """Noise levels (relative to box size) and gating of :func:`kalman_track`.

    The defaults were chosen on MOT-NT windows (T = 60, N = 3, stride 60, 5 subsets per window) of
    MOT17 train with the simulated detector (316 windows) and of MOT15 train with its det.txt
    (75 windows): fraction of detections whose track agrees with the truth up to one permutation per
    window, 0.996 and 0.983 (``cost = "iou"``: 0.993 and 0.985). Real detections are noisier than a
    Gaussian of 0.04-0.05 box sizes, and a tight gate (the 99.9 % chi2 quantile, 18.5, with
    obs_std = 0.05) lost tracks for good: 0.70 and 0.87.

    Attributes:
        obs_std: detection noise std per coordinate, as a fraction of the box width (x) or height (y).
            The reference VEM uses 0.04 (reference-implementation.md section 4: Phi = (0.04 w)^2).
        accel_std: std of the per-frame acceleration of each coordinate, same units.
        init_velocity_std: prior std of the initial velocity per coordinate (fraction of the size
            per frame; pedestrians at 14-30 fps move about 0.05-0.2 widths per frame).
        cost: ``mahalanobis`` (the gate widens by itself while a track coasts, so a track that missed
            a few detections is found again) or ``iou`` (SORT's 1 - IoU).
        gate: for ``cost = "mahalanobis"``: pairs with sum_d (o_d - m_d)^2 / S_d above it are never
            matched. Loose on purpose: with N known and every detection from a source, gating only
            loses matches; 100 still rejects a box several sizes away from every prediction.
        min_iou: for ``cost = "iou"``: pairs with a lower IoU are never matched (SORT uses 0.3). It must
            be > 0: non-overlapping pairs all cost 1, and such ties would make the result depend on
            the detection order.
    """

    obs_std: float = 0.1
    accel_std: float = 0.02
    init_velocity_std: float = 0.1
    cost: Literal["mahalanobis", "iou"] = "mahalanobis"
    gate: float = 100.0
    min_iou: float = 0.1

    def __post_init__(self) -> None:
        for name in ("obs_std", "accel_std", "init_velocity_std", "gate"):
            check_positive("KalmanTrackerConfig", name, getattr(self, name))
        if self.cost not in ("mahalanobis", "iou"):
            raise ConfigError(f"KalmanTrackerConfig.cost = {self.cost!r}: expected 'mahalanobis' or 'iou'")
        if not 0.0 < self.min_iou <= 1.0:
            raise ConfigError(f"KalmanTrackerConfig.min_iou = {self.min_iou!r}: must be in (0, 1]")


class KalmanResult(NamedTuple):
    """Output of :func:`kalman_track`.

    Attributes:
        boxes: filtered box of each track (x1, y1, x2, y2), never NaN: the prediction on frames without
            a matched detection, the first estimate on frames before a late-starting track began,
            and the mean valid detection of the window for a track that never started.
        assign: one-hot assignment of detection k to track n; all-zero rows for missing detections and
            for detections no track took (gated out, or more detections than tracks).

    Shape:
        boxes: (W, T, N, 4); assign: (W, T, K, N).
    """

    boxes: Tensor
    assign: Tensor


def _as_numpy(det: np.ndarray | Tensor) -> np.ndarray:
    if isinstance(det, torch.Tensor):
        return det.detach().cpu().to(torch.float64).numpy()
    return np.asarray(det, dtype=np.float64)


def _check_det(det: np.ndarray) -> np.ndarray:
    """Shape (W, T, K, 4), rows all-NaN or all-finite, x2 > x1 and y2 > y1. Returns valid (W, T, K)."""
    if det.ndim != 4 or det.shape[-1] != 4:
        raise ValueError(f"kalman_track: det should be (W, T, K, 4) xyxy boxes, got shape {det.shape}")
    nan = np.isnan(det)
    valid = ~nan.any(-1)
    bad = nan.any(-1) & ~nan.all(-1)
    if bad.any():
        w, t, k = np.argwhere(bad)[0]
        raise ValueError(f"kalman_track: det[{w}, {t}, {k}] = {det[w, t, k]} is partly NaN (a missing box is all NaN)")
    if np.isinf(det).any():
        w, t, k = np.argwhere(np.isinf(det).any(-1))[0]
        raise ValueError(f"kalman_track: det[{w}, {t}, {k}] = {det[w, t, k]} is infinite")
    flat = np.where(valid[..., None], det, [0.0, 0.0, 1.0, 1.0])
    inverted = (flat[..., 2] <= flat[..., 0]) | (flat[..., 3] <= flat[..., 1])
    if inverted.any():
        w, t, k = np.argwhere(inverted)[0]
        raise ValueError(f"kalman_track: det[{w}, {t}, {k}] = {det[w, t, k]} needs x2 > x1 and y2 > y1 (xyxy)")
    return valid


def _pair_cost(cfg: KalmanTrackerConfig, mean: np.ndarray, var_p: np.ndarray, r: np.ndarray,
               obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Cost and admissibility of every (track, detection) pair.

    Shape:
        mean, var_p, r: (W, N, 4) predicted position, its variance, detection variance;
        obs: (W, K, 4) -> cost, admissible: (W, N, K).
    """
    if cfg.cost == "iou":
        iou = np.nan_to_num(box_iou(mean, obs), nan=0.0)  # (W, N, K); NaN = missing detection
        return 1.0 - iou, iou >= cfg.min_iou
    s = (var_p + r)[:, :, None, :]  # (W, N, 1, 4) innovation variance
    d2 = ((obs[:, None, :, :] - mean[:, :, None, :]) ** 2 / s).sum(-1)  # (W, N, K)
    d2 = np.nan_to_num(d2, nan=np.inf)
    return d2 + np.log(s).sum(-1), d2 <= cfg.gate


def kalman_track(det: np.ndarray | Tensor, num_sources: int, config: KalmanTrackerConfig | None = None,
                 device: str | torch.device = "cpu") -> KalmanResult:
    """Track N = ``num_sources`` objects through each window with Kalman filters and Hungarian assignment.

    Args:
        det: detection boxes (x1, y1, x2, y2) in any units (normalised in MixDVAE), an all-NaN row for
            a missing detection. The index k is treated as an arbitrary order within the frame.
        num_sources: N, the known number of objects in every window.
        config: noise levels and gate (:class:`KalmanTrackerConfig`).
        device: where the result tensors go.

    Returns:
        :class:`KalmanResult`, in the dtype of ``det`` if it is a floating torch tensor, else float32.

    Raises:
        ValueError: wrong shape, a partly NaN or infinite row, or a box with x2 <= x1 or y2 <= y1.

    Shape:
        det: (W, T, K, 4) -> boxes: (W, T, N, 4), assign: (W, T, K, N).
    """
    cfg = config or KalmanTrackerConfig()
    if isinstance(num_sources, bool) or not isinstance(num_sources, (int, np.integer)) or num_sources < 1:
        raise ValueError(f"kalman_track: num_sources = {num_sources!r}, expected an integer >= 1")
    out_dtype = det.dtype if isinstance(det, torch.Tensor) and det.is_floating_point() else torch.float32
    obs_all = _as_numpy(det)
    valid_all = _check_det(obs_all)
    W, T, K, _ = obs_all.shape
    N = int(num_sources)

    # Kalman state per (window, track, coordinate): mean [p, v], covariance entries (pp, pv, vv).
    p, v, pp, pv, vv = (np.zeros((W, N, 4)) for _ in range(5))
    r = np.ones((W, N, 4))  # detection variance R
    q = np.zeros((W, N, 4))  # acceleration variance
    started = np.zeros((W, N), dtype=bool)
    boxes = np.full((W, T, N, 4), np.nan)
    assign = np.zeros((W, T, K, N))

    for t in range(T):
        # 1. predict: m <- A m, P <- A P A^T + Q (the algebra of lgssm._predict, in numpy)
        if t > 0:
            p = p + v
            pp = pp + 2.0 * pv + vv + q / 3.0
            pv = pv + vv + q / 2.0
            vv = vv + q
        obs = obs_all[:, t]  # (W, K, 4)
        valid = valid_all[:, t]  # (W, K)

        # 2. assign detections to started tracks, one Hungarian problem per window
        cost, ok = _pair_cost(cfg, p, pp, r, obs)
        ok &= started[:, :, None] & valid[:, None, :]
        active = np.flatnonzero(ok.any(axis=(1, 2)))
        pw, pn, pk = min_cost_matchings(cost[active], ok[active])
        pw = active[pw]
        keep = ok[pw, pn, pk]  # drop gated pairs the solver had to use
        pw, pn, pk = pw[keep], pn[keep], pk[keep]
        assign[pw, t, pk, pn] = 1.0
        lam = np.zeros((W, N, 1))  # 1 for matched tracks, 0 otherwise
        lam[pw, pn] = 1.0
        matched_obs = np.zeros((W, N, 4))
        matched_obs[pw, pn] = obs[pw, pk]
        free_det = valid.copy()
        free_det[pw, pk] = False

        # 3. update matched tracks: condition N(m, P) on o = p + e, e ~ N(0, R) (lam = 0: unchanged)
        lam_r = lam / r
        s = 1.0 + lam_r * pp
        resid = lam_r * (matched_obs - p)
        gain_p, gain_v = pp / s, pv / s
        p, v = p + gain_p * resid, v + gain_v * resid
        vv = vv - pv * gain_v * lam_r
        pp, pv = gain_p, gain_v

        # 4. start tracks from unmatched detections while slots are free
        for w in np.flatnonzero(free_det.any(axis=1) & ~started.all(axis=1)):
            cand = np.flatnonzero(free_det[w])
            if started[w].any():
                overlap = np.nan_to_num(box_iou(obs[w, cand], p[w, started[w]]), nan=0.0).max(axis=1)
            else:
                overlap = np.zeros(len(cand))
            box = obs[w, cand]
            order = np.lexsort((box[:, 3], box[:, 2], box[:, 1], box[:, 0], overlap))
            slots = np.flatnonzero(~started[w])
            for n, k in zip(slots, cand[order]):
                size = obs[w, k, [2, 3, 2, 3]] - obs[w, k, [0, 1, 0, 1]]  # (w, h, w, h)
                r[w, n] = (cfg.obs_std * size) ** 2
                q[w, n] = (cfg.accel_std * size) ** 2
                p[w, n], v[w, n] = obs[w, k], 0.0
                pp[w, n], pv[w, n], vv[w, n] = r[w, n], 0.0, (cfg.init_velocity_std * size) ** 2
                started[w, n] = True
                assign[w, t, k, n] = 1.0
        boxes[:, t] = np.where(started[:, :, None], p, np.nan)

    # frames before a late start take the first estimate; a track that never started takes the mean
    for t in range(T - 2, -1, -1):
        boxes[:, t] = np.where(np.isnan(boxes[:, t]), boxes[:, t + 1], boxes[:, t])
    never = ~started
    if never.any():
        logger.warning("kalman_track: %d track(s) in %d window(s) never received a detection",
                       int(never.sum()), int(never.any(axis=1).sum()))
        total = np.where(valid_all[..., None], obs_all, 0.0).sum(axis=(1, 2))  # (W, 4)
        count = valid_all.sum(axis=(1, 2))[:, None]  # (W, 1); a window without detections gets zeros
        fill = total / np.maximum(count, 1)
        boxes = np.where(never[:, None, :, None], fill[:, None, None, :], boxes)
    return KalmanResult(boxes=torch.as_tensor(boxes, dtype=out_dtype, device=device),
                        assign=torch.as_tensor(assign, dtype=out_dtype, device=device))
