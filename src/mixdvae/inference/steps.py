"""The E and M steps of the MixDVAE variational EM, as pure elementwise functions.

Notation (SPEC.md section 1): observations o_tk with mask, sources s_tn with Gaussian posterior
q(s_tn) = N(m_tn, diag Sigma_tn), responsibilities r_tkn = q(w_tk = n), observation variance
Phi_tk (diagonal). Every covariance is diagonal, so every step is elementwise over (B, T, K, N, D).

Shapes: o (B, T, K, D), mask (B, T, K) bool, m and Sigma (B, T, N, D), Phi (B, T, K, D),
r (B, T, K, N), clutter responsibilities (B, T, K).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from mixdvae.dvae.heads import Gauss

__all__ = [
    "Responsibilities",
    "expected_log_likelihood",
    "e_step_w",
    "source_messages",
    "e_step_s",
    "m_step_obs_scale",
    "assignment_entropy",
]


class Responsibilities(NamedTuple):
    """q(w_tk = n) for the sources, ``r`` (B, T, K, N), and for the clutter class, ``clutter``
    (B, T, K); rows of missing observations are all zero."""

    r: Tensor
    clutter: Tensor


def expected_log_likelihood(o: Tensor, obs_var: Tensor, s: Gauss) -> Tensor:
    """E_q(s)[log N(o_tk; s_tn, Phi_tk)] = -1/2 sum_d [log 2 pi Phi_tkd + ((o_tkd - m_tnd)^2 + Sigma_tnd) / Phi_tkd].

    Missing observations (NaN) give NaN rows; callers mask them.
    Shape: o (B, T, K, D), obs_var (B, T, K, D), s (B, T, N, D) -> (B, T, K, N)
    """
    log_det = torch.log(2 * math.pi * obs_var).sum(-1)  # (B, T, K)
    quad = o[:, :, :, None, :] - s.mean[:, :, None, :, :]  # (B, T, K, N, D)
    quad.square_().add_(s.var[:, :, None, :, :]).div_(obs_var[:, :, :, None, :])
    return quad.sum(-1).add_(log_det[..., None]).mul_(-0.5)


def e_step_w(
    loglik: Tensor,
    mask: Tensor,
    log_prior: Tensor,
    clutter_log_prior: float | None = None,
    clutter_log_density: float = 0.0,
    temperature: float = 1.0,
) -> Responsibilities:
    """E-W: r_tkn ∝ pi_n exp(temperature * E_q log N(o_tk; s_tn, Phi_tk)), and for the clutter class
    r_tk0 ∝ pi_0 exp(temperature * log u) with u a uniform density; normalised over n (and 0) with
    log-sum-exp. ``temperature = 1`` is the exact E-step; the original code used 0.008.

    Shape: loglik (B, T, K, N), mask (B, T, K), log_prior (N,) or (B, N) -> r (B, T, K, N), clutter (B, T, K)
    """
    B, T, K, N = loglik.shape
    if log_prior.ndim == 2:  # (B, N) -> (B, 1, 1, N)
        log_prior = log_prior[:, None, None, :]
    logits = log_prior + temperature * torch.nan_to_num(loglik, nan=0.0)
    if clutter_log_prior is not None:
        clutter_logit = torch.full_like(logits[..., :1], clutter_log_prior + temperature * clutter_log_density)
        logits = torch.cat([logits, clutter_logit], dim=-1)
    probs = torch.softmax(logits, dim=-1) * mask[..., None].to(logits.dtype)
    if clutter_log_prior is not None:
        return Responsibilities(probs[..., :N], probs[..., N])
    return Responsibilities(probs, torch.zeros_like(probs[..., 0]))


def source_messages(o: Tensor, mask: Tensor, r: Tensor, obs_var: Tensor) -> tuple[Tensor, Tensor]:
    """What the observations tell each source: precision sum_k r_tkn / Phi_tk and information
    sum_k r_tkn o_tk / Phi_tk.

    Shape: o (B, T, K, D), mask (B, T, K), r (B, T, K, N), obs_var (B, T, K, D) -> (B, T, N, D) each
    """
    w = r * mask[..., None].to(r.dtype)
    inv_phi = torch.where(mask[..., None], 1.0 / obs_var, torch.zeros_like(obs_var))
    o_safe = torch.nan_to_num(o, nan=0.0)
    prec = torch.einsum("btkn,btkd->btnd", w, inv_phi)
    info = torch.einsum("btkn,btkd->btnd", w, inv_phi * o_safe)
    return prec, info


def e_step_s(prior: Gauss, prec_msg: Tensor, info_msg: Tensor) -> Gauss:
    """E-S for one time step given the prior p(s_tn) = N(mu, sigma2): a product of Gaussians,
    precision = 1/sigma2 + sum_k r_tkn / Phi_tk,
    mean = (mu / sigma2 + sum_k r_tkn o_tk / Phi_tk) / precision.

    Shape: any, elementwise (in use (B, T, N, D) or one frame (B*N, D)).
    """
    precision = 1.0 / prior.var + prec_msg
    mean = (prior.mean / prior.var + info_msg) / precision
    return Gauss(mean, 1.0 / precision)


def m_step_obs_scale(
    o: Tensor, mask: Tensor, r: Tensor, s: Gauss, box_scale: Tensor, floor: float = 1e-6, ceil: float = 1.0
) -> Tensor:
    """M-step on the relative observation variance rho_d of Phi_tkd = rho_d * scale_tkd^2:

    rho_d = sum_{t,k,n} r_tkn [(o_tkd - m_tnd)^2 + Sigma_tnd] / scale_tkd^2 / sum_{t,k,n} r_tkn,

    per window, clamped to [floor, ceil] (a window with no assigned observation keeps ``ceil``).
    Shape: o (B, T, K, D), box_scale (B, T, K, D), r (B, T, K, N), s (B, T, N, D) -> (B, D)
    """
    w = r * mask[..., None].to(r.dtype)  # (B, T, K, N)
    o_ = torch.nan_to_num(o, nan=0.0)[:, :, :, None, :]
    sq = ((o_ - s.mean[:, :, None]) ** 2 + s.var[:, :, None]) / box_scale[:, :, :, None, :] ** 2
    sq = torch.nan_to_num(sq, nan=0.0, posinf=0.0)
    num = torch.einsum("btkn,btknd->bd", w, sq)
    den = w.sum(dim=(1, 2, 3))[:, None]
    rho = torch.where(den > 0, num / den.clamp_min(1e-12), torch.full_like(num, ceil))
    return rho.clamp(floor, ceil)


def assignment_entropy(resp: Responsibilities) -> Tensor:
    """-sum_n r log r over sources and clutter, per window.  (B, T, K, N) -> (B,)"""
    def h(p: Tensor) -> Tensor:
        return -(p * torch.log(p.clamp_min(1e-30)))
    return h(resp.r).sum(dim=(1, 2, 3)) + h(resp.clutter).sum(dim=(1, 2))
