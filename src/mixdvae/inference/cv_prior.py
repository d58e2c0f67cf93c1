"""The VKF source prior: a constant-velocity linear-Gaussian model in place of the DVAE.

Each coordinate d of each source n follows [p_t, v_t] = A [p_{t-1}, v_{t-1}] + noise with white
acceleration noise of variance q_nd (:mod:`mixdvae.inference.lgssm`). Given the observation
messages (precision lam_tnd = sum_k r_tkn / Phi_tkd and information sum_k r_tkn o_tkd / Phi_tkd),
E-S is exact: a Kalman smoother, so with exact E-W and M steps the ELBO never falls.

Scales are relative to each source's box size (w, h, w, h) at its anchor: q = (acc_std * size)^2,
the initial position variance (init_std * size)^2 and velocity variance (vel_std * size)^2.
``gap_std`` > 0 adds the velocity jumps around gaps in the detections of the DVAE prior's
``kalman_gap_std`` (:func:`mixdvae.inference.lgssm.gap_jump_weights`); off in both presets (the
VKF baseline is the plain constant-velocity model), there to measure what that rule does without a
DVAE (docs/tracking.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from mixdvae.data.boxes import box_size
from mixdvae.dvae.heads import Gauss
from mixdvae.errors import ConfigError
from mixdvae.inference.lgssm import check_gap_options, cv_smoother, gap_jump_weights

__all__ = ["CVPriorOptions", "ConstantVelocityPrior"]


@dataclass(frozen=True)
class CVPriorOptions:
    """Relative noise scales of the constant-velocity prior (fractions of the box size)."""

    acc_std: float = 0.02
    init_std: float = 0.5
    vel_std: float = 0.2
    gap_std: float = 0.0
    gap_min_run: int = 5
    gap_min_gap: int = 1

    def __post_init__(self) -> None:
        for name in ("acc_std", "init_std", "vel_std"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"CVPriorOptions.{name} = {getattr(self, name)}: must be > 0")
        check_gap_options("CVPriorOptions", "", self.gap_std, self.gap_min_run, self.gap_min_gap)


class ConstantVelocityPrior:
    """Exact E-S for the VKF baseline.  ``anchor`` (B, N, 4) xyxy boxes set the initial mean and scales."""

    def __init__(self, anchor: Tensor, options: CVPriorOptions = CVPriorOptions()):
        self.size = box_size(anchor, 1e-3)  # (B, N, D)
        self.anchor = anchor
        self.options = options

    def with_anchor(self, anchor: Tensor) -> "ConstantVelocityPrior":
        return ConstantVelocityPrior(anchor, self.options)

    @torch.no_grad()
    def e_step(self, prec_msg: Tensor, info_msg: Tensor, q_prev: Gauss, generator=None) -> tuple[Gauss, Tensor]:
        """q(s) = p(s | messages) by Kalman smoothing, and E_q[log p(s)] - E_q[log q(s)]
        = log Z - E_q[sum_t (info_t s_t - lam_t s_t^2 / 2)] (q is the exact posterior).

        Shape: (B, T, N, D) -> Gauss (B, T, N, D), (B,)
        """
        o = self.options
        lam = prec_msg.permute(0, 2, 3, 1)  # (B, T, N, D) -> (B, N, D, T)
        info = info_msg.permute(0, 2, 3, 1)
        v_step = None
        if o.gap_std > 0:  # (B, N, D, T); float64 as in DVAESourcePrior
            v_step = gap_jump_weights(lam, o.gap_min_run, o.gap_min_gap) * (o.gap_std * self.size[..., None]) ** 2
        res = cv_smoother(lam, info, (o.acc_std * self.size) ** 2, self.anchor, (o.init_std * self.size) ** 2,
                          (o.vel_std * self.size) ** 2, v_step=v_step, float64=v_step is not None)
        m, v = res.mean_p, res.var_p
        # Centred form (exact in float32): with y = info / lam, the factor is
        # exp(-lam (p - y)^2 / 2) up to exp(info^2 / (2 lam)), which cancels between log Z and E_q.
        observed = lam > 0
        y = torch.where(observed, info / torch.where(observed, lam, torch.ones_like(lam)), torch.zeros_like(info))
        expected_factor = torch.where(observed, -0.5 * lam * ((m - y) ** 2 + v), torch.zeros_like(m)).sum(dim=(1, 2, 3))
        elbo = res.log_norm_centred.sum(dim=(1, 2)) - expected_factor
        return Gauss(m.permute(0, 3, 1, 2), v.permute(0, 3, 1, 2)), elbo
