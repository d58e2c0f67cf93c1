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

:func:`cv_smoother` runs the Kalman filter (prediction as one linear map of the vector
[p, v, pp, pv, vv], :func:`_condition_on`) and the Rauch-Tung-Striebel smoother (:func:`_smooth_step`,
with the gains of every frame computed at once by :func:`_smoother_gains`) in closed-form 2x2 algebra:
everything is elementwise over the batch, the only loops are over T and each step is a handful of
tensor operations. It is differentiable (torch autograd), works on any device, and computes in the
dtype of ``lam``.

:func:`cv_bias_smoother` is the same model with a third state per coordinate, an AR(1) detection
bias b_t observed with p_t (the factors g_t are on p_t + b_t), in batched 3x3 algebra (the
``kalman_bias_rho`` option of the DVAE prior).

:func:`gap_jump_weights` marks the frames around gaps in a source's detections where the velocity
may jump (the ``v_step`` of :func:`cv_smoother`): the ``kalman_gap_std`` option of the DVAE prior
and ``gap_std`` of the VKF prior.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from mixdvae.errors import ConfigError, NumericalError

__all__ = [
    "BiasSmootherResult", "SmootherResult", "check_gap_options", "cv_bias_smoother", "cv_smoother", "cv_process_cov",
    "detected_frames", "gap_jump_weights", "gap_jumps",
]


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
        lag_cov_v: Cov(v_t, v_{t-1} | g_{1:T}) (0 at t = 1): the [v, v] entry of
            P_{t,t-1|T} = P_{t|T} J_{t-1}^T (the RTS lag-one covariance), for M-steps on the
            process noise.

    Shape:
        mean_p, var_p, mean_v, var_v, cov_pv, lag_cov_v: (..., T); log_norm, log_norm_centred: (...).
    """

    mean_p: Tensor
    var_p: Tensor
    mean_v: Tensor
    var_v: Tensor
    log_norm: Tensor
    cov_pv: Tensor
    log_norm_centred: Tensor
    lag_cov_v: Tensor


def cv_process_cov(q: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Q = q [[1/3, 1/2], [1/2, 1]] (white-noise acceleration, dt = 1) as its entries (pp, pv, vv)."""
    return q / 3.0, q / 2.0, q


# A Gaussian over [p, v] is held as one (5, M) tensor [p, v, pp, pv, vv] (M = batch size), so that
# each step is a few operations on contiguous rows. The prediction is linear in that vector:
#   A m = [p + v, v],  A P A^T = [[pp + 2 pv + vv, pv + vv], [pv + vv, vv]]
_PREDICT = (
    (1.0, 1.0, 0.0, 0.0, 0.0),
    (0.0, 1.0, 0.0, 0.0, 0.0),
    (0.0, 0.0, 1.0, 2.0, 1.0),
    (0.0, 0.0, 0.0, 1.0, 1.0),
    (0.0, 0.0, 0.0, 0.0, 1.0),
)


def _condition_on(x: Tensor, lam: Tensor, info: Tensor) -> Tensor:
    """Multiply N([p, v]; m, P) by g(p) = exp(info p - lam p^2 / 2) and renormalise.

    With S = 1 + lam P_pp and the information residual r = info - lam m_p (both finite at lam = 0):

        m' = m + [P_pp, P_pv] r / S
        P' = P - [P_pp, P_pv]^T [P_pp, P_pv] lam / S    (P'_pp = P_pp / S, P'_pv = P_pv / S)

    Shape: x (5, M) = [p, v, pp, pv, vv], lam, info (M,) -> (5, M)
    """
    s = torch.addcmul(torch.ones_like(lam), lam, x[2])
    resid = torch.addcmul(info, lam, x[0], value=-1.0)
    gain = x[2:4] / s  # [P_pp, P_pv] / S
    mean = torch.addcmul(x[0:2], gain, resid)
    vv = torch.addcmul(x[4], x[3] * gain[1], lam, value=-1.0)
    return torch.cat([mean, gain, vv[None]])


