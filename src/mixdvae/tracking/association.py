"""Constant-velocity Kalman filters on boxes and gated Hungarian association, for whole sequences.

Every track carries, per box coordinate d (x1, y1, x2, y2), a Gaussian on [position, velocity]
(the model of :mod:`mixdvae.baselines.kalman` and of the VKF prior, same A and Q):

    x_t = A x_{t-1} + w_t,  A = [[1, 1], [0, 1]],  w_t ~ N(0, q [[1/3, 1/2], [1/2, 1]]),
    o_t = p_t + e_t,        e_t ~ N(0, R),

with sqrt(R) = ``obs_std`` x size and sqrt(q) = ``accel_std`` x size, size the track's current
(w, h, w, h). The state of N tracks is a struct of arrays (``p, v, pp, pv, vv``, each (N, 4)).

Association (:func:`associate`) solves one assignment problem per frame on the negative
log-likelihood cost d2 + sum_d log S_d, d2 = sum_d (o_d - m_d)^2 / S_d (S = P_pp + R), with pairs
above the ``gate`` on d2 forbidden. Compare roboflow/trackers ``trackers/core/sort`` (IoU cost);
we cite, never copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy.optimize import linear_sum_assignment

from mixdvae.config import check_positive
from mixdvae.data.boxes import box_iou, box_size
from mixdvae.errors import ConfigError

__all__ = ["AssociationConfig", "BoxFilter", "MIN_SIZE", "start_filter", "predict", "update", "association_cost", "associate"]

_FORBIDDEN = 1e12


@dataclass(frozen=True)
class AssociationConfig:
    """Noise scales (fractions of the box size) and gate of the Kalman association.

    Attributes:
        obs_std: detection noise per coordinate (MOT15 ACF edges: 0.04 to 0.15 of the size,
            mixdvae.data.detector).
        accel_std: per-frame acceleration std of each coordinate.
        init_velocity_std: prior std of a new track's velocity, per frame.
        gate: pairs with Mahalanobis d2 above this are never associated (chi2 with 4 degrees of
            freedom: 99.9 % at 18.5; looser, as real detections have heavier tails).
        min_iou: pairs whose IoU (predicted box, detection) is below this are never associated.
    """

    obs_std: float = 0.1
    accel_std: float = 0.02
    init_velocity_std: float = 0.1
    gate: float = 40.0
    min_iou: float = 0.1

    def __post_init__(self) -> None:
        for name in ("obs_std", "accel_std", "init_velocity_std", "gate"):
            check_positive("AssociationConfig", name, getattr(self, name))
        if not 0.0 <= self.min_iou < 1.0:
            raise ConfigError(f"AssociationConfig.min_iou = {self.min_iou}: must be in [0, 1)")


class BoxFilter(NamedTuple):
    """Kalman state of N tracks: mean [p, v] and covariance entries (pp, pv, vv) per coordinate.

    Shape: each (N, 4).
    """

    p: np.ndarray
    v: np.ndarray
    pp: np.ndarray
    pv: np.ndarray
    vv: np.ndarray

    def take(self, index) -> "BoxFilter":
        return BoxFilter(*(a[index] for a in self))

    @staticmethod
    def stack(filters: "list[BoxFilter]") -> "BoxFilter":
        if not filters:
            return BoxFilter(*(np.zeros((0, 4)) for _ in range(5)))
        return BoxFilter(*(np.concatenate(parts) for parts in zip(*filters)))


MIN_SIZE = 1e-3
"""Floor on box widths and heights (normalised units) wherever they scale a variance."""


def start_filter(boxes: np.ndarray, config: AssociationConfig) -> BoxFilter:
    """New tracks at detections: N([o, 0], diag(R, (init_velocity_std size)^2)).  (N, 4) -> BoxFilter."""
    size = box_size(boxes, MIN_SIZE)
    z = np.zeros_like(boxes)
    return BoxFilter(boxes.copy(), z, (config.obs_std * size) ** 2, z.copy(), (config.init_velocity_std * size) ** 2)


def predict(f: BoxFilter, config: AssociationConfig) -> BoxFilter:
    """m <- A m, P <- A P A^T + Q with q = (accel_std size)^2."""
    q = (config.accel_std * box_size(f.p, MIN_SIZE)) ** 2
    return BoxFilter(f.p + f.v, f.v, f.pp + 2.0 * f.pv + f.vv + q / 3.0, f.pv + f.vv + q / 2.0, f.vv + q)


def update(f: BoxFilter, obs: np.ndarray, observed: np.ndarray, config: AssociationConfig) -> BoxFilter:
    """Condition on o = p + e, e ~ N(0, R) where ``observed``; unchanged elsewhere.

    Shape: obs (N, 4) (anything where not observed), observed (N,) bool.
    """
    lam = observed.astype(np.float64)[:, None] / (config.obs_std * box_size(f.p, MIN_SIZE)) ** 2  # (N, 4): 1/R or 0
    s = 1.0 + lam * f.pp
    resid = lam * (np.where(observed[:, None], obs, f.p) - f.p)
    gain_p, gain_v = f.pp / s, f.pv / s
    return BoxFilter(f.p + gain_p * resid, f.v + gain_v * resid, gain_p, gain_v, f.vv - f.pv * gain_v * lam)


def association_cost(f: BoxFilter, det: np.ndarray, config: AssociationConfig) -> tuple[np.ndarray, np.ndarray]:
    """Cost d2 + sum_d log S_d and Mahalanobis d2 of every (track, detection) pair.

    Shape: f (N, 4) each, det (K, 4) -> cost, d2: (N, K)
    """
    s = (f.pp + (config.obs_std * box_size(f.p, MIN_SIZE)) ** 2)[:, None, :]  # (N, 1, 4) innovation variance
    d2 = ((det[None, :, :] - f.p[:, None, :]) ** 2 / s).sum(-1)  # (N, K)
    return d2 + np.log(s).sum(-1), d2


def associate(f: BoxFilter, det: np.ndarray, config: AssociationConfig, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Gated minimum-cost one-to-one assignment of detections to tracks.

    ``allowed`` (N,) bool excludes tracks (e.g. dead ones). Returns matched (track, detection)
    index arrays.  Shape: det (K, 4) -> (M,), (M,)
    """
    N, K = f.p.shape[0], det.shape[0]
    if N == 0 or K == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    cost, d2 = association_cost(f, det, config)
    ok = d2 <= config.gate
    if config.min_iou > 0:
        ok &= np.nan_to_num(box_iou(f.p, det), nan=0.0) >= config.min_iou
    if allowed is not None:
        ok &= allowed[:, None]
    if not ok.any():
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    rows, cols = linear_sum_assignment(np.where(ok, cost, _FORBIDDEN))
    keep = ok[rows, cols]
    return rows[keep].astype(np.int64), cols[keep].astype(np.int64)
