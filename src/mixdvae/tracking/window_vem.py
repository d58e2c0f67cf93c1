"""The VEM of one window of a whole sequence: sources that are born and die, clutter, context.

Model of one window of T frames (frames [a - C, a + L): C context frames already tracked, then
the L new ones) with N candidate sources (tracks alive at frame a plus birth proposals):

- **p(w) with birth, death and clutter.** Each detection o_tk comes from clutter (w = 0,
  uniform density u over normalised boxes, prior pi_0) or from one of the sources that exist at
  frame t (existence e_tn in {0, 1}: from the source's birth frame on, until its death):

      p(w_tk = 0) = pi_0,   p(w_tk = n) = (1 - pi_0) e_tn / N_t,   N_t = sum_n e_tn.

  A source that exists but explains no detection at frame t is in the **missed-detection state**
  (its q(s_tn) is its prior prediction). The E-W step is the engine's
  (:func:`mixdvae.inference.steps.e_step_w`) with log e_tn / N_t added to the logits.
- **Identity across windows.** In the C context frames the detections are not re-explained:
  the previous window's posterior q(s_tn) = N(m, V) of each carried source enters E-S as a
  Gaussian message (precision 1 / V, information m / V), so the prior (DVAE or constant
  velocity) continues each carried track's motion from its own history.
- E-S/E-Z (the source prior: :class:`~mixdvae.inference.dvae_prior.DVAESourcePrior` or
  :class:`~mixdvae.inference.cv_prior.ConstantVelocityPrior`) and M
  (:class:`~mixdvae.tracking.observation.BoxObservationModel`) are the engine's, unchanged.

The loop mirrors :func:`mixdvae.inference.vem.run_vem` (which has no time-varying p(w) and no
context messages; it is not modified here) and stops when no responsibility moved by more than
``tol`` between two iterations.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

from mixdvae.dvae.heads import Gauss
from mixdvae.errors import NumericalError
from mixdvae.inference.steps import Responsibilities, e_step_w, expected_log_likelihood, source_messages

__all__ = ["WindowVEMResult", "existence_log_prior", "window_vem"]

_LOG_ZERO = -1e4  # log of a probability that is zero (finite, so softmax stays defined)


class WindowVEMResult(NamedTuple):
    """q(s) (B, T, N, D), responsibilities (r (B, T, K, N), clutter (B, T, K)), iterations run."""

    sources: Gauss
    resp: Responsibilities
    iterations: int


def existence_log_prior(exist: Tensor) -> Tensor:
    """log [e_tn / N_t] with N_t = sum_n e_tn (the share of source n in p(w_tk != 0)).

    Shape: exist (B, T, N) bool -> (B, T, 1, N), broadcast over the K detections.
    """
    e = exist.to(torch.float32)
    count = e.sum(-1, keepdim=True).clamp_min(1.0)
    return torch.where(exist, -torch.log(count), torch.full_like(e, _LOG_ZERO))[:, :, None, :]


def window_vem(
    o: Tensor,
    mask: Tensor,
    exist: Tensor,
    prior,
    obs_model,
    init: Gauss,
    context: Gauss | None,
    clutter_prob: float,
    clutter_log_density: float = 0.0,
    iterations: int = 8,
    tol: float = 1e-3,
    generator: torch.Generator | None = None,
) -> WindowVEMResult:
    """Alternate E-W (with existence and clutter), E-S/E-Z (with context messages) and M.

    Args:
        o, mask: detections of the window in model coordinates, NaN / False where absent
            (context frames have no detection).
        exist: e_tn, whether source n exists at frame t.
        prior: a source prior with ``e_step(prec, info, q_prev, generator)``.
        obs_model: an observation model with ``obs_var()`` and ``m_step``.
        init: initial q(s).
        context: previous posterior N(m, V) of the carried sources on the context frames, with
            V = inf (or m NaN) where there is no message.
        clutter_prob: pi_0.

    Shape: o (B, T, K, D), mask (B, T, K), exist (B, T, N), init and context (B, T, N, D)
        -> sources (B, T, N, D), r (B, T, K, N), clutter (B, T, K)
    """
    B, T, N, D = init.mean.shape
    log_pi0 = math.log(clutter_prob)
    log_prior = torch.full((N,), math.log1p(-clutter_prob), dtype=o.dtype, device=o.device)
    log_exist = existence_log_prior(exist).to(o.dtype)
    ctx_prec = ctx_info = None
    if context is not None:
        has = torch.isfinite(context.mean) & torch.isfinite(context.var) & (context.var > 0)
        ctx_prec = torch.where(has, 1.0 / torch.where(has, context.var, torch.ones_like(context.var)), torch.zeros_like(context.var))
        ctx_info = ctx_prec * torch.nan_to_num(context.mean, nan=0.0)
    q_s = init
    r_prev = None
    it = 0
    for it in range(1, iterations + 1):
        ll = expected_log_likelihood(o, obs_model.obs_var(), q_s) + log_exist
        resp = e_step_w(ll, mask, log_prior, log_pi0, clutter_log_density, 1.0)
        prec, info = source_messages(o, mask, resp.r, obs_model.obs_var())
        if ctx_prec is not None:
            prec, info = prec + ctx_prec, info + ctx_info
        q_s, _ = prior.e_step(prec, info, q_s, generator)
        if not torch.isfinite(q_s.mean).all():
            raise NumericalError(f"window VEM iteration {it}: the source means became non-finite")
        obs_model = obs_model.m_step(o, mask, resp.r, q_s)
        if r_prev is not None and (resp.r - r_prev).abs().max().item() < tol:
            break
        r_prev = resp.r
    ll = expected_log_likelihood(o, obs_model.obs_var(), q_s) + log_exist
    resp = e_step_w(ll, mask, log_prior, log_pi0, clutter_log_density, 1.0)
    return WindowVEMResult(q_s, resp, it)