def _update_log_norms(p: Tensor, pp: Tensor, lam: Tensor, info: Tensor) -> tuple[Tensor, Tensor]:
    """Log normaliser of every update, log ∫ N(p; m_p, P_pp) g(p) dp, for all frames at once:

        c = -log(S) / 2 + (2 m_p info + P_pp info^2 - lam m_p^2) / (2 S)
          = info^2 / (2 lam) + c_centred,   c_centred = -log(S) / 2 - r^2 / (2 lam S)   (lam > 0),

    and c_centred = c = m_p info + P_pp info^2 / 2 where lam = 0 (a pure exponential tilt).

    Shape: p, pp (T, M) predicted mean and variance of the observed quantity, lam, info (T, M)
        -> c, c_centred (T, M)
    """
    s = 1.0 + lam * pp
    resid = info - lam * p
    half_log_s = 0.5 * torch.log1p(lam * pp)
    c = (2.0 * p * info + pp * info * info - lam * p * p) / (2.0 * s) - half_log_s
    positive = lam > 0
    lam_safe = torch.where(positive, lam, torch.ones_like(lam))
    c_centred = torch.where(positive, -resid * resid / (2.0 * lam_safe * s), p * info + 0.5 * pp * info * info) - half_log_s
    return c, c_centred


def _smoother_gains(filt: Tensor, pred_next: Tensor) -> Tensor:
    """RTS gains J_t = P_f,t A^T P_pred,t+1^{-1} for all frames at once, with P_f A^T =
    [[pp + pv, pv], [pv + vv, vv]] and the 2x2 inverse in closed form (adj / det).

    Shape: filt, pred_next (T - 1, 5, M) -> J (T - 1, 2, 2, M)
    """
    pp, pv, vv = pred_next[:, 2], pred_next[:, 3], pred_next[:, 4]
    det = pp * vv - pv * pv
    f11, f12 = filt[:, 2] + filt[:, 3], filt[:, 3]
    f21, f22 = filt[:, 3] + filt[:, 4], filt[:, 4]
    j11 = (f11 * vv - f12 * pv) / det
    j12 = (f12 * pp - f11 * pv) / det
    j21 = (f21 * vv - f22 * pv) / det
    j22 = (f22 * pp - f21 * pv) / det
    return torch.stack([torch.stack([j11, j12], 1), torch.stack([j21, j22], 1)], 1)


def _smooth_step(filt: Tensor, pred_next: Tensor, smooth_next: Tensor, gain: Tensor) -> Tensor:
    """One RTS step: p(x_t | g_{1:T}) from p(x_t | g_{1:t}), p(x_{t+1} | g_{1:t}), p(x_{t+1} | g_{1:T}):

        m_s = m_f + J (m_s' - m_pred),  P_s = P_f + J (P_s' - P_pred) J^T

    Shape: filt, pred_next, smooth_next (5, M), gain J (2, 2, M) -> (5, M)
    """
    d = smooth_next - pred_next  # [dp, dv, d11, d12, d22]
    col0, col1 = gain[:, 0], gain[:, 1]  # [j11, j21], [j12, j22]
    mean = torch.addcmul(torch.addcmul(filt[0:2], col0, d[0]), col1, d[1])
    e_1 = torch.addcmul(col0 * d[2], col1, d[3])  # first column of J D: [e11, e21]
    e_2 = torch.addcmul(col0 * d[3], col1, d[4])  # second column: [e12, e22]
    pp_pv = torch.addcmul(torch.addcmul(filt[2:4], col0, e_1[0]), col1, e_2[0])  # P_f + [e11 j11 + e12 j12, e11 j21 + e12 j22]
    vv = torch.addcmul(torch.addcmul(filt[4], e_1[1], gain[1, 0]), e_2[1], gain[1, 1])  # + e21 j21 + e22 j22
    return torch.cat([mean, pp_pv, vv[None]])


