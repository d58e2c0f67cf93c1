"""Box observation model: o_tk | w_tk = n ~ N(s_tn, Phi_tk), Phi_tk = diag(rho_d * scale_tkd^2).

``scale`` is the box size (w, h, w, h) the noise is proportional to: by default the size of the
detection itself; the ``reference`` preset uses the size of observation k at the first frame, with
rho = 0.04^2 fixed (reference section 4.3). The M-step re-estimates rho per window and coordinate
(:func:`mixdvae.inference.steps.m_step_obs_scale`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from mixdvae.data.boxes import box_size
from mixdvae.dvae.heads import Gauss
from mixdvae.inference.steps import m_step_obs_scale

__all__ = ["BoxObservationModel", "box_scale"]


def box_scale(o: Tensor, mask: Tensor, min_size: float = 1e-3) -> Tensor:
    """(w, h, w, h) of every detection, floored at ``min_size``; 1 where the detection is missing.

    Shape: o (B, T, K, 4) xyxy -> (B, T, K, 4)
    """
    scale = box_size(o, min_size)
    return torch.where(mask[..., None], scale, torch.ones_like(scale))


@dataclass(frozen=True)
class BoxObservationModel:
    """Phi_tk = rho (per window and coordinate, (B, 4)) times scale_tk^2 ((B, T, K, 4))."""

    scale: Tensor
    rho: Tensor
    learn: bool = True
    rho_floor: float = 1e-5
    rho_ceil: float = 0.25

    def obs_var(self) -> Tensor:
        return self.rho[:, None, None, :] * self.scale ** 2

    def m_step(self, o: Tensor, mask: Tensor, r: Tensor, s: Gauss) -> "BoxObservationModel":
        if not self.learn:
            return self
        rho = m_step_obs_scale(o, mask, r, s, self.scale, self.rho_floor, self.rho_ceil)
        return BoxObservationModel(self.scale, rho, self.learn, self.rho_floor, self.rho_ceil)
