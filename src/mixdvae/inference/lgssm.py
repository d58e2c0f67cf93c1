"""Constant-velocity linear-Gaussian state-space model, one box coordinate at a time (VKF prior).

Every covariance in MixDVAE is diagonal across the 4 box coordinates, so each coordinate d of each
source n of each window b is an independent two-state model x_t = [p_t, v_t] (position, velocity):

    x_1 ~ N([mu0, 0], diag(var0_p, var0_v))
    x_t = A x_{t-1} + w_t,   A = [[1, 1], [0, 1]],   w_t ~ N(0, Q),   Q = q [[1/3, 1/2], [1/2, 1]]

Q is the continuous white-noise-acceleration model integrated over one frame (dt = 1): the
acceleration is white noise of spectral density q, so q is the per-frame acceleration variance of
the coordinate (Bar-Shalom, Li and Kirubarajan 2001, section 6.2.2).

The data enter through one Gaussian factor in p_t per frame, given in information form:

    g_t(p_t) = exp(info_t p_t - lam_t p_t^2 / 2)

i.e. a pseudo-observation y_t = info_t / lam_t of p_t with variance R_t = 1 / lam_t. A frame with no
information has lam_t = info_t = 0 (R_t = +inf), which needs no special case. In the VEM E-S step,
lam_t = sum_k r_tkn / Phi_tk and info_t = sum_k r_tkn o_tk / Phi_tk (SPEC section 1).

:func:`cv_smoother` runs the Kalman filter (:func:`_predict`, :func:`_condition_on`) and the
Rauch-Tung-Striebel smoother (:func:`_smooth_step`) with closed-form 2x2 algebra on the three
unique entries (pp, pv, vv) of each symmetric covariance: everything is elementwise over the batch,
and the only loop is over T. It is differentiable (torch autograd), works on any device, and computes
in the dtype of ``lam``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from mixdvae.errors import NumericalError

__all__ = ["SmootherResult", "cv_smoother", "cv_process_cov"]


class SmootherResult(NamedTuple):
    """Smoothed marginals p(x_t | g_{1:T}) and the log normaliser of p(x_{1:T}) prod_t g_t(p_t).

    Attributes:
        mean_p, var_p: posterior mean and variance of the position p_t.
        mean_v, var_v: posterior mean and variance of the velocity v_t.
        log_norm: log Z = log ∫ p(x_{1:T}) prod_t exp(info_t p_t - lam_t p_t^2 / 2) dx_{1:T}, with the
            factors left UNNORMALISED (no (2 pi / lam_t)^(-1/2), no exp(-info_t^2 / (2 lam_t))); the
            caller adds its data-only constants. Frames with lam_t = info_t = 0 contribute 0.
        cov_pv: posterior covariance of (p_t, v_t).
        log_norm_centred: log ∫ p(x_{1:T}) prod_{t: lam_t > 0} exp(-lam_t (p_t - y_t)^2 / 2) dx with
            y_t = info_t / lam_t, i.e. ``log_norm - sum_{t: lam_t > 0} info_t^2 / (2 lam_t)``,
            computed without that large data term (use it in float32 ELBOs: -sum_k r (o - y)^2 / (2 Phi)
            is then the only data constant left). It equals ``log_norm`` where every lam_t = 0.

    Shape:
        mean_p, var_p, mean_v, var_v, cov_pv: (..., T); log_norm, log_norm_centred: (...).
    """

    mean_p: Tensor
    var_p: Tensor
    mean_v: Tensor
    var_v: Tensor
    log_norm: Tensor
    cov_pv: Tensor
    log_norm_centred: Tensor


class _Gauss2(NamedTuple):
    """N([p, v], [[pp, pv], [pv, vv]]), elementwise over a batch."""

    p: Tensor
    v: Tensor
    pp: Tensor
    pv: Tensor
    vv: Tensor


def cv_process_cov(q: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Q = q [[1/3, 1/2], [1/2, 1]] (white-noise acceleration, dt = 1) as its entries (pp, pv, vv)."""
    return q / 3.0, q / 2.0, q


def _predict(x: _Gauss2, q: Tensor, offset: Tensor | None = None, q_step: Tensor | None = None) -> _Gauss2:
    """p(x_t | g_{1:t-1}) = N(A m + a_t [1, 1], A P A^T + Q + r_t [[1, 1], [1, 1]]).

    A m = [p + v, v];  A P A^T = [[pp + 2 pv + vv, pv + vv], [pv + vv, vv]]. The optional offset a_t
    and step variance r_t model a velocity change u_t ~ N(a_t, r_t) applied in frame t
    (v_t = v_{t-1} + u_t, p_t = p_{t-1} + v_t): a known acceleration and its uncertainty.
    """
    q_pp, q_pv, q_vv = cv_process_cov(q)
    if q_step is not None:
        q_pp, q_pv, q_vv = q_pp + q_step, q_pv + q_step, q_vv + q_step
    p, v = x.p + x.v, x.v
    if offset is not None:
        p, v = p + offset, v + offset
    return _Gauss2(
        p=p,
        v=v,
        pp=x.pp + 2.0 * x.pv + x.vv + q_pp,
        pv=x.pv + x.vv + q_pv,
        vv=x.vv + q_vv,
    )