def cv_smoother(
    lam: Tensor,
    info: Tensor,
    q: Tensor | float,
    mu0: Tensor | float,
    var0_p: Tensor | float,
    var0_v: Tensor | float,
    offset: Tensor | None = None,
    q_step: Tensor | None = None,
    v_step: Tensor | None = None,
    float64: bool = False,
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
        v_step: (..., T) or None: a velocity change of variance w_t >= 0 after the position step
            into frame t, i.e. v_t = v_{t-1} + u_t + e_t with e_t ~ N(0, w_t) while p_t = p_{t-1} +
            v_{t-1} + u_t (index 0 unused). Unlike a large r_t, a large w_t leaves the predicted
            covariances well conditioned (the velocity jumps of :func:`gap_jump_weights`).
        float64: compute in float64 where the device has it (not MPS), whatever the inputs' dtype;
            the result keeps the dtype of ``lam``.

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
    out_dtype = lam.dtype
    if float64 and lam.device.type != "mps":
        lam = lam.double()  # every other input follows lam's dtype below
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

    M = 1
    for n in batch:
        M *= n
    rows = lambda x: x.reshape(M, T).T.contiguous()  # noqa: E731  (..., T) -> (T, M)
    lam_t, info_t = rows(lam), rows(info)
    q_pp, q_pv, q_vv = cv_process_cov(q.reshape(M))
    step = torch.stack([torch.zeros_like(q_pp), torch.zeros_like(q_pp), q_pp, q_pv, q_vv])  # (5, M)
    step = step[None].repeat(T, 1, 1)  # (T, 5, M): what the prediction into frame t adds
    if offset is not None:
        step[:, 0:2] += rows(torch.as_tensor(offset, **like).expand(*batch, T))[:, None]
    if q_step is not None:
        step[:, 2:5] += rows(torch.as_tensor(q_step, **like).expand(*batch, T))[:, None]
    if v_step is not None:
        step[:, 4] += rows(torch.as_tensor(v_step, **like).expand(*batch, T))
    predict = torch.tensor(_PREDICT, **like)
    zero = torch.zeros(M, **like)
    x = torch.stack([mu0.reshape(M), zero, var0_p.reshape(M), zero, var0_v.reshape(M)])  # p(x_1), before any data
    preds: list[Tensor] = []
    filts: list[Tensor] = []
    for t in range(T):
        if t > 0:
            x = torch.addmm(step[t], predict, x)
        preds.append(x)
        x = _condition_on(x, lam_t[t], info_t[t])
        filts.append(x)
    pred, filt = torch.stack(preds), torch.stack(filts)  # (T, 5, M)
    c, c_centred = _update_log_norms(pred[:, 0], pred[:, 2], lam_t, info_t)

    smooth = [filt[-1]]
    lag = torch.zeros(M, T, **like)
    if T > 1:
        gains = _smoother_gains(filt[:-1], pred[1:])
        for t in range(T - 2, -1, -1):
            smooth.append(_smooth_step(filt[t], pred[t + 1], smooth[-1], gains[t]))
    smooth.reverse()
    out = torch.stack(smooth, dim=-1)  # (5, M, T)
    if T > 1:  # [P_{t|T} J_{t-1}^T]_vv = pv_{t|T} J_{t-1}[v, p] + vv_{t|T} J_{t-1}[v, v]
        lag[:, 1:] = out[3][:, 1:] * gains[:, 1, 0].T + out[4][:, 1:] * gains[:, 1, 1].T

    def field(i: int) -> Tensor:
        return out[i].reshape(*batch, T)

    result = SmootherResult(
        mean_p=field(0),
        var_p=field(2),
        mean_v=field(1),
        var_v=field(4),
        log_norm=c.sum(0).reshape(batch),
        cov_pv=field(3),
        log_norm_centred=c_centred.sum(0).reshape(batch),
        lag_cov_v=lag.reshape(*batch, T),
    )
    for name, value in result._asdict().items():
        if not bool(torch.isfinite(value).all()):
            raise NumericalError(f"cv_smoother: {name} has non-finite values (check lam >= 0, var0 > 0, q >= 0)")
    return result if out_dtype == lam.dtype else SmootherResult(*(x.to(out_dtype) for x in result))


class BiasSmootherResult(NamedTuple):
    """Smoothed marginals of the constant-velocity model with an AR(1) detection bias
    (:func:`cv_bias_smoother`).

    Attributes:
        mean_y, var_y: posterior of the detection-space position y_t = p_t + b_t.
        mean_p, var_p, mean_v, var_v, lag_cov_v: as in :class:`SmootherResult` (true position p_t,
            velocity v_t, Cov(v_t, v_{t-1}), 0 at t = 1).
        mean_b, var_b, lag_cov_b: posterior of the bias b_t and Cov(b_t, b_{t-1}) (0 at t = 1).
        log_norm_centred: as in :class:`SmootherResult`, with the factors on y_t.

    Shape: every marginal (..., T); log_norm_centred (...).
    """

    mean_y: Tensor
    var_y: Tensor
    mean_p: Tensor
    var_p: Tensor
    mean_v: Tensor
    var_v: Tensor
    lag_cov_v: Tensor
    mean_b: Tensor
    var_b: Tensor
    lag_cov_b: Tensor
    log_norm_centred: Tensor


def cv_bias_smoother(
    lam: Tensor,
    info: Tensor,
    q: Tensor,
    mu0: Tensor,
    var0_p: Tensor,
    var0_v: Tensor,
    bias_var: Tensor,
    bias_rho: float,
    offset: Tensor | None = None,
    q_step: Tensor | None = None,
) -> BiasSmootherResult:
    """Kalman filter and RTS smoother of the constant-velocity model whose observations carry a
    persistent (AR(1)) error, one coordinate at a time; state x_t = [p_t, v_t, b_t]:

        [p_t, v_t] = A [p_{t-1}, v_{t-1}] + a_t [1, 1] + w_t,   w_t ~ N(0, Q + r_t [[1, 1], [1, 1]])
        b_1 ~ N(0, sigma_b^2),   b_t = rho b_{t-1} + e_t,   e_t ~ N(0, (1 - rho^2) sigma_b^2)
        factors g_t(y_t) = exp(info_t y_t - lam_t y_t^2 / 2) on y_t = p_t + b_t

    (Q, a_t, r_t as in :func:`cv_smoother`). b_t is the part of a detection's error that persists
    from frame to frame (a detector's box stays too wide for a while): the white part stays in the
    observation precision lam_t. Without b the smoother can only explain such an error as motion.

    Computed in float64 with batched 3x3 algebra (gains of all frames at once by one batched
    solve), returned in the dtype of ``lam``.

    Args:
        lam, info, q, mu0, var0_p, var0_v, offset, q_step: as in :func:`cv_smoother`.
        bias_var: stationary variance sigma_b^2 > 0 of the bias.
        bias_rho: its lag-one correlation, 0 <= rho < 1.

    Raises:
        NumericalError: a non-finite value in the result.

    Shape: lam, info, offset, q_step (..., T); q, mu0, var0_p, var0_v, bias_var (...) ->
        :class:`BiasSmootherResult` fields (..., T) and log_norm_centred (...).
    """
    out_dtype = lam.dtype
    f64 = dict(dtype=torch.float64, device=lam.device)
    batch, T = lam.shape[:-1], lam.shape[-1]
    M = 1
    for n in batch:
        M *= n
    rows = lambda x: torch.as_tensor(x, **f64).expand(*batch, T).reshape(M, T).T  # noqa: E731  (T, M)
    per = lambda x: torch.as_tensor(x, **f64).expand(batch).reshape(M)  # noqa: E731  (M,)
    lam_t, info_t = rows(lam), rows(info)
    q, mu0, var0_p, var0_v, sb = per(q), per(mu0), per(var0_p), per(var0_v), per(bias_var)
    a = rows(offset) if offset is not None else torch.zeros(T, M, **f64)
    r = rows(q_step) if q_step is not None else torch.zeros(T, M, **f64)
    A = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, float(bias_rho)]], **f64)
    h = torch.tensor([1.0, 0.0, 1.0], **f64)
    zero = torch.zeros(M, **f64)
    m = torch.stack([mu0, zero, zero], -1)  # (M, 3)
    P = torch.diag_embed(torch.stack([var0_p, var0_v, sb], -1))  # (M, 3, 3)
    e_var = (1.0 - float(bias_rho) ** 2) * sb
    preds_m, preds_P, filt_m, filt_P, pred_y, pred_yy = [], [], [], [], [], []
    for t in range(T):
        if t > 0:
            m = m @ A.T
            m = m + torch.stack([a[t], a[t], zero], -1)
            P = A @ P @ A.T
            qa = q + r[t]
            Q = torch.stack([
                torch.stack([q / 3 + r[t], q / 2 + r[t], zero], -1),
                torch.stack([q / 2 + r[t], qa, zero], -1),
                torch.stack([zero, zero, e_var], -1),
            ], -2)
            P = P + Q
        preds_m.append(m)
        preds_P.append(P)
        Ph = P @ h  # (M, 3)
        hm, hPh = m @ h, Ph @ h
        pred_y.append(hm)
        pred_yy.append(hPh)
        s = 1.0 + lam_t[t] * hPh
        resid = info_t[t] - lam_t[t] * hm
        m = m + Ph * (resid / s)[:, None]
        P = P - (lam_t[t] / s)[:, None, None] * Ph[:, :, None] * Ph[:, None, :]
        filt_m.append(m)
        filt_P.append(P)
    pm, pP, fm, fP = (torch.stack(x) for x in (preds_m, preds_P, filt_m, filt_P))  # (T, M, 3[, 3])
    _, c_centred = _update_log_norms(torch.stack(pred_y), torch.stack(pred_yy), lam_t, info_t)  # (T, M)
    sm, sP = [fm[-1]], [fP[-1]]
    lag = torch.zeros(T, M, 3, 3, **f64)
    if T > 1:
        # J_t = P_f,t A^T P_pred,t+1^{-1}  <=>  J_t^T = P_pred,t+1^{-1} A P_f,t (symmetric P)
        gains = torch.linalg.solve(pP[1:], A @ fP[:-1]).transpose(-1, -2)  # (T-1, M, 3, 3)
        for t in range(T - 2, -1, -1):
            J = gains[t]
            d_m = sm[-1] - pm[t + 1]
            d_P = sP[-1] - pP[t + 1]
            sm.append(fm[t] + (J @ d_m[..., None])[..., 0])
            sP.append(fP[t] + J @ d_P @ J.transpose(-1, -2))
    sm.reverse()
    sP.reverse()
    mean, cov = torch.stack(sm), torch.stack(sP)  # (T, M, 3[, 3])
    if T > 1:
        lag[1:] = cov[1:] @ gains.transpose(-1, -2)  # Cov(x_t, x_{t-1} | all) = P_s,t J_{t-1}^T
    var_y = cov[..., 0, 0] + 2 * cov[..., 0, 2] + cov[..., 2, 2]
    back = lambda x: x.T.reshape(*batch, T).to(out_dtype)  # noqa: E731  (T, M) -> (..., T)
    result = BiasSmootherResult(
        mean_y=back(mean[..., 0] + mean[..., 2]), var_y=back(var_y),
        mean_p=back(mean[..., 0]), var_p=back(cov[..., 0, 0]),
        mean_v=back(mean[..., 1]), var_v=back(cov[..., 1, 1]), lag_cov_v=back(lag[..., 1, 1]),
        mean_b=back(mean[..., 2]), var_b=back(cov[..., 2, 2]), lag_cov_b=back(lag[..., 2, 2]),
        log_norm_centred=c_centred.sum(0).reshape(batch).to(out_dtype),
    )
    for name, value in result._asdict().items():
        if not bool(torch.isfinite(value).all()):
            raise NumericalError(f"cv_bias_smoother: {name} has non-finite values")
    return result


