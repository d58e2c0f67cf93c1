"""E/M steps: closed forms and vectorised = loop."""

import math

import pytest
import torch

from mixdvae.dvae.heads import Gauss
from mixdvae.inference.steps import (
    e_step_s,
    e_step_w,
    expected_log_likelihood,
    m_step_obs_scale,
    source_messages,
)

F64 = torch.float64


def _problem(B=3, T=5, K=4, N=3, D=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    o = torch.rand(B, T, K, D, generator=g, dtype=F64)
    mask = torch.rand(B, T, K, generator=g) > 0.25
    o = torch.where(mask[..., None], o, torch.full_like(o, float("nan")))
    phi = 0.01 + 0.05 * torch.rand(B, T, K, D, generator=g, dtype=F64)
    s = Gauss(torch.rand(B, T, N, D, generator=g, dtype=F64), 0.001 + 0.01 * torch.rand(B, T, N, D, generator=g, dtype=F64))
    return o, mask, phi, s


def test_e_step_s_is_product_of_two_gaussians_for_one_source_one_observation():
    mu, s2 = torch.tensor([0.3], dtype=F64), torch.tensor([0.04], dtype=F64)
    o, phi = torch.tensor([0.5], dtype=F64), torch.tensor([0.01], dtype=F64)
    post = e_step_s(Gauss(mu, s2), 1.0 / phi, o / phi)
    # N(mu, s2) N(o, phi) ∝ N((mu phi + o s2) / (s2 + phi), s2 phi / (s2 + phi))
    assert torch.allclose(post.mean, (mu * phi + o * s2) / (s2 + phi))
    assert torch.allclose(post.var, s2 * phi / (s2 + phi))


def test_e_step_s_through_messages_matches_closed_form_with_r_one():
    o = torch.tensor([0.2, 0.3, 0.4, 0.6], dtype=F64).reshape(1, 1, 1, 4)
    mask = torch.ones(1, 1, 1, dtype=torch.bool)
    phi = torch.full((1, 1, 1, 4), 0.02, dtype=F64)
    r = torch.ones(1, 1, 1, 1, dtype=F64)
    prec, info = source_messages(o, mask, r, phi)
    prior = Gauss(torch.full((1, 1, 1, 4), 0.5, dtype=F64), torch.full((1, 1, 1, 4), 0.06, dtype=F64))
    post = e_step_s(prior, prec, info)
    expected_mean = (0.5 * 0.02 + o.reshape(1, 1, 1, 4) * 0.06) / 0.08
    assert torch.allclose(post.mean, expected_mean)
    assert torch.allclose(post.var, torch.full_like(post.var, 0.06 * 0.02 / 0.08))


def test_expected_log_likelihood_matches_loop():
    o, mask, phi, s = _problem()
    ll = expected_log_likelihood(o, phi, s)
    B, T, K, N = ll.shape
    for b in range(B):
        for t in range(T):
            for k in range(K):
                for n in range(N):
                    if not mask[b, t, k]:
                        continue
                    val = 0.0
                    for d in range(4):
                        p = phi[b, t, k, d].item()
                        val += -0.5 * (math.log(2 * math.pi * p) + ((o[b, t, k, d] - s.mean[b, t, n, d]) ** 2 + s.var[b, t, n, d]) / p)
                    assert ll[b, t, k, n].item() == pytest.approx(float(val), rel=1e-10)


@pytest.mark.parametrize("clutter", [None, math.log(0.1)])
def test_e_step_w_matches_loop_and_is_normalised(clutter):
    o, mask, phi, s = _problem()
    ll = expected_log_likelihood(o, phi, s)
    log_prior = torch.log(torch.tensor([0.2, 0.3, 0.5], dtype=F64))
    resp = e_step_w(ll, mask, log_prior, clutter, clutter_log_density=0.7, temperature=0.5)
    B, T, K, N = ll.shape
    for b in range(B):
        for t in range(T):
            for k in range(K):
                total = resp.r[b, t, k].sum() + resp.clutter[b, t, k]
                if not mask[b, t, k]:
                    assert total.item() == 0.0
                    continue
                logits = [log_prior[n].item() + 0.5 * ll[b, t, k, n].item() for n in range(N)]
                if clutter is not None:
                    logits.append(clutter + 0.5 * 0.7)
                mx = max(logits)
                z = sum(math.exp(x - mx) for x in logits)
                for n in range(N):
                    assert resp.r[b, t, k, n].item() == pytest.approx(math.exp(logits[n] - mx) / z, rel=1e-9)
                assert total.item() == pytest.approx(1.0)


def test_e_step_w_survives_extreme_distances():
    o, mask, phi, s = _problem()
    far = Gauss(s.mean + 1e6, s.var)
    resp = e_step_w(expected_log_likelihood(o, phi * 1e-6, far), mask, torch.zeros(3, dtype=F64), math.log(0.1))
    assert torch.isfinite(resp.r).all() and torch.isfinite(resp.clutter).all()
    sums = resp.r.sum(-1) + resp.clutter
    assert torch.allclose(sums[mask], torch.ones_like(sums[mask]))


def test_source_messages_match_loop():
    o, mask, phi, s = _problem()
    g = torch.Generator().manual_seed(1)
    r = torch.softmax(torch.randn(3, 5, 4, 3, generator=g, dtype=F64), -1)
    prec, info = source_messages(o, mask, r, phi)
    B, T, K, D = o.shape
    for b in range(B):
        for t in range(T):
            for n in range(3):
                p = torch.zeros(D, dtype=F64)
                i = torch.zeros(D, dtype=F64)
                for k in range(K):
                    if mask[b, t, k]:
                        p += r[b, t, k, n] / phi[b, t, k]
                        i += r[b, t, k, n] * o[b, t, k] / phi[b, t, k]
                assert torch.allclose(prec[b, t, n], p) and torch.allclose(info[b, t, n], i)


def test_m_step_obs_scale_is_the_weighted_mean_and_maximises_the_expected_likelihood():
    o, mask, phi, s = _problem(B=1)
    scale = 0.05 + torch.rand(o.shape, generator=torch.Generator().manual_seed(3), dtype=F64)
    r = torch.softmax(torch.randn(1, 5, 4, 3, generator=torch.Generator().manual_seed(2), dtype=F64), -1)
    rho = m_step_obs_scale(o, mask, r, s, scale, floor=1e-12, ceil=1e6)

    def objective(rho_d):
        ll = expected_log_likelihood(o, rho_d[:, None, None, :] * scale ** 2, s)
        return (torch.nan_to_num(ll) * r * mask[..., None]).sum()

    best = objective(rho)
    for factor in (0.9, 1.1):
        assert objective(rho * factor) < best