def _condition_on(x: _Gauss2, lam: Tensor, info: Tensor) -> tuple[_Gauss2, Tensor, Tensor]:
    """Multiply N(x; m, P) by g(p) = exp(info p - lam p^2 / 2) and renormalise.

    With S = 1 + lam P_pp and the information residual r = info - lam m_p (both finite at lam = 0):

        m' = m + [P_pp, P_pv] r / S
        P' = P - [P_pp, P_pv]^T [P_pp, P_pv] lam / S    (P'_pp = P_pp / S, P'_pv = P_pv / S)

    and the log normaliser of the update, log ∫ N(p; m_p, P_pp) g(p) dp, is

        c = -log(S) / 2 + (2 m_p info + P_pp info^2 - lam m_p^2) / (2 S)
          = info^2 / (2 lam) + c_centred,   c_centred = -log(S) / 2 - r^2 / (2 lam S)   (lam > 0),

    and c_centred = c = m_p info + P_pp info^2 / 2 where lam = 0 (a pure exponential tilt).

    Returns:
        the conditioned Gaussian, c and c_centred.
    """
    s = 1.0 + lam * x.pp
    resid = info - lam * x.p
    gain_p, gain_v = x.pp / s, x.pv / s  # [P_pp, P_pv] / S
    out = _Gauss2(
        p=x.p + gain_p * resid,
        v=x.v + gain_v * resid,
        pp=gain_p,
        pv=gain_v,
        vv=x.vv - x.pv * gain_v * lam,
    )
    half_log_s = 0.5 * torch.log1p(lam * x.pp)
    c = (2.0 * x.p * info + x.pp * info * info - lam * x.p * x.p) / (2.0 * s) - half_log_s
    positive = lam > 0
    lam_safe = torch.where(positive, lam, torch.ones_like(lam))
    c_centred = torch.where(
        positive,
        -resid * resid / (2.0 * lam_safe * s),
        x.p * info + 0.5 * x.pp * info * info,
    ) - half_log_s
    return out, c, c_centred


def _smooth_step(filt: _Gauss2, pred_next: _Gauss2, smooth_next: _Gauss2) -> _Gauss2:
    """One RTS step: p(x_t | g_{1:T}) from p(x_t | g_{1:t}), p(x_{t+1} | g_{1:t}), p(x_{t+1} | g_{1:T}).

        J = P_f A^T P_pred^{-1},  m_s = m_f + J (m_s' - m_pred),  P_s = P_f + J (P_s' - P_pred) J^T

    with P_f A^T = [[pp + pv, pv], [pv + vv, vv]] and the 2x2 inverse in closed form.
    """
    det = pred_next.pp * pred_next.vv - pred_next.pv * pred_next.pv
    # P_f A^T
    f11, f12 = filt.pp + filt.pv, filt.pv
    f21, f22 = filt.pv + filt.vv, filt.vv
    # J = (P_f A^T) adj(P_pred) / det, adj = [[vv, -pv], [-pv, pp]]
    j11 = (f11 * pred_next.vv - f12 * pred_next.pv) / det
    j12 = (f12 * pred_next.pp - f11 * pred_next.pv) / det
    j21 = (f21 * pred_next.vv - f22 * pred_next.pv) / det
    j22 = (f22 * pred_next.pp - f21 * pred_next.pv) / det
    dp, dv = smooth_next.p - pred_next.p, smooth_next.v - pred_next.v
    d11 = smooth_next.pp - pred_next.pp
    d12 = smooth_next.pv - pred_next.pv
    d22 = smooth_next.vv - pred_next.vv
    # J D (D symmetric), then (J D) J^T
    e11, e12 = j11 * d11 + j12 * d12, j11 * d12 + j12 * d22
    e21, e22 = j21 * d11 + j22 * d12, j21 * d12 + j22 * d22
    return _Gauss2(
        p=filt.p + j11 * dp + j12 * dv,
        v=filt.v + j21 * dp + j22 * dv,
        pp=filt.pp + e11 * j11 + e12 * j12,
        pv=filt.pv + e11 * j21 + e12 * j22,
        vv=filt.vv + e21 * j21 + e22 * j22,
    )