def check_gap_options(owner: str, prefix: str, std: float, min_run: int, min_gap: int) -> None:
    """ConfigError unless the gap rule's options (``{prefix}gap_std``, ``{prefix}gap_min_run``,
    ``{prefix}gap_min_gap`` of ``owner``) are a std >= 0 and two integers >= 1."""
    if not std >= 0:
        raise ConfigError(f"{owner}.{prefix}gap_std = {std}: must be >= 0")
    for name, value in (("gap_min_run", min_run), ("gap_min_gap", min_gap)):
        if not (isinstance(value, int) and value >= 1):
            raise ConfigError(f"{owner}.{prefix}{name} = {value!r}: must be an integer >= 1")


def gap_jump_weights(lam: Tensor, min_run: int = 5, min_gap: int = 1) -> Tensor:
    """Where a source's velocity may jump (``kalman_gap_std``, ``gap_std``; the ``v_step`` of
    :func:`cv_smoother`): for every gap (frames t0..t1 without a detection) of at least ``min_gap``
    frames between two runs of at least ``min_run`` frames with one, 1 at t0 - 1 (the last frame
    seen before the gap: the velocity that carries its box into the gap is new) and at t1 + 1 (the
    first frame seen after it: the velocity that carries its box on is new), else 0. The steps
    through such a gap then share one velocity (the straight line between the boxes on either
    side), and the velocity after it is drawn from the frames after it only. A gap at either end of
    the window, or next to a short run, keeps the velocity of its neighbours: a short run tells too
    little about the velocity to draw a line from or extrapolate from.

    Whether the source has a detection in frame t is c_t = [lam_t > lam_med / 2], per box coordinate:
    its observation precision lam_t = sum_k r_tkn / Phi_tk against its median lam_med over the frames
    with one. (Pooling c over the 4 coordinates was worse on the synthetic windows of seed 11: 151
    FP against 110.)

    Shape: lam (..., T) -> (..., T)
    """
    return gap_jumps(detected_frames(lam), min_run, min_gap).to(lam.dtype)


