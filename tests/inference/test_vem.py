"""The VEM loop: the ELBO never falls with exact steps and a fixed prior, and is recorded at the
updated sources; the DVAE prior runs."""

import math
from dataclasses import dataclass

import pytest
import torch

from mixdvae.dvae import DVAEConfig, build_dvae
from mixdvae.dvae.heads import Gauss
from mixdvae.inference.dvae_prior import DVAEPriorOptions, DVAESourcePrior
from mixdvae.inference.steps import e_step_s, e_step_w, expected_log_likelihood, source_messages
from mixdvae.inference.vem import VEMConfig, run_vem, vem_elbo
from mixdvae.tracking.observation import BoxObservationModel, box_scale


@dataclass
class StaticGaussianPrior:
    """p(s_tn) = N(mu0, var0) independently per frame: E-S is exact, the prior ELBO is -KL(q || p)."""

    mu0: torch.Tensor
    var0: torch.Tensor

    def e_step(self, prec, info, q_prev, generator=None):
        prior = Gauss(self.mu0.expand_as(prec), self.var0.expand_as(prec))
        q = e_step_s(prior, prec, info)
        kl = 0.5 * (torch.log(prior.var / q.var) + (q.var + (q.mean - prior.mean) ** 2) / prior.var - 1)
        return q, -kl.sum(dim=(1, 2, 3))


