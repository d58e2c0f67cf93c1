"""The E and M steps of MixDVAE for single-channel audio, as pure elementwise functions.

Model (SPEC.md section 1, reference-implementation.md section 6): a W-disjoint (binary-mask)
observation model on the complex STFT of the mixture,

    X_ft | w_ft = n, s  ~  CN(s_n,ft, v^x_ft),     p(w_ft = n) = pi_n,
    s_n,ft | z_n, s_n,<t  ~  CN(0, v^s_n,ft)        (the pretrained DVAE of source n),

with the variational posterior q(s_n,ft) = CN(m_n,ft, gamma_n,ft) and q(w_ft = n) = eta_ftn.
Every quantity is elementwise over (B, T, F) and the sources N, so every step is vectorised.

Every E-S here makes the posterior mean a real gain on the mixture, m_n,ft = c_n,ft X_ft, so q(s) is
kept as (c, gamma) and |m|^2 = c^2 |X|^2, |X - m|^2 = (1 - c)^2 |X|^2 are computed from the power
|X|^2 in real arithmetic; the complex mean is formed where it is needed (:func:`source_mean`).

Shapes: mixture X (B, T, F) complex; sources (B, T, N, F) (mean complex, var real);
prior variance v^s (B, T, N, F); noise variance v^x (B, T, F); responsibilities eta (B, T, F, N).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

__all__ = [
    "abs2",
    "SpectralSources",
    "source_mean",
    "residual_power",
    "e_step_s_wiener",
    "e_step_s_mixture",
    "expected_log_likelihood_spectral",
    "e_step_w_spectral",
    "marginal_log_likelihood_spectral",
    "m_step_noise_ratio",
    "expected_power",
    "source_elbo_spectral",
    "assignment_entropy_spectral",
]


def abs2(x: Tensor) -> Tensor:
    """|x|^2 = Re(x)^2 + Im(x)^2 (no square root, unlike ``x.abs() ** 2``).  Shape: any -> same, real."""
    if torch.is_complex(x):
        re, im = x.real, x.imag
        return torch.addcmul(re * re, im, im)  # one pass fewer than re ** 2 + im ** 2
    return x * x


class SpectralSources(NamedTuple):
    """q(s_n,ft) = CN(m, var) with ``var`` real (B, T, N, F) and the mean m given either as ``mean``
    (complex (B, T, N, F)) or as a real ``gain`` c (B, T, N, F) on the mixture, m = c X (what every
    E-S returns; ``mean`` is then None until :func:`source_mean` forms it). Both may be set; they
    then agree."""

    mean: Tensor | None
    var: Tensor
    gain: Tensor | None = None


def source_mean(q: SpectralSources, mix: Tensor) -> Tensor:
    """The posterior mean m = c X (or q.mean where it is stored).

    Shape: q (B, T, N, F), mix (B, T, F) -> (B, T, N, F) complex
    """
    if q.mean is not None:
        return q.mean
    return q.gain * mix[:, :, None, :]


def residual_power(mix: Tensor, q: SpectralSources, power: Tensor | None = None) -> Tensor:
    """E_q |X - s_n|^2 = |X - m_n|^2 + gamma_n, as (1 - c_n)^2 |X|^2 + gamma_n when m = c X.

    Shape: mix (B, T, F), q (B, T, N, F), power |X|^2 (B, T, F) or None -> (B, T, N, F)
    """
    if q.gain is not None:
        p = abs2(mix) if power is None else power
        d = 1 - q.gain
        return torch.addcmul(q.var, d * d, p[:, :, None, :])
    return abs2(mix[:, :, None, :] - q.mean) + q.var


def e_step_s_wiener(mix: Tensor, eta: Tensor, noise_var: Tensor, prior_var: Tensor) -> SpectralSources:
    """E-S: the product of the prior CN(0, v^s) and the observation term CN(X; s, v^x)^eta:

        gamma = 1 / (eta / v^x + 1 / v^s) = v^s v^x / (eta v^s + v^x),
        m = gamma eta X / v^x = [eta v^s / (eta v^s + v^x)] X          (a Wiener-like gain).

    Written without divisions by eta or v^s, so eta = 0 gives the prior (m = 0, gamma = v^s).
    Shape: mix (B, T, F), eta (B, T, F, N), noise_var (B, T, F), prior_var (B, T, N, F) -> (B, T, N, F)
    """
    e = eta.transpose(-1, -2)  # (B, T, N, F)
    vx = noise_var[:, :, None, :]  # (B, T, 1, F)
    ev = e * prior_var
    inv = torch.reciprocal(ev + vx)
    gain = ev * inv
    var = prior_var * vx * inv
    return SpectralSources(None, var, gain)


def e_step_s_mixture(mix: Tensor, eta: Tensor, noise_var: Tensor, prior_var: Tensor) -> SpectralSources:
    """E-S without the mean-field split of w and s: q(s_n,ft) moment-matched to the mixture
    eta p(s | X, w = n) + (1 - eta) p(s | w != n), where p(s | X, w = n) = CN(g X, g v^x) with the
    Wiener gain g = v^s / (v^s + v^x) and p(s | w != n) = CN(0, v^s) (the prior):

        m = eta g X,     gamma = eta g v^x + (1 - eta) v^s + eta (1 - eta) g^2 |X|^2.

    The mean-field update (:func:`e_step_s_wiener`) tempers the likelihood by eta instead, so its gain
    eta v^s / (eta v^s + v^x) is close to 1 on every bin where eta v^s >> v^x, however small eta
    is: with v^x = 0.03 |X|^2 a source keeps most bins that its prior finds plausible.

    Shape: mix (B, T, F), eta (B, T, F, N), noise_var (B, T, F), prior_var (B, T, N, F) -> (B, T, N, F)
    """
    e = eta.transpose(-1, -2)  # (B, T, N, F)
    vx = noise_var[:, :, None, :]  # (B, T, 1, F)
    g = prior_var / (prior_var + vx)
    var = e * g * vx + (1 - e) * prior_var + e * (1 - e) * g * g * abs2(mix)[:, :, None, :]
    return SpectralSources(None, var, e * g)


def expected_log_likelihood_spectral(mix: Tensor, noise_var: Tensor, q: SpectralSources,
                                     power: Tensor | None = None) -> Tensor:
    """E_q(s)[log CN(X_ft; s_n,ft, v^x_ft)] = -log(pi v^x_ft) - (|X_ft - m_n,ft|^2 + gamma_n,ft) / v^x_ft.

    ``power``: |X|^2 if already computed.
    Shape: mix (B, T, F), noise_var (B, T, F), q (B, T, N, F), power (B, T, F) -> (B, T, F, N)
    """
    vx = noise_var[:, :, None, :]  # (B, T, 1, F)
    resid = residual_power(mix, q, power)  # (B, T, N, F)
    ll = -torch.log(math.pi * vx) - resid / vx
    return ll.transpose(-1, -2)  # a view: (B, T, N, F) -> (B, T, F, N)


def marginal_log_likelihood_spectral(mix: Tensor, noise_var: Tensor, prior_var: Tensor,
                                     power: Tensor | None = None) -> Tensor:
    """log p(X_ft | w_ft = n) with s integrated out under its prior: log CN(X_ft; 0, v^s_n,ft + v^x_ft)
    = -log(pi (v^s + v^x)) - |X|^2 / (v^s + v^x), i.e. minus an Itakura-Saito divergence between |X|^2
    and v^s + v^x up to terms in X only.

    ``power``: |X|^2 if already computed.
    Shape: mix (B, T, F), noise_var (B, T, F), prior_var (B, T, N, F), power (B, T, F) -> (B, T, F, N)
    """
    v = prior_var + noise_var[:, :, None, :]  # (B, T, N, F)
    ll = -torch.log(math.pi * v) - (abs2(mix) if power is None else power)[:, :, None, :] / v
    return ll.transpose(-1, -2)


def e_step_w_spectral(loglik: Tensor, log_prior: Tensor, temperature: float = 1.0) -> Tensor:
    """E-W: eta_ftn = pi_n exp(c E_q log CN(X_ft; s_n,ft, v^x_ft)) / sum_n' (...), in the log
    domain (log-sum-exp); c = ``temperature`` (1: the exact E-step).

    Shape: loglik (B, T, F, N), log_prior (N,), (B, N) or per frame and frequency (B, T, F, N) -> (B, T, F, N)
    """
    if log_prior.ndim == 2:
        log_prior = log_prior[:, None, None, :]
    logits = (log_prior + temperature * loglik).transpose(-1, -2)  # (B, T, N, F): F contiguous
    return torch.softmax(logits, dim=-2).transpose(-1, -2)  # normalised over N, viewed as (B, T, F, N)


def m_step_noise_ratio(
    mix: Tensor, eta: Tensor, q: SpectralSources, eps: Tensor, floor: float = 1e-4, ceil: float = 1.0
) -> Tensor:
    """M-step on the relative noise variance lambda of v^x_ft = lambda (|X_ft|^2 + eps):

        lambda = (1 / TF) sum_{t,f} sum_n eta_ftn (|X_ft - m_n,ft|^2 + gamma_n,ft) / (|X_ft|^2 + eps),

    per mixture, clamped to [floor, ceil] (the reference fixes lambda = 0.03, section 6.1).
    ``eps`` (B,) keeps silent bins (|X| = 0) away from a zero variance.

    Shape: mix (B, T, F) complex, eta (B, T, F, N), q (B, T, N, F), eps (B,) -> (B,)
    """
    power = abs2(mix)  # (B, T, F)
    resid = residual_power(mix, q, power)  # (B, T, N, F)
    ref = (power + eps[:, None, None])[:, :, None, :]  # (B, T, 1, F)
    ratio = (eta.transpose(-1, -2) * resid / ref).sum(2).mean(dim=(1, 2))  # (B,)
    return ratio.clamp(floor, ceil)


def prior_blocks(num_frames: int, block: int) -> Tensor:
    """The block b(t) of each frame for a piecewise-constant assignment prior: round(T / block)
    blocks (at least one) of near-equal length, b(t) = floor(t nb / T).

    Shape: -> (T,) long
    """
    if block < 1:
        raise ValueError(f"prior_blocks: block = {block!r} must be >= 1")
    nb = max(1, round(num_frames / block))
    return torch.arange(num_frames) * nb // num_frames


def m_step_frequency_prior(eta: Tensor, blocks: Tensor, concentration: float) -> Tensor:
    """M-step (MAP) on a per-mixture assignment prior pi_bfn = p(w_ft = n) for every frequency f and
    block b of frames (``blocks`` (T,) gives b(t)):

        pi_bfn = (sum_{t in b} eta_ftn + a_b / N) / (L_b + a_b),    a_b = concentration * L_b,

    the maximiser of sum_{t,f,n} eta_ftn log pi_b(t)fn + sum_b (a_b / N) sum_{f,n} log pi_bfn (a
    symmetric Dirichlet prior on each pi_bf, of a_b pseudo-frames split evenly between the N sources;
    concentration = 0 is the maximum-likelihood update, which can lock a bin onto a source for good).
    Returned as log pi, floored at log 1e-6 so every source stays possible.

    Shape: eta (B, T, F, N), blocks (T,) -> log pi (B, nb, F, N)
    """
    if not concentration >= 0:
        raise ValueError(f"m_step_frequency_prior: concentration = {concentration!r} must be >= 0")
    B, T, F, N = eta.shape
    blocks = blocks.to(eta.device)
    nb = int(blocks.max().item()) + 1
    counts = torch.bincount(blocks, minlength=nb).to(eta.dtype)[None, :, None, None]  # (1, nb, 1, 1)
    sums = eta.new_zeros(B, nb, F, N).index_add_(1, blocks, eta)
    a = concentration * counts
    return torch.log(((sums + a / N) / (counts + a)).clamp_min(1e-6))


def dirichlet_log_density(log_prior: Tensor, blocks: Tensor, concentration: float) -> Tensor:
    """sum_b (a_b / N) sum_{f,n} log pi_bfn: the log of the Dirichlet priors of
    :func:`m_step_frequency_prior` up to their normalisers, per mixture.

    Shape: log_prior (B, nb, F, N), blocks (T,) -> (B,)
    """
    N = log_prior.shape[-1]
    counts = torch.bincount(blocks.to(log_prior.device), minlength=log_prior.shape[1]).to(log_prior.dtype)
    return ((concentration * counts / N)[None, :, None, None] * log_prior).sum(dim=(1, 2, 3))


def expected_power(q: SpectralSources, power: Tensor | None = None) -> Tensor:
    """E_q |s|^2 = |m|^2 + gamma, as c^2 |X|^2 + gamma when m = c X (then ``power`` = |X|^2 is needed).

    Shape: q (B, T, N, F), power (B, T, F) -> (B, T, N, F)
    """
    if q.gain is not None:
        if power is None:
            raise ValueError("expected_power: q holds a gain on the mixture; pass power = |X|^2")
        return torch.addcmul(q.var, q.gain * q.gain, power[:, :, None, :])
    return abs2(q.mean) + q.var


def source_elbo_spectral(q: SpectralSources, prior_var: Tensor, power: Tensor | None = None) -> Tensor:
    """The source part of the ELBO, E_q[log CN(s; 0, v^s)] + H[q(s)], summed per mixture:

        E_q log CN(s; 0, v^s) = -log(pi v^s) - (|m|^2 + gamma) / v^s,   H[q(s)] = log(pi e gamma),

    computed in one pass as sum [log(gamma / v^s) + 1 - (|m|^2 + gamma) / v^s].

    Shape: q, prior_var (B, T, N, F), power |X|^2 (B, T, F) (needed when q holds a gain) -> (B,)
    """
    return (torch.log(q.var / prior_var) + 1 - expected_power(q, power) / prior_var).sum(dim=(1, 2, 3))


def assignment_entropy_spectral(eta: Tensor) -> Tensor:
    """-sum eta log eta per mixture.  (B, T, F, N) -> (B,)"""
    return -(eta * torch.log(eta.clamp_min(1e-30))).sum(dim=(1, 2, 3))
