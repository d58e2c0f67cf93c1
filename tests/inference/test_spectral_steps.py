"""Audio E/M steps: closed forms, vectorised = loop, the M-step maximises its term."""

import math

import torch

from mixdvae.inference.spectral_steps import (
    dirichlet_log_density,
    e_step_s_wiener,
    e_step_w_spectral,
    expected_log_likelihood_spectral,
    m_step_frequency_prior,
    m_step_noise_ratio,
    prior_blocks,
    source_elbo_spectral,
    source_mean,
    SpectralSources,
)

F64 = torch.float64


def _problem(B=2, T=4, F=5, N=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    mix = torch.complex(torch.randn(B, T, F, generator=g, dtype=F64), torch.randn(B, T, F, generator=g, dtype=F64))
    vx = 0.01 + 0.1 * torch.rand(B, T, F, generator=g, dtype=F64)
    vs = 0.05 + torch.rand(B, T, N, F, generator=g, dtype=F64)
    eta = torch.softmax(torch.randn(B, T, F, N, generator=g, dtype=F64), -1)
    q = SpectralSources(
        torch.complex(torch.randn(B, T, N, F, generator=g, dtype=F64), torch.randn(B, T, N, F, generator=g, dtype=F64)),
        0.01 + torch.rand(B, T, N, F, generator=g, dtype=F64),
    )
    return mix, vx, vs, eta, q


def test_one_source_no_assignment_uncertainty_is_the_wiener_filter():
    # CN(s; 0, vs) CN(X; s, vx) ∝ CN(s; vs / (vs + vx) X, vs vx / (vs + vx))
    mix, vx, vs, _, _ = _problem(N=1)
    eta = torch.ones(*mix.shape, 1, dtype=F64)
    q = e_step_s_wiener(mix, eta, vx, vs)
    assert torch.allclose(source_mean(q, mix)[:, :, 0], vs[:, :, 0] / (vs[:, :, 0] + vx) * mix)
    assert torch.allclose(q.var[:, :, 0], vs[:, :, 0] * vx / (vs[:, :, 0] + vx))


def test_e_step_s_matches_the_precision_form_and_eta_zero_gives_the_prior():
    mix, vx, vs, eta, _ = _problem()
    q = e_step_s_wiener(mix, eta, vx, vs)
    e = eta.transpose(-1, -2)
    prec = e / vx[:, :, None] + 1 / vs
    assert torch.allclose(q.var, 1 / prec)
    assert torch.allclose(source_mean(q, mix), (e * mix[:, :, None] / vx[:, :, None]) / prec)
    q0 = e_step_s_wiener(mix, torch.zeros_like(eta), vx, vs)
    assert torch.equal(source_mean(q0, mix), torch.zeros_like(source_mean(q0, mix))) and torch.allclose(q0.var, vs)


def test_expected_log_likelihood_and_e_step_w_match_a_loop():
    mix, vx, _, _, q = _problem()
    ll = expected_log_likelihood_spectral(mix, vx, q)
    log_prior = torch.log(torch.tensor([0.2, 0.3, 0.5], dtype=F64))
    eta = e_step_w_spectral(ll, log_prior)
    B, T, F, N = ll.shape
    for b in range(B):
        for t in range(T):
            for f in range(F):
                logits = []
                for n in range(N):
                    r = abs(mix[b, t, f] - q.mean[b, t, n, f]) ** 2 + q.var[b, t, n, f]
                    v = -math.log(math.pi * vx[b, t, f]) - r / vx[b, t, f]
                    assert math.isclose(ll[b, t, f, n].item(), v.item(), rel_tol=1e-12)
                    logits.append(log_prior[n].item() + v.item())
                m = max(logits)
                p = [math.exp(x - m) for x in logits]
                for n in range(N):
                    assert math.isclose(eta[b, t, f, n].item(), p[n] / sum(p), rel_tol=1e-9)


def test_e_step_w_stays_finite_and_normalised_for_extreme_inputs():
    ll = torch.tensor([[[[-1e30, 0.0], [-1e4, -1e4 - 50], [1e3, -1e3]]]], dtype=torch.float32)
    eta = e_step_w_spectral(ll, torch.log(torch.tensor([0.5, 0.5])))
    assert torch.isfinite(eta).all()
    assert torch.allclose(eta.sum(-1), torch.ones(1, 1, 3))


def test_noise_ratio_m_step_maximises_the_expected_log_likelihood():
    mix, _, _, eta, q = _problem(B=1)
    eps = torch.tensor([1e-6], dtype=F64)
    lam = m_step_noise_ratio(mix, eta, q, eps, floor=1e-9, ceil=1e9)
    ref = mix.abs() ** 2 + eps

    def objective(value: float) -> float:
        return (eta * expected_log_likelihood_spectral(mix, value * ref, q)).sum().item()

    best = objective(lam.item())
    for factor in (0.9, 0.99, 1.01, 1.1):
        assert objective(lam.item() * factor) < best


def test_marginal_log_likelihood_is_the_complex_gaussian_with_summed_variances():
    from mixdvae.inference.spectral_steps import marginal_log_likelihood_spectral

    mix, vx, vs, _, _ = _problem()
    ll = marginal_log_likelihood_spectral(mix, vx, vs)
    B, T, F, N = ll.shape
    for b, t, f, n in [(0, 0, 0, 0), (1, 3, 4, 2), (0, 2, 1, 1)]:
        v = vs[b, t, n, f] + vx[b, t, f]
        expected = -math.log(math.pi * v) - abs(mix[b, t, f]) ** 2 / v
        assert math.isclose(ll[b, t, f, n].item(), expected.item(), rel_tol=1e-12)


def test_mixture_posterior_matches_the_moments_of_the_two_component_mixture():
    from mixdvae.inference.spectral_steps import e_step_s_mixture

    mix, vx, vs, eta, _ = _problem()
    q = e_step_s_mixture(mix, eta, vx, vs)
    e = eta.transpose(-1, -2)
    g = vs / (vs + vx[:, :, None])
    m1, v1 = g * mix[:, :, None], g * vx[:, :, None]  # p(s | X, w = n)
    # mixture e CN(m1, v1) + (1 - e) CN(0, vs): mean e m1, E|s|^2 = e (|m1|^2 + v1) + (1 - e) vs
    assert torch.allclose(source_mean(q, mix), e * m1)
    second = e * (m1.abs() ** 2 + v1) + (1 - e) * vs
    assert torch.allclose(source_mean(q, mix).abs() ** 2 + q.var, second)
    # certain assignment: the Wiener posterior; impossible assignment: the prior
    q1 = e_step_s_mixture(mix, torch.ones_like(eta), vx, vs)
    assert torch.allclose(source_mean(q1, mix), m1) and torch.allclose(q1.var, v1)
    q0 = e_step_s_mixture(mix, torch.zeros_like(eta), vx, vs)
    assert torch.allclose(q0.var, vs) and torch.equal(q0.gain, torch.zeros_like(q0.gain))


def test_frequency_prior_m_step_maximises_its_map_objective():
    """pi_bfn maximises sum_t eta_ftn log pi_b(t)fn + sum_b (a_b / N) sum log pi_bfn over the simplex:
    no random or nearby point scores higher; concentration 0 gives the mean of eta over each block."""
    _, _, _, eta, _ = _problem(B=2, T=7, F=5, N=3, seed=4)
    blocks = prior_blocks(7, 3)  # round(7 / 3) = 2 blocks: frames 0-3 and 4-6
    assert blocks.tolist() == [0, 0, 0, 0, 1, 1, 1]
    c = 0.4

    def objective(log_pi):  # (B, nb, F, N) -> (B,)
        return (eta * log_pi[:, blocks]).sum(dim=(1, 2, 3)) + dirichlet_log_density(log_pi, blocks, c)

    log_pi = m_step_frequency_prior(eta, blocks, c)
    assert log_pi.shape == (2, 2, 5, 3)
    assert torch.allclose(log_pi.exp().sum(-1), torch.ones(2, 2, 5, dtype=F64))
    best = objective(log_pi)
    g = torch.Generator().manual_seed(1)
    for _ in range(20):
        other = torch.log_softmax(log_pi + 0.3 * torch.randn(log_pi.shape, generator=g, dtype=F64), -1)
        assert (objective(other) < best).all()
        assert (objective(torch.log_softmax(torch.randn(log_pi.shape, generator=g, dtype=F64), -1)) < best).all()
    ml = m_step_frequency_prior(eta, blocks, 0.0).exp()
    assert torch.allclose(ml[:, 0], eta[:, :4].mean(1)) and torch.allclose(ml[:, 1], eta[:, 4:].mean(1))
    # one block (T <= 1.5 block) is one pi per frequency; a large concentration pulls pi to 1/N
    assert prior_blocks(7, 10).tolist() == [0] * 7
    assert torch.allclose(m_step_frequency_prior(eta, blocks, 1e9).exp(), torch.full_like(log_pi, 1 / 3), atol=1e-6)


def test_frequency_prior_shifts_the_assignment_by_its_log():
    """E-W with a per-frame, per-frequency prior: eta ∝ pi_tfn exp(c loglik)."""
    mix, vx, vs, _, q = _problem()
    ll = expected_log_likelihood_spectral(mix, vx, q)  # (B, T, F, N)
    log_pi = torch.log_softmax(torch.randn(2, 4, 5, 3, generator=torch.Generator().manual_seed(2), dtype=F64), -1)
    eta = e_step_w_spectral(ll, log_pi, 0.5)
    assert torch.allclose(eta, torch.softmax(log_pi + 0.5 * ll, -1))


def test_source_elbo_is_the_prior_log_likelihood_plus_the_entropy_of_a_loop():
    """E_q log CN(s; 0, v) + H[q] for q = CN(m, gamma), against the closed forms bin by bin."""
    g = torch.Generator().manual_seed(3)
    B, T, N, F = 2, 3, 2, 4
    mean = torch.complex(torch.randn(B, T, N, F, generator=g, dtype=F64), torch.randn(B, T, N, F, generator=g, dtype=F64))
    var = torch.rand(B, T, N, F, generator=g, dtype=F64) + 0.1
    v = torch.rand(B, T, N, F, generator=g, dtype=F64) + 0.1
    q = SpectralSources(mean, var)
    loop = torch.zeros(B, dtype=torch.float64)
    for b in range(B):
        for idx in torch.cartesian_prod(*(torch.arange(k) for k in (T, N, F))):
            t, n, f = idx.tolist()
            m2, gam, vs = abs(complex(mean[b, t, n, f])) ** 2, float(var[b, t, n, f]), float(v[b, t, n, f])
            loop[b] += -math.log(math.pi * vs) - (m2 + gam) / vs + math.log(math.pi * math.e * gam)
    torch.testing.assert_close(source_elbo_spectral(q, v), loop)


def test_a_gain_on_the_mixture_gives_the_same_terms_as_its_complex_mean():
    """q held as m = c X (real c) and q held as the complex m itself: the same E_q|s|^2, E_q|X - s|^2,
    expected log-likelihood, source ELBO and noise M-step."""
    from mixdvae.inference.spectral_steps import expected_power, residual_power

    mix, vx, vs, eta, _ = _problem()
    q = e_step_s_wiener(mix, eta, vx, vs)
    assert q.mean is None and q.gain is not None and not torch.is_complex(q.gain)
    full = SpectralSources(source_mean(q, mix), q.var)
    power = mix.abs() ** 2
    torch.testing.assert_close(expected_power(q, power), (full.mean.abs() ** 2 + full.var))
    torch.testing.assert_close(residual_power(mix, q), (mix[:, :, None] - full.mean).abs() ** 2 + full.var)
    torch.testing.assert_close(expected_log_likelihood_spectral(mix, vx, q, power),
                               expected_log_likelihood_spectral(mix, vx, full))
    torch.testing.assert_close(source_elbo_spectral(q, vs, power), source_elbo_spectral(full, vs))
    eps = torch.full((mix.shape[0],), 1e-3, dtype=F64)
    torch.testing.assert_close(m_step_noise_ratio(mix, eta, q, eps), m_step_noise_ratio(mix, eta, full, eps))
    try:
        expected_power(q)
    except ValueError as err:
        assert "pass power" in str(err)
    else:
        raise AssertionError("expected_power of a gain without |X|^2 must refuse")