def _scene(B=4, T=12, N=3, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    start = torch.rand(B, 1, N, 2, generator=g, dtype=dtype) * 0.6 + 0.1
    vel = (torch.rand(B, 1, N, 2, generator=g, dtype=dtype) - 0.5) * 0.02
    t = torch.arange(T, dtype=dtype)[None, :, None, None]
    xy = start + vel * t
    size = torch.tensor([0.05, 0.15], dtype=dtype)
    s = torch.cat([xy, xy + size], dim=-1)  # (B, T, N, 4)
    o = s + 0.003 * torch.randn(s.shape, generator=g, dtype=dtype)
    perm = torch.argsort(torch.rand(B, T, N, generator=g), dim=-1)
    o = torch.gather(o, 2, perm[..., None].expand_as(o))
    mask = torch.rand(B, T, N, generator=g) > 0.15
    o = torch.where(mask[..., None], o, torch.full_like(o, float("nan")))
    return s, o, mask


@pytest.mark.parametrize("m_step", [True, False])
def test_elbo_never_falls_with_exact_steps_and_a_fixed_prior(m_step):
    s, o, mask = _scene()
    B, T, N, D = s.shape
    prior = StaticGaussianPrior(torch.full((D,), 0.5, dtype=o.dtype), torch.full((D,), 0.1, dtype=o.dtype))
    obs = BoxObservationModel(box_scale(o, mask), torch.full((B, D), 0.05, dtype=o.dtype))
    g = torch.Generator().manual_seed(0)
    noisy = s + 0.03 * torch.randn(s.shape, generator=g, dtype=o.dtype)
    init = Gauss(noisy, torch.full((B, T, N, D), 1e-5, dtype=o.dtype))
    for clutter in (None, 0.1):
        cfg = VEMConfig(iterations=25, m_step=m_step, clutter_prob=clutter, clutter_log_density=-5.0)
        res = run_vem(o, mask, prior, obs, init, cfg)
        diffs = res.elbo[1:] - res.elbo[:-1]
        assert (diffs >= -1e-8 * res.elbo[:-1].abs()).all(), diffs.min()
        assert (res.elbo[-1] >= res.elbo[0]).all() and (res.elbo[-1] > res.elbo[0] + 1.0).any()


def test_tol_stops_early_and_history_length_matches():
    s, o, mask = _scene()
    B, T, N, D = s.shape
    prior = StaticGaussianPrior(torch.full((D,), 0.5, dtype=o.dtype), torch.full((D,), 0.1, dtype=o.dtype))
    obs = BoxObservationModel(box_scale(o, mask), torch.full((B, D), 0.05, dtype=o.dtype))
    init = Gauss(s.clone(), torch.full_like(s, 1e-4))
    res = run_vem(o, mask, prior, obs, init, VEMConfig(iterations=200, tol=1e-4, min_iterations=3))
    assert 3 <= res.iterations < 200
    assert res.elbo.shape == (res.iterations, B)


def test_dvae_prior_vem_runs_and_outputs_are_finite_and_normalised():
    torch.manual_seed(0)
    s, o, mask = _scene(dtype=torch.float32)
    B, T, N, D = s.shape
    for family, options in (("srnn", DVAEPriorOptions()), ("srnn", DVAEPriorOptions(sample_z=True, ez_steps=2)),
                            ("deep_ar", DVAEPriorOptions())):
        model = build_dvae(DVAEConfig(family=family), seed=0)
        prior = DVAESourcePrior(model, options)
        obs = BoxObservationModel(box_scale(o, mask), torch.full((B, D), 0.01))
        init = Gauss(s.clone(), torch.full_like(s, 1e-4))
        res = run_vem(o, mask, prior, obs, init, VEMConfig(iterations=4, clutter_prob=0.05),
                      generator=torch.Generator().manual_seed(0))
        assert torch.isfinite(res.sources.mean).all() and torch.isfinite(res.elbo).all()
        total = res.resp.r.sum(-1) + res.resp.clutter
        assert torch.allclose(total[mask], torch.ones_like(total[mask]), atol=1e-5)
        assert (total[~mask] == 0).all()


def test_dvae_prior_is_vectorised_over_windows():
    """Running windows together equals running them one by one (no leak across windows)."""
    s, o, mask = _scene(dtype=torch.float32)
    B, T, N, D = s.shape
    model = build_dvae(DVAEConfig(family="srnn"), seed=0)
    prior = DVAESourcePrior(model, DVAEPriorOptions())
    init = Gauss(s.clone(), torch.full_like(s, 1e-4))
    cfg = VEMConfig(iterations=3)

    def run(sl):
        obs = BoxObservationModel(box_scale(o[sl], mask[sl]), torch.full((o[sl].shape[0], D), 0.01))
        return run_vem(o[sl], mask[sl], prior, obs, Gauss(init.mean[sl], init.var[sl]), cfg)

    together = run(slice(0, B))
    for b in range(B):
        alone = run(slice(b, b + 1))
        assert torch.allclose(together.sources.mean[b], alone.sources.mean[0], atol=1e-5)
        assert torch.allclose(together.resp.r[b], alone.resp.r[0], atol=1e-5)


def test_e_z_refinement_never_leaks_across_windows():
    """With E-Z fine-tuning, changing one window's detections leaves the other windows unchanged."""
    s, o, mask = _scene(dtype=torch.float32)
    B, T, N, D = s.shape
    model = build_dvae(DVAEConfig(family="srnn"), seed=0)
    prior = DVAESourcePrior(model, DVAEPriorOptions(ez_steps=4, sample_z=False))
    init = Gauss(s.clone(), torch.full_like(s, 1e-4))
    o2 = o.clone()
    o2[1] = o2[1] + 0.05

    def run(obs_boxes):
        obs = BoxObservationModel(box_scale(obs_boxes, mask), torch.full((B, D), 0.01))
        return run_vem(obs_boxes, mask, prior, obs, init, VEMConfig(iterations=3), generator=torch.Generator().manual_seed(5))

    a, b = run(o), run(o2)
    assert not torch.allclose(a.sources.mean[1], b.sources.mean[1], atol=1e-4)
    for w in (0, 2, 3):
        assert torch.allclose(a.sources.mean[w], b.sources.mean[w], atol=1e-6)


def test_vkf_elbo_never_falls_and_prior_part_matches_float64():
    """VKF: E-S is an exact Kalman smoother, so with exact E-W (temperature 1) and M the ELBO
    never falls; the float32 ELBO agrees with float64."""
    from mixdvae.inference.cv_prior import ConstantVelocityPrior

    histories = {}
    s64, o64, mask = _scene(T=30, dtype=torch.float64)
    for dtype in (torch.float64, torch.float32):
        s, o = s64.to(dtype), o64.to(dtype)
        B, T, N, D = s.shape
        anchors = s[:, 0] + 0.01
        prior = ConstantVelocityPrior(anchors)
        obs = BoxObservationModel(box_scale(o, mask), torch.full((B, D), 0.04 ** 2, dtype=dtype))
        g = torch.Generator().manual_seed(1)
        init = Gauss(s + 0.02 * torch.randn(s.shape, generator=g, dtype=torch.float64).to(dtype), torch.full_like(s, 1e-5))
        res = run_vem(o, mask, prior, obs, init, VEMConfig(iterations=15, m_step=True, clutter_prob=0.05, clutter_log_density=-3.0))
        diffs = res.elbo[1:] - res.elbo[:-1]
        tol = 1e-9 if dtype == torch.float64 else 1e-2
        assert (diffs >= -tol * res.elbo[:-1].abs().clamp_min(1)).all(), (dtype, diffs.min())
        histories[dtype] = res.elbo
    assert torch.allclose(histories[torch.float32].double(), histories[torch.float64], rtol=1e-4, atol=0.05)


@pytest.mark.parametrize("m_step", [True, False])
def test_recorded_elbo_is_the_elbo_at_the_new_sources_and_noise(m_step):
    """One iteration by hand: E-W from q0, E-S to q1, M to Phi1; the recorded ELBO is the one at
    (q1, r, Phi1), with E_q log N(o; s, Phi) taken under q1, not the q0 that E-W read."""
    s, o, mask = _scene(seed=3)
    B, T, N, D = s.shape
    prior = StaticGaussianPrior(torch.full((D,), 0.5, dtype=o.dtype), torch.full((D,), 0.1, dtype=o.dtype))
    obs = BoxObservationModel(box_scale(o, mask), torch.full((B, D), 0.05, dtype=o.dtype))
    init = Gauss(s + 0.02, torch.full((B, T, N, D), 1e-4, dtype=o.dtype))
    cfg = VEMConfig(iterations=1, m_step=m_step)
    res = run_vem(o, mask, prior, obs, init, cfg)
    log_prior = torch.full((N,), -math.log(N), dtype=o.dtype)
    resp = e_step_w(expected_log_likelihood(o, obs.obs_var(), init), mask, log_prior)
    prec, info = source_messages(o, mask, resp.r, obs.obs_var())
    q1, prior_elbo = prior.e_step(prec, info, init)
    obs1 = obs.m_step(o, mask, resp.r, q1) if m_step else obs
    expected = vem_elbo(expected_log_likelihood(o, obs1.obs_var(), q1), mask, resp, prior_elbo, cfg)
    assert torch.allclose(res.elbo[0], expected, rtol=1e-10), (res.elbo[0], expected)
