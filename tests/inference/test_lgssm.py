"""cv_smoother against the dense joint Gaussian of x_{1:T} (the dynamax oracle) and closed forms."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mixdvae.errors import NumericalError
from mixdvae.inference.lgssm import cv_bias_smoother, cv_smoother

A = np.array([[1.0, 1.0], [0.0, 1.0]])


def dense_prior(T: int, q: float, mu0: float, var0_p: float, var0_v: float, offset=None, r=None) -> tuple[np.ndarray, np.ndarray]:
    """Mean (2T,) and covariance (2T, 2T) of x_{1:T} = [p_1, v_1, ..., p_T, v_T], built from
    E x_t = A E x_{t-1} + a_t [1, 1], Cov(x_t) = A Cov(x_{t-1}) A^T + Q + r_t [[1, 1], [1, 1]] and
    Cov(x_t, x_s) = A^{t-s} Cov(x_s) for t >= s (a_t = r_t = 0 unless given)."""
    Q = q * np.array([[1 / 3, 1 / 2], [1 / 2, 1.0]])
    offset = np.zeros(T) if offset is None else offset
    r = np.zeros(T) if r is None else r
    means, covs = [np.array([mu0, 0.0])], [np.diag([var0_p, var0_v])]
    for t in range(1, T):
        means.append(A @ means[-1] + offset[t])
        covs.append(A @ covs[-1] @ A.T + Q + r[t] * np.ones((2, 2)))
    sigma = np.zeros((2 * T, 2 * T))
    for s in range(T):
        block = covs[s]
        for t in range(s, T):
            sigma[2 * t:2 * t + 2, 2 * s:2 * s + 2] = block
            sigma[2 * s:2 * s + 2, 2 * t:2 * t + 2] = block.T
            block = A @ block
    return np.concatenate(means), sigma


def dense_posterior(lam, info, q, mu0, var0_p, var0_v):
    """Posterior mean, covariance and log ∫ N(x; mu, Sigma) exp(info^T H x - x^T H^T diag(lam) H x / 2) dx.

    With Lambda = Sigma^-1 + H^T diag(lam) H and h = Sigma^-1 mu + H^T info, completing the square:
    log Z = h^T Lambda^-1 h / 2 - log det(Lambda) / 2 - mu^T Sigma^-1 mu / 2 - log det(Sigma) / 2.
    """
    T = len(lam)
    mu, sigma = dense_prior(T, q, mu0, var0_p, var0_v)
    H = np.zeros((T, 2 * T))
    H[np.arange(T), 2 * np.arange(T)] = 1.0
    prec_prior = np.linalg.inv(sigma)
    prec = prec_prior + H.T @ np.diag(lam) @ H
    h = prec_prior @ mu + H.T @ info
    cov = np.linalg.inv(prec)
    mean = cov @ h
    log_z = (0.5 * h @ mean - 0.5 * np.linalg.slogdet(prec)[1]
             - 0.5 * mu @ prec_prior @ mu - 0.5 * np.linalg.slogdet(sigma)[1])
    return mean, cov, log_z


def _random_problem(rng: np.random.Generator, T: int, missing: list[int], tilt: bool = False):
    y = rng.normal(0.5, 0.2, T)
    lam = rng.uniform(20.0, 400.0, T)
    lam[missing] = 0.0
    info = lam * y
    if tilt:  # lam = 0 but info != 0: an exponential tilt, still integrable
        info[missing] = rng.normal(0.0, 1.0, len(missing))
    params = dict(q=rng.uniform(1e-4, 1e-2), mu0=rng.normal(0.5, 0.1), var0_p=rng.uniform(0.01, 0.1),
                  var0_v=rng.uniform(1e-3, 1e-2))
    return lam, info, params


@pytest.mark.parametrize("missing, tilt", [([], False), ([1, 4], False), ([0, 5], False), ([0, 1, 2, 3, 4, 5], False),
                                           ([2, 3], True)])
def test_matches_dense_posterior_and_log_norm(missing, tilt):
    rng = np.random.default_rng(len(missing) + 10 * tilt)
    T = 6
    lam, info, params = _random_problem(rng, T, missing, tilt)
    res = cv_smoother(torch.tensor(lam), torch.tensor(info), **params)
    mean, cov, log_z = dense_posterior(lam, info, **params)
    var = np.diag(cov)
    np.testing.assert_allclose(res.mean_p.numpy(), mean[0::2], rtol=0, atol=1e-8)
    np.testing.assert_allclose(res.mean_v.numpy(), mean[1::2], rtol=0, atol=1e-8)
    np.testing.assert_allclose(res.var_p.numpy(), var[0::2], rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(res.var_v.numpy(), var[1::2], rtol=1e-8, atol=1e-12)
    cov_pv = cov[np.arange(0, 2 * T, 2), np.arange(1, 2 * T, 2)]
    np.testing.assert_allclose(res.cov_pv.numpy(), cov_pv, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(float(res.log_norm), log_z, rtol=0, atol=1e-8)
    positive = lam > 0
    centred = log_z - 0.5 * np.sum(info[positive] ** 2 / lam[positive])
    np.testing.assert_allclose(float(res.log_norm_centred), centred, rtol=0, atol=1e-8)
    if len(missing) == T and not tilt:
        assert float(res.log_norm) == 0.0


def test_log_norm_centred_is_marginal_likelihood():
    """With every lam_t > 0: log_norm_centred = log N(y; H mu, H Sigma H^T + R) + sum_t log(2 pi / lam_t) / 2."""
    rng = np.random.default_rng(3)
    T = 6
    lam, info, params = _random_problem(rng, T, [])
    y = info / lam
    mu, sigma = dense_prior(T, **params)
    cov_y = sigma[0::2, 0::2] + np.diag(1.0 / lam)
    diff = y - mu[0::2]
    log_n = -0.5 * (diff @ np.linalg.solve(cov_y, diff) + np.linalg.slogdet(2 * np.pi * cov_y)[1])
    expected = log_n + 0.5 * np.sum(np.log(2 * np.pi / lam))
    res = cv_smoother(torch.tensor(lam), torch.tensor(info), **params)
    np.testing.assert_allclose(float(res.log_norm_centred), expected, rtol=0, atol=1e-8)


def test_gradient_of_log_norm_gives_moments():
    """log Z is the log partition function of (info, -lam/2): d/d info_t = E[p_t], d/d lam_t = -E[p_t^2] / 2."""
    rng = np.random.default_rng(4)
    lam_np, info_np, params = _random_problem(rng, 6, [2])
    lam = torch.tensor(lam_np, requires_grad=True)
    info = torch.tensor(info_np, requires_grad=True)
    res = cv_smoother(lam, info, **params)
    d_lam, d_info = torch.autograd.grad(res.log_norm, (lam, info))
    np.testing.assert_allclose(d_info.numpy(), res.mean_p.detach().numpy(), atol=1e-9)
    second = res.mean_p.detach() ** 2 + res.var_p.detach()
    np.testing.assert_allclose(d_lam.numpy(), -0.5 * second.numpy(), atol=1e-9)


def test_batch_is_vectorised_loop():
    rng = np.random.default_rng(5)
    B, N, D, T = 2, 3, 4, 7
    lam = rng.uniform(0, 300, (B, N, D, T)) * (rng.uniform(size=(B, N, D, T)) > 0.3)
    info = lam * rng.normal(0.5, 0.2, (B, N, D, T))
    q = rng.uniform(1e-4, 1e-2, (B, N, D))
    mu0 = rng.normal(0.5, 0.1, (B, N, 1))  # broadcast over D
    var0_p = 0.05  # scalar
    var0_v = rng.uniform(1e-3, 1e-2, (D,))  # broadcast over B, N
    res = cv_smoother(torch.tensor(lam), torch.tensor(info), torch.tensor(q), torch.tensor(mu0), var0_p,
                      torch.tensor(var0_v))
    assert res.mean_p.shape == (B, N, D, T) and res.log_norm.shape == (B, N, D)
    for b, n, d in [(0, 0, 0), (1, 2, 3), (0, 1, 2), (1, 0, 1)]:
        one = cv_smoother(torch.tensor(lam[b, n, d]), torch.tensor(info[b, n, d]), float(q[b, n, d]),
                          float(mu0[b, n, 0]), var0_p, float(var0_v[d]))
        for field in one._fields:
            torch.testing.assert_close(getattr(res, field)[b, n, d], getattr(one, field), rtol=1e-12, atol=1e-12)


def test_rigid_line_is_bayesian_linear_regression():
    """q = 0: p_t = p_1 + (t - 1) v_1 exactly, so the posterior is Bayesian linear regression."""
    rng = np.random.default_rng(6)
    T = 40
    t = np.arange(T, dtype=np.float64)
    lam = np.full(T, 1.0 / 0.01 ** 2)
    lam[rng.choice(T, 10, replace=False)] = 0.0
    y = 0.3 + 0.004 * t + rng.normal(0, 0.01, T)
    info = lam * y
    mu0, var0_p, var0_v = 0.5, 0.1, 0.01
    X = np.stack([np.ones(T), t], axis=1)
    prec = np.diag([1 / var0_p, 1 / var0_v]) + X.T @ (lam[:, None] * X)
    theta_cov = np.linalg.inv(prec)
    theta = theta_cov @ (np.array([mu0 / var0_p, 0.0]) + X.T @ info)
    res = cv_smoother(torch.tensor(lam), torch.tensor(info), 0.0, mu0, var0_p, var0_v)
    np.testing.assert_allclose(res.mean_p.numpy(), X @ theta, atol=1e-9)
    np.testing.assert_allclose(res.mean_v.numpy(), np.full(T, theta[1]), atol=1e-9)
    np.testing.assert_allclose(res.var_p.numpy(), np.einsum("ti,ij,tj->t", X, theta_cov, X), rtol=1e-6)


def test_small_q_recovers_least_squares_line():
    rng = np.random.default_rng(7)
    T = 50
    t = np.arange(T, dtype=np.float64)
    y = -0.2 + 0.01 * t + rng.normal(0, 0.02, T)
    lam = np.full(T, 1.0 / 0.02 ** 2)
    res = cv_smoother(torch.tensor(lam), torch.tensor(lam * y), 1e-14, 0.0, 1e8, 1e8)
    slope, intercept = np.polyfit(t, y, 1)
    np.testing.assert_allclose(res.mean_p.numpy(), intercept + slope * t, atol=1e-6)
    np.testing.assert_allclose(res.mean_v.numpy(), np.full(T, slope), atol=1e-7)


def test_float32_agrees_with_float64_on_box_scales():
    """Normalised boxes: positions ~0.5, Phi = (0.04 * 0.1)^2, T = 60; float32 stays close to float64."""
    rng = np.random.default_rng(8)
    shape = (16, 3, 4, 60)
    lam = np.full(shape, 1.0 / (0.04 * 0.1) ** 2) * (rng.uniform(size=shape) > 0.2)
    y = 0.5 + 0.002 * np.arange(60) + rng.normal(0, 0.004, shape)
    args = (lam, lam * y, 1e-5, 0.5, 0.01, 1e-4)
    r64 = cv_smoother(*(torch.tensor(a) for a in args[:2]), *args[2:])
    r32 = cv_smoother(*(torch.tensor(a, dtype=torch.float32) for a in args[:2]), *args[2:])
    assert r32.mean_p.dtype == torch.float32
    np.testing.assert_allclose(r32.mean_p.numpy(), r64.mean_p.numpy(), atol=1e-5)
    np.testing.assert_allclose(r32.var_p.numpy(), r64.var_p.numpy(), rtol=1e-3)
    np.testing.assert_allclose(r32.log_norm_centred.numpy(), r64.log_norm_centred.numpy(), rtol=1e-4, atol=1e-2)


def test_single_frame_and_errors():
    res = cv_smoother(torch.tensor([4.0]), torch.tensor([2.0]), 1.0, 0.0, 1.0, 1.0)
    # product of N(0, 1) and N(y = 0.5, 1/4): precision 5, mean 2 / 5
    torch.testing.assert_close(res.mean_p, torch.tensor([0.4]))
    torch.testing.assert_close(res.var_p, torch.tensor([0.2]))
    with pytest.raises(TypeError, match="lam has T = 3 frames but info has 2"):
        cv_smoother(torch.zeros(3), torch.zeros(2), 1.0, 0.0, 1.0, 1.0)
    with pytest.raises(NumericalError, match="mean_p has non-finite values"):
        cv_smoother(torch.tensor([1.0, float("nan")]), torch.zeros(2), 1.0, 0.0, 1.0, 1.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu():
    rng = np.random.default_rng(9)
    lam = torch.tensor(rng.uniform(0, 300, (2, 3, 4, 10)))
    info = lam * torch.tensor(rng.normal(0.5, 0.2, (2, 3, 4, 10)))
    cpu = cv_smoother(lam, info, 1e-3, 0.5, 0.05, 0.01)
    gpu = cv_smoother(lam.cuda(), info.cuda(), 1e-3, 0.5, 0.05, 0.01)
    assert gpu.mean_p.device.type == "cuda"
    for field in cpu._fields:
        torch.testing.assert_close(getattr(gpu, field).cpu(), getattr(cpu, field))


def test_offsets_and_step_noise_match_the_dense_posterior():
    """x_t = A x_{t-1} + a_t [1, 1] + w_t with Cov(w_t) = Q + r_t [[1, 1], [1, 1]]: the DVAE-linearised
    model of posterior='kalman'. Oracle: the dense joint Gaussian built by the same recursion."""
    rng = np.random.default_rng(7)
    T = 7
    lam, info, params = _random_problem(rng, T, [2, 3])
    offset = rng.normal(0, 0.01, T)
    r = rng.uniform(1e-4, 1e-2, T)
    mu, sigma = dense_prior(T, **params, offset=offset, r=r)
    H = np.zeros((T, 2 * T))
    H[np.arange(T), 2 * np.arange(T)] = 1.0
    prec = np.linalg.inv(sigma) + H.T @ np.diag(lam) @ H
    cov = np.linalg.inv(prec)
    mean = cov @ (np.linalg.inv(sigma) @ mu + H.T @ info)
    res = cv_smoother(torch.tensor(lam), torch.tensor(info), **params, offset=torch.tensor(offset), q_step=torch.tensor(r))
    np.testing.assert_allclose(res.mean_p.numpy(), mean[0::2], rtol=0, atol=1e-8)
    np.testing.assert_allclose(res.mean_v.numpy(), mean[1::2], rtol=0, atol=1e-8)
    np.testing.assert_allclose(res.var_p.numpy(), np.diag(cov)[0::2], rtol=1e-7, atol=1e-12)
    lag = [0.0] + [cov[2 * t + 1, 2 * t - 1] for t in range(1, T)]  # Cov(v_t, v_{t-1})
    np.testing.assert_allclose(res.lag_cov_v.numpy(), lag, rtol=1e-7, atol=1e-12)


def _dense_bias_posterior(lam, info, q, mu0, var0_p, var0_v, bias_var, rho, offset, q_step):
    """The joint Gaussian over x_{1:T} = [p, v, b]_{1:T} of cv_bias_smoother's model, conditioned
    directly: (3T x 3T) prior covariance, precision + H^T diag(lam) H, and the marginal likelihood
    of the observed frames. One series, float64."""
    T = lam.shape[0]
    A = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, rho]], dtype=torch.float64)
    S = 3 * T
    mu = torch.zeros(S, dtype=torch.float64)
    C = torch.zeros(S, S, dtype=torch.float64)
    mu[0:3] = torch.tensor([mu0, 0.0, 0.0])
    C[0:3, 0:3] = torch.diag(torch.tensor([var0_p, var0_v, bias_var], dtype=torch.float64))
    for t in range(1, T):
        r = float(q_step[t])
        Q = torch.tensor([[q / 3 + r, q / 2 + r, 0], [q / 2 + r, q + r, 0], [0, 0, (1 - rho ** 2) * bias_var]],
                         dtype=torch.float64)
        mu[3 * t:3 * t + 3] = A @ mu[3 * t - 3:3 * t] + torch.tensor([offset[t], offset[t], 0.0], dtype=torch.float64)
        for s in range(t):
            C[3 * t:3 * t + 3, 3 * s:3 * s + 3] = A @ C[3 * t - 3:3 * t, 3 * s:3 * s + 3]
            C[3 * s:3 * s + 3, 3 * t:3 * t + 3] = C[3 * t:3 * t + 3, 3 * s:3 * s + 3].T
        C[3 * t:3 * t + 3, 3 * t:3 * t + 3] = A @ C[3 * t - 3:3 * t, 3 * t - 3:3 * t] @ A.T + Q
    H = torch.zeros(T, S, dtype=torch.float64)
    for t in range(T):
        H[t, 3 * t] = H[t, 3 * t + 2] = 1.0
    post = torch.linalg.inv(torch.linalg.inv(C) + H.T @ torch.diag(lam) @ H)
    mean = post @ (torch.linalg.solve(C, mu) + H.T @ info)
    obs = lam > 0
    y = info[obs] / lam[obs]
    Hy = H[obs]
    cov_y = Hy @ C @ Hy.T + torch.diag(1.0 / lam[obs])
    d = y - Hy @ mu
    log_norm = -0.5 * d @ torch.linalg.solve(cov_y, d) - 0.5 * torch.logdet(cov_y) + 0.5 * torch.log(1.0 / lam[obs]).sum()
    return mean, post, log_norm


def test_bias_smoother_matches_the_dense_posterior():
    """cv_bias_smoother (state [p, v, b], observations of p + b) against direct conditioning of
    the joint Gaussian: means, variances, lag-one covariances of v and b, the variance of y = p + b
    and the centred log normaliser, with a frame of no information, DVAE offsets and step noise."""
    g = torch.Generator().manual_seed(5)
    T, M = 8, 4
    lam = torch.rand(M, T, generator=g, dtype=torch.float64) * 4 + 0.5
    lam[:, 3] = 0.0
    info = torch.randn(M, T, generator=g, dtype=torch.float64) * lam
    q = torch.rand(M, generator=g, dtype=torch.float64) * 0.1 + 0.01
    offset = torch.randn(M, T, generator=g, dtype=torch.float64) * 0.1
    q_step = torch.rand(M, T, generator=g, dtype=torch.float64) * 0.1
    rho, bias_var = 0.6, torch.full((M,), 0.7, dtype=torch.float64)
    res = cv_bias_smoother(lam, info, q, 0.3, 1.0, 0.5, bias_var, rho, offset=offset, q_step=q_step)
    for i in range(M):
        mean, post, log_norm = _dense_bias_posterior(lam[i], info[i], float(q[i]), 0.3, 1.0, 0.5, 0.7, rho,
                                                     offset[i], q_step[i])
        var = torch.diagonal(post)
        close = lambda a, b: torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-8)  # noqa: E731
        close(res.mean_p[i], mean[0::3])
        close(res.mean_v[i], mean[1::3])
        close(res.mean_b[i], mean[2::3])
        close(res.mean_y[i], mean[0::3] + mean[2::3])
        close(res.var_p[i], var[0::3])
        close(res.var_b[i], var[2::3])
        idx = torch.arange(T)
        close(res.var_y[i], var[0::3] + var[2::3] + 2 * post[3 * idx, 3 * idx + 2])
        close(res.lag_cov_v[i, 1:], post[3 * idx[1:] + 1, 3 * idx[:-1] + 1])
        close(res.lag_cov_b[i, 1:], post[3 * idx[1:] + 2, 3 * idx[:-1] + 2])
        close(res.log_norm_centred[i], log_norm)


def test_bias_smoother_without_bias_is_the_plain_smoother():
    """With a vanishing bias variance the model is cv_smoother's, in every output they share."""
    g = torch.Generator().manual_seed(6)
    lam = torch.rand(3, 2, 9, generator=g, dtype=torch.float64) * 3
    info = torch.randn(3, 2, 9, generator=g, dtype=torch.float64) * lam
    plain = cv_smoother(lam, info, 0.02, 0.1, 1.0, 0.3)
    biased = cv_bias_smoother(lam, info, torch.tensor(0.02), torch.tensor(0.1), torch.tensor(1.0), torch.tensor(0.3),
                              torch.tensor(1e-14), 0.5)
    for name in ("mean_p", "var_p", "mean_v", "var_v", "lag_cov_v", "log_norm_centred"):
        torch.testing.assert_close(getattr(biased, name), getattr(plain, name), rtol=1e-6, atol=1e-8)
    torch.testing.assert_close(biased.mean_y, plain.mean_p, rtol=1e-6, atol=1e-8)


def test_cv_smoother_float64_computes_in_float64_and_returns_the_inputs_dtype():
    """float64=True on float32 inputs: the float64 smoother's result, cast back to float32 (what the
    gap rule of the tracking priors asks for)."""
    g = torch.Generator().manual_seed(0)
    lam = torch.rand(3, 2, 30, generator=g, dtype=torch.float64) * 1e4
    lam[..., 10:16] = 0.0
    info = lam * torch.rand(3, 2, 30, generator=g, dtype=torch.float64)
    v_step = torch.zeros_like(lam)
    v_step[..., 9] = v_step[..., 16] = 1e-2
    args = (1e-4, 0.5, 1e-2, 1e-2)
    want = cv_smoother(lam, info, *args, v_step=v_step)
    have = cv_smoother(lam.float(), info.float(), *args, v_step=v_step.float(), float64=True)
    for name, w in want._asdict().items():
        h = getattr(have, name)
        assert h.dtype == torch.float32, name
        torch.testing.assert_close(h, w.float(), rtol=1e-6, atol=1e-6)