def cv_smoother(
    lam: Tensor,
    info: Tensor,
    q: Tensor | float,
    mu0: Tensor | float,
    var0_p: Tensor | float,
    var0_v: Tensor | float,
    offset: Tensor | None = None,
    q_step: Tensor | None = None,
) -> SmootherResult:
    """Posterior marginals and log normaliser of the constant-velocity model given p-factors g_t.

        p(x_{1:T} | g) ∝ N(x_1; [mu0, 0], diag(var0_p, var0_v)) prod_t N(x_t; A x_{t-1} + a_t [1, 1], Q + r_t [[1, 1], [1, 1]])
                         prod_t exp(info_t p_t - lam_t p_t^2 / 2)

    with a_t = r_t = 0 unless ``offset`` / ``q_step`` are given (a velocity change u_t ~ N(a_t, r_t)
    in frame t, e.g. a DVAE's predicted acceleration and its variance).

    Forward Kalman filter (log Z = sum_t log of each update's normaliser), then RTS smoother.

    Args:
        lam: precision lam_t = 1 / R_t >= 0 of the pseudo-observation of p_t (0: no information).
        info: information info_t = y_t / R_t (0 where lam_t = 0; a nonzero info with lam = 0 is an
            exponential tilt and is handled exactly too).
        q: acceleration variance per frame (> 0; q = 0 is allowed for a rigid line if var0_p, var0_v > 0).
        mu0: prior mean of p_1 (the prior mean of v_1 is 0).
        var0_p, var0_v: prior variances of p_1 and v_1 (> 0).
        offset, q_step: (..., T) or None: a_t and r_t >= 0 of the transition into frame t (index 0 unused).

    Returns:
        :class:`SmootherResult`; dtype and device of ``lam``.

    Raises:
        NumericalError: a non-finite value in the result (e.g. NaN inputs or a singular prediction).

    Shape:
        lam, info: (..., T) (in VKF: (B, N, D, T)); q, mu0, var0_p, var0_v: broadcastable to (...).
        Outputs: (..., T) for the marginals, (...) for the log normalisers.
    """
    lam = torch.as_tensor(lam)
    if not lam.is_floating_point():
        lam = lam.to(torch.get_default_dtype())
    like = dict(dtype=lam.dtype, device=lam.device)
    info = torch.as_tensor(info, **like)
    if lam.dim() < 1 or info.dim() < 1:
        raise TypeError(
            f"cv_smoother: lam and info need a time axis, got shapes {tuple(lam.shape)} and {tuple(info.shape)}"
        )
    params = [torch.as_tensor(v, **like) for v in (q, mu0, var0_p, var0_v)]
    batch = torch.broadcast_shapes(lam.shape[:-1], info.shape[:-1], *(v.shape for v in params))
    T = lam.shape[-1]
    if info.shape[-1] != T:
        raise TypeError(f"cv_smoother: lam has T = {T} frames but info has {info.shape[-1]}")
    lam = lam.expand(*batch, T)
    info = info.expand(*batch, T)
    q, mu0, var0_p, var0_v = (v.expand(batch) for v in params)

    zero = torch.zeros(batch, **like)
    x = _Gauss2(p=mu0, v=zero, pp=var0_p, pv=zero, vv=var0_v)  # p(x_1), before any data
    preds: list[_Gauss2] = []
    filts: list[_Gauss2] = []
    log_norm = zero
    log_norm_c = zero
    if offset is not None:
        offset = torch.as_tensor(offset, **like).expand(*batch, T)
    if q_step is not None:
        q_step = torch.as_tensor(q_step, **like).expand(*batch, T)
    for t in range(T):
        if t > 0:
            x = _predict(x, q, None if offset is None else offset[..., t], None if q_step is None else q_step[..., t])
        preds.append(x)
        x, c, c_centred = _condition_on(x, lam[..., t], info[..., t])
        filts.append(x)
        log_norm = log_norm + c
        log_norm_c = log_norm_c + c_centred

    smooth = [filts[-1]]
    for t in range(T - 2, -1, -1):
        smooth.append(_smooth_step(filts[t], preds[t + 1], smooth[-1]))
    smooth.reverse()

    def stack(field: str) -> Tensor:
        return torch.stack([getattr(g, field) for g in smooth], dim=-1)  # (..., T)

    result = SmootherResult(
        mean_p=stack("p"),
        var_p=stack("pp"),
        mean_v=stack("v"),
        var_v=stack("vv"),
        log_norm=log_norm,
        cov_pv=stack("pv"),
        log_norm_centred=log_norm_c,
    )
    for name, value in result._asdict().items():
        if not bool(torch.isfinite(value).all()):
            raise NumericalError(f"cv_smoother: {name} has non-finite values (check lam >= 0, var0 > 0, q >= 0)")
    return result
