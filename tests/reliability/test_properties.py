"""Property tests of the E- and M-steps: for any finite inputs (box sizes from 1e-6 to 1e6, spectra down to
1e-30) the responsibilities are finite and sum to 1 over the sources, and the Wiener E-S step gives
finite means and positive variances. Chained as the VEM loops chain them (tracking: E-W, messages,
E-S, M-Phi at box scales 1e-4..1e4 with missing detections; audio: both E-S forms, both E-W
likelihoods and the noise M-step on spectra with powers down to 1e-12 and silent bins), every
posterior stays finite and normalised and every re-estimated variance stays in its bounds.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mixdvae.dvae.heads import Gauss
from mixdvae.inference.spectral_steps import (
    e_step_s_mixture,
    e_step_s_wiener,
    e_step_w_spectral,
    expected_log_likelihood_spectral,
    m_step_noise_ratio,
    marginal_log_likelihood_spectral,
    source_mean,
)
from mixdvae.inference.steps import e_step_s, e_step_w, expected_log_likelihood, m_step_obs_scale, source_messages

SETTINGS = settings(max_examples=50, deadline=None, derandomize=True)

dims = st.tuples(st.integers(1, 2), st.integers(1, 3), st.integers(1, 4), st.integers(1, 3))  # B, T, K|F, N


def log_uniform(draw, shape, low: float, high: float, signed: bool = False) -> torch.Tensor:
    """10 ** U(low, high) elementwise (with a random sign if ``signed``), float32.  Shape: ``shape``."""
    exponent = draw(arrays(np.float64, shape, elements=st.floats(low, high)))
    x = 10.0 ** exponent
    if signed:
        x = x * draw(arrays(np.float64, shape, elements=st.sampled_from([-1.0, 1.0])))
    return torch.as_tensor(x, dtype=torch.float32)


@st.composite
def tracking_inputs(draw):
    """Observations, mask, observation variances and source posteriors at box scales 1e-6..1e6."""
    B, T, K, N = draw(dims)
    D = 4
    o = log_uniform(draw, (B, T, K, D), -6, 6, signed=True)
    mask = torch.as_tensor(draw(arrays(np.bool_, (B, T, K))))
    o[~mask] = float("nan")  # missing observations are NaN rows
    obs_var = log_uniform(draw, (B, T, K, D), -12, 12)
    s = Gauss(log_uniform(draw, (B, T, N, D), -6, 6, signed=True), log_uniform(draw, (B, T, N, D), -12, 12))
    log_prior = torch.log_softmax(torch.as_tensor(draw(arrays(np.float64, (N,), elements=st.floats(-20, 20)))),
                                  dim=0).float()
    clutter = draw(st.one_of(st.none(), st.floats(-20.0, 0.0)))
    temperature = draw(st.sampled_from([1.0, 0.008]))
    return o, mask, obs_var, s, log_prior, clutter, temperature


@given(tracking_inputs())
@SETTINGS
def test_e_step_w_is_finite_and_normalised(inputs) -> None:
    o, mask, obs_var, s, log_prior, clutter, temperature = inputs
    loglik = expected_log_likelihood(o, obs_var, s)  # (B, T, K, N)
    resp = e_step_w(loglik, mask, log_prior, clutter_log_prior=clutter, clutter_log_density=-math.log(1e4),
                    temperature=temperature)
    assert torch.isfinite(resp.r).all() and torch.isfinite(resp.clutter).all()
    assert (resp.r >= 0).all() and (resp.clutter >= 0).all()
    total = resp.r.sum(-1) + resp.clutter  # (B, T, K)
    torch.testing.assert_close(total[mask], torch.ones_like(total[mask]))
    assert (resp.r[~mask] == 0).all() and (resp.clutter[~mask] == 0).all()


@st.composite
def spectral_inputs(draw):
    """A complex mixture down to 1e-30 (near silence), responsibilities, and noise and prior variances."""
    B, T, F, N = draw(dims)
    magnitude = log_uniform(draw, (B, T, F), -30, 3)
    phase = torch.as_tensor(draw(arrays(np.float64, (B, T, F), elements=st.floats(-math.pi, math.pi)))).float()
    mix = torch.polar(magnitude, phase)  # (B, T, F) complex
    eta = torch.softmax(torch.as_tensor(draw(arrays(np.float64, (B, T, F, N), elements=st.floats(-30, 30)))),
                        dim=-1).float()
    noise_var = log_uniform(draw, (B, T, F), -15, 6)
    prior_var = log_uniform(draw, (B, T, N, F), -15, 6)
    log_prior = torch.log_softmax(torch.as_tensor(draw(arrays(np.float64, (N,), elements=st.floats(-20, 20)))),
                                  dim=0).float()
    return mix, eta, noise_var, prior_var, log_prior


@given(spectral_inputs())
@SETTINGS
def test_e_step_s_wiener_has_finite_means_and_positive_variances(inputs) -> None:
    mix, eta, noise_var, prior_var, _ = inputs
    q = e_step_s_wiener(mix, eta, noise_var, prior_var)
    B, T, F, N = eta.shape
    mean = source_mean(q, mix)
    assert mean.shape == q.var.shape == q.gain.shape == (B, T, N, F)
    assert torch.isfinite(mean.real).all() and torch.isfinite(mean.imag).all()
    assert ((q.gain >= 0) & (q.gain <= 1)).all()  # a Wiener-like gain: never amplifies the mixture
    assert torch.isfinite(q.var).all() and (q.var > 0).all()
    assert (q.var <= prior_var * (1 + 1e-5)).all()  # observing a source never widens its posterior


@given(spectral_inputs())
@SETTINGS
def test_e_step_w_spectral_is_finite_and_normalised(inputs) -> None:
    mix, eta, noise_var, prior_var, log_prior = inputs
    q = e_step_s_wiener(mix, eta, noise_var, prior_var)
    loglik = expected_log_likelihood_spectral(mix, noise_var, q)  # (B, T, F, N)
    for temperature in (1.0, 0.008):
        new_eta = e_step_w_spectral(loglik, log_prior, temperature)
        assert new_eta.shape == eta.shape
        assert torch.isfinite(new_eta).all() and (new_eta >= 0).all()
        total = new_eta.sum(-1)
        torch.testing.assert_close(total, torch.ones_like(total))


# ------------------------------------------------------------------------------ chained as in the VEM

def uniform(draw, shape, low: float, high: float) -> torch.Tensor:
    """U(low, high) elementwise, float32.  Shape: ``shape``."""
    return torch.as_tensor(draw(arrays(np.float64, shape, elements=st.floats(low, high))), dtype=torch.float32)


@st.composite
def tracking_scene(draw):
    """Boxes of size ~S at positions up to ~20 S for one box scale S in 1e-4..1e4, noisy detections
    (some missing: NaN rows), Phi = rho (w, h, w, h)^2 of each detection (NaN where missing) and a
    Gaussian prior around the true boxes with variance S^2 10^U(-6, 1)."""
    B, T, K, N = draw(dims)
    scale = 10.0 ** draw(st.floats(-4, 4))
    corner = scale * uniform(draw, (B, T, N, 2), 0, 20)
    size = scale * uniform(draw, (B, T, N, 2), 0.3, 3)
    boxes = torch.cat([corner, corner + size], dim=-1)  # (B, T, N, 4) xyxy
    source = torch.as_tensor(draw(arrays(np.int64, (B, T, K), elements=st.integers(0, N - 1))))
    o = torch.gather(boxes, 2, source[..., None].expand(B, T, K, 4))  # (B, T, K, 4): each detection of a source
    o = o + scale * uniform(draw, (B, T, K, 4), -0.5, 0.5)
    mask = torch.as_tensor(draw(arrays(np.bool_, (B, T, K))))
    o[~mask] = float("nan")
    det_size = (o[..., 2:] - o[..., :2]).abs().clamp_min(1e-3 * scale)  # (B, T, K, 2)
    box_scale = torch.cat([det_size, det_size], dim=-1)  # (B, T, K, 4), NaN where missing
    rho = 10.0 ** draw(st.floats(-6, 0))
    obs_var = rho * box_scale ** 2
    prior = Gauss(boxes + scale * uniform(draw, (B, T, N, 4), -1, 1),
                  scale ** 2 * log_uniform(draw, (B, T, N, 4), -6, 1))
    log_prior = torch.log_softmax(uniform(draw, (N,), -5, 5), dim=0)
    clutter = draw(st.one_of(st.none(), st.floats(-10.0, -0.1)))
    temperature = draw(st.sampled_from([1.0, 0.008]))
    return o, mask, obs_var, box_scale, prior, log_prior, clutter, temperature, scale


@given(tracking_scene())
@SETTINGS
def test_tracking_steps_chained_stay_finite_normalised_and_bounded(scene) -> None:
    o, mask, obs_var, box_scale, prior, log_prior, clutter, temperature, scale = scene
    # E-W
    resp = e_step_w(expected_log_likelihood(o, obs_var, prior), mask, log_prior, clutter_log_prior=clutter,
                    clutter_log_density=-math.log(1e4), temperature=temperature)
    assert torch.isfinite(resp.r).all() and (resp.r >= 0).all()
    total = resp.r.sum(-1) + resp.clutter  # (B, T, K)
    torch.testing.assert_close(total[mask], torch.ones_like(total[mask]))
    # E-S: a product of Gaussians, so the mean lies between the prior mean and the observations
    prec, info = source_messages(o, mask, resp.r, obs_var)
    assert torch.isfinite(prec).all() and torch.isfinite(info).all() and (prec >= 0).all()
    post = e_step_s(prior, prec, info)
    assert torch.isfinite(post.mean).all() and torch.isfinite(post.var).all()
    assert (post.var > 0).all() and (post.var <= prior.var * (1 + 1e-5)).all()
    big = torch.finfo(o.dtype).max
    o_lo = torch.where(mask[..., None], o, big).amin(dim=2, keepdim=True)  # (B, T, 1, 4) over detections
    o_hi = torch.where(mask[..., None], o, -big).amax(dim=2, keepdim=True)
    tol = 1e-4 * 30 * scale
    assert (post.mean >= torch.minimum(prior.mean, o_lo) - tol).all()
    assert (post.mean <= torch.maximum(prior.mean, o_hi) + tol).all()
    # M-Phi
    rho = m_step_obs_scale(o, mask, resp.r, post, box_scale)
    assert torch.isfinite(rho).all() and (rho >= 1e-6).all() and (rho <= 1.0).all()


@st.composite
def spectral_scene(draw):
    """Mixture powers 10^U(-12, 4) per bin (near silence included) with some bins exactly silent,
    v^x = lambda (|X|^2 + eps) as the loop sets it, prior variances 10^U(-12, 4), responsibilities."""
    B, T, F, N = draw(dims)
    power = log_uniform(draw, (B, T, F), -12, 4)
    silent = torch.as_tensor(draw(arrays(np.bool_, (B, T, F))))
    silent[:, 0, 0] = False  # a mixture is never all zero (read_audio refuses it)
    power = torch.where(silent, torch.zeros_like(power), power)
    phase = uniform(draw, (B, T, F), -math.pi, math.pi)
    mix = torch.polar(power.sqrt(), phase)  # (B, T, F) complex
    eps = 1e-6 * power.mean(dim=(1, 2)).clamp_min(1e-20)  # (B,) as spectral_vem sets it
    ratio = 10.0 ** draw(st.floats(-4, 0))
    noise_var = ratio * (power + eps[:, None, None])
    prior_var = log_uniform(draw, (B, T, N, F), -12, 4)
    eta = torch.softmax(uniform(draw, (B, T, F, N), -30, 30), dim=-1)
    log_prior = torch.log_softmax(uniform(draw, (N,), -5, 5), dim=0)
    return mix, eta, noise_var, prior_var, log_prior, eps


@given(spectral_scene(), st.sampled_from(["wiener", "mixture"]))
@SETTINGS
def test_spectral_steps_chained_stay_finite_normalised_and_bounded(scene, e_step) -> None:
    mix, eta, noise_var, prior_var, log_prior, eps = scene
    q = (e_step_s_wiener if e_step == "wiener" else e_step_s_mixture)(mix, eta, noise_var, prior_var)
    mean = source_mean(q, mix)
    assert torch.isfinite(mean.real).all() and torch.isfinite(mean.imag).all()
    assert torch.isfinite(q.var).all() and (q.var > 0).all()
    for loglik in (expected_log_likelihood_spectral(mix, noise_var, q),
                   marginal_log_likelihood_spectral(mix, noise_var, prior_var)):
        assert torch.isfinite(loglik).all()
        for temperature in (1.0, 0.008):
            new_eta = e_step_w_spectral(loglik, log_prior, temperature)
            assert torch.isfinite(new_eta).all() and (new_eta >= 0).all()
            torch.testing.assert_close(new_eta.sum(-1), torch.ones_like(new_eta[..., 0]))
    ratio = m_step_noise_ratio(mix, eta, q, eps)
    assert torch.isfinite(ratio).all() and (ratio >= 1e-4).all() and (ratio <= 1.0).all()
