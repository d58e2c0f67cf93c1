"""Property tests of the E-steps: for any finite inputs (box sizes from 1e-6 to 1e6, spectra down to
1e-30) the responsibilities are finite and sum to 1 over the sources, and the Wiener E-S step gives
finite means and positive variances."""

from __future__ import annotations

import math

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mixdvae.dvae.heads import Gauss
from mixdvae.inference.spectral_steps import (
    e_step_s_wiener,
    e_step_w_spectral,
    expected_log_likelihood_spectral,
)
from mixdvae.inference.steps import e_step_w, expected_log_likelihood

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
    assert q.mean.shape == q.var.shape == (B, T, N, F)
    assert torch.isfinite(q.mean.real).all() and torch.isfinite(q.mean.imag).all()
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