def detected_frames(lam: Tensor) -> Tensor:
    """c_t = [lam_t > lam_med / 2]: whether a source has a detection in frame t, from its observation
    precision lam_t = sum_k r_tkn / Phi_tk against its median lam_med over the frames with one
    (:func:`gap_jump_weights`).

    Shape: lam (..., T) -> (..., T) bool
    """
    ref = torch.where(lam > 0, lam, torch.full_like(lam, float("nan"))).nanmedian(dim=-1, keepdim=True).values
    ref = torch.nan_to_num(ref, nan=1.0).clamp_min(1e-30)
    return lam > 0.5 * ref


def gap_jumps(seen: Tensor, min_run: int = 5, min_gap: int = 1) -> Tensor:
    """The jump weights of :func:`gap_jump_weights` from the frames with a detection.

    Shape: seen (..., T) bool -> (..., T) float32
    """
    shape, T = seen.shape, seen.shape[-1]
    seen = seen.reshape(-1, T)  # (rows, T): cummax over the last axis of a 2-D tensor is several times faster
    t = torch.arange(T, device=seen.device).expand_as(seen)
    # frames seen in a row up to t (before) and from t on (after), from the last unseen frame at or
    # before t and the next at or after t; prev / nxt: the length of the last run that ended at or
    # before t / of the next one that starts at or after t (0 if none)
    last_unseen = torch.cummax(torch.where(seen, -1, t), -1).values
    next_unseen = T - 1 - torch.cummax(torch.where(seen, -1, T - 1 - t).flip(-1), -1).values.flip(-1)
    before = torch.where(seen, t - last_unseen, 0)
    after = torch.where(seen, next_unseen - t, 0)
    last_seen = torch.cummax(torch.where(seen, t, -1), -1).values
    next_seen = T - 1 - torch.cummax(torch.where(seen, T - 1 - t, -1).flip(-1), -1).values.flip(-1)
    prev = torch.where(last_seen >= 0, before.gather(-1, last_seen.clamp_min(0)), 0)
    nxt = torch.where(next_seen < T, after.gather(-1, next_seen.clamp_max(T - 1)), 0)
    c = seen.to(torch.float32)
    j = torch.zeros_like(c)
    # frame t is seen, t + 1 is not (a gap of next_seen - t - 1 frames starts), between long runs
    j[..., :-1] = (c[..., :-1] * (1 - c[..., 1:]) * (before[..., :-1] >= min_run) * (nxt[..., 1:] >= min_run)
                   * (next_seen[..., 1:] - t[..., :-1] - 1 >= min_gap))
    # frame t is seen, t - 1 is not (a gap of t - last_seen - 1 frames ended), between long runs
    j[..., 1:] += ((1 - c[..., :-1]) * c[..., 1:] * (after[..., 1:] >= min_run) * (prev[..., :-1] >= min_run)
                   * (t[..., 1:] - last_seen[..., :-1] - 1 >= min_gap))
    return j.clamp_max(1.0).reshape(shape)
