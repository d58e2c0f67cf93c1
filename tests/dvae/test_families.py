"""One contract test for every DVAE family, plus the properties of each encoder and head."""

import math

import pytest
import torch

from mixdvae.dvae import DVAE, DVAEConfig, build_dvae
from mixdvae.dvae.heads import ComplexVarianceHead, Gauss, GaussianHead, itakura_saito
from mixdvae.errors import ConfigError, DataFormatError

FAMILIES = [
    DVAEConfig(family="srnn", encoder="causal"),
    DVAEConfig(family="srnn", encoder="backward"),
    DVAEConfig(family="srnn", encoder="causal", residual=True),
    DVAEConfig(family="vrnn"),
    DVAEConfig(family="dkf"),
    DVAEConfig(family="rvae"),
    DVAEConfig(family="deep_ar", residual=True),
    DVAEConfig(family="srnn", encoder="causal", residual=True, input_transform="delta"),
    DVAEConfig(family="deep_ar", residual=True, input_transform="delta"),
    DVAEConfig(family="srnn", encoder="causal", residual=True, residual_velocity=True, input_transform="delta"),
    DVAEConfig(family="deep_ar", residual=True, residual_velocity=True),
    DVAEConfig(family="srnn", encoder="causal", residual=True, residual_velocity=True, residual_scale=0.01,
               input_transform="delta"),
    DVAEConfig(family="srnn", encoder="backward", head="complex_variance", x_dim=6, input_transform="log"),
    DVAEConfig(family="srnn", encoder="causal", residual=True, residual_velocity=True, residual_scale=0.01,
               input_transform="delta2"),
    DVAEConfig(family="deep_ar", residual=True, input_transform="delta2"),
]


def _x(cfg, B=3, T=9, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, T, cfg.x_dim, generator=g)
    return x.exp() if cfg.head == "complex_variance" else x


@pytest.mark.parametrize("cfg", FAMILIES, ids=lambda c: f"{c.family}-{c.encoder}-{c.head}-{c.residual}")
def test_contract(cfg):
    model = build_dvae(cfg, seed=1)
    x = _x(cfg)
    B, T, D = x.shape
    z, q = model.encode(x, sample=False)
    assert z.shape == (B, T, model.z_dim) and torch.equal(z, q.mean)
    pz, px = model.prior_z(x, z), model.decode(x, z)
    assert pz.mean.shape == (B, T, model.z_dim) and px.var.shape == (B, T, D)
    assert (px.var > 0).all() and (pz.var > 0).all()
    terms = model.loss(x)
    assert torch.isfinite(terms.loss) and terms.kl >= -1e-6
    assert model.elbo(x).shape == (B,)
    pred = model.predict_next(x)
    assert pred.mean.shape == (B, T - 1, D)
    gen = model.generate(4, 7, generator=torch.Generator().manual_seed(0))
    assert gen.shape == (4, 7, D) and torch.isfinite(gen).all()
    # the fast one-step prediction (where a family has one) equals the generic prefix re-encoding
    generic = DVAE.predict_next(model, x)
    assert torch.allclose(pred.mean, generic.mean, atol=1e-5) and torch.allclose(pred.var, generic.var, rtol=1e-4)
    # vectorised over the batch: each sequence alone gives the same teacher-forced outputs
    for b in range(B):
        alone = model.decode(x[b:b + 1], z[b:b + 1])
        assert torch.allclose(alone.mean, px.mean[b:b + 1], atol=1e-6)


@pytest.mark.parametrize("cfg", FAMILIES[:2], ids=["causal", "backward"])
def test_encoder_causality(cfg):
    """Causal SRNN: z_t does not move when x after t changes. Backward (standard) SRNN: it does."""
    model = build_dvae(cfg, seed=2)
    x = _x(cfg, T=12)
    t = 5
    x2 = x.clone()
    x2[:, t + 1:] += 1.0
    z1, _ = model.encode(x, sample=False)
    z2, _ = model.encode(x2, sample=False)
    past_equal = torch.allclose(z1[:, : t + 1], z2[:, : t + 1])
    if cfg.encoder == "causal":
        assert past_equal
    else:
        assert not past_equal
    assert not torch.allclose(z1[:, t + 1:], z2[:, t + 1:])


@pytest.mark.parametrize("family", ["srnn", "deep_ar"])
def test_step_recursion_equals_sequence_pass(family):
    """The one-frame recursion used by the VEM (h_step) equals the sequence pass (deterministic_h)."""
    model = build_dvae(DVAEConfig(family=family, residual=True, input_transform="delta"), seed=0)
    x = torch.randn(3, 8, 4)
    h_seq = model.deterministic_h(x)
    state, prev, hs = None, None, []
    for t in range(8):
        h, state = model.h_step(prev, state, 3)
        hs.append(h)
        prev = x[:, t]
    assert torch.allclose(torch.stack(hs, 1), h_seq, atol=1e-6)


def test_generation_is_seeded():
    model = build_dvae(DVAEConfig(), seed=0)
    a = model.generate(2, 5, generator=torch.Generator().manual_seed(3))
    b = model.generate(2, 5, generator=torch.Generator().manual_seed(3))
    c = model.generate(2, 5, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_gaussian_nll_matches_closed_form():
    x = torch.tensor([[[0.3, -1.0]]])
    p = Gauss(torch.tensor([[[0.1, 0.0]]]), torch.tensor([[[0.5, 2.0]]]))
    expected = sum(0.5 * math.log(2 * math.pi * v) + (xi - m) ** 2 / (2 * v) for xi, m, v in [(0.3, 0.1, 0.5), (-1.0, 0.0, 2.0)])
    assert GaussianHead.nll(x, p).item() == pytest.approx(expected, rel=1e-6)


def test_complex_head_nll_is_itakura_saito_up_to_data_terms():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 5, generator=g) + 0.1
    v1 = Gauss(torch.zeros_like(x), torch.rand(2, 3, 5, generator=g) + 0.1)
    v2 = Gauss(torch.zeros_like(x), torch.rand(2, 3, 5, generator=g) + 0.1)
    d_nll = ComplexVarianceHead.nll(x, v1) - ComplexVarianceHead.nll(x, v2)
    d_is = itakura_saito(x, v1.var, eps=0) - itakura_saito(x, v2.var, eps=0)
    assert torch.allclose(d_nll, d_is, atol=1e-5)


def test_complex_head_samples_have_the_right_mean_power():
    v = torch.full((200000,), 2.5)
    s = ComplexVarianceHead.sample(Gauss(torch.zeros_like(v), v), torch.Generator().manual_seed(0))
    assert s.min() >= 0
    assert s.mean().item() == pytest.approx(2.5, rel=0.02)  # E|s|^2 = v for s ~ CN(0, v)
    assert s.var().item() == pytest.approx(2.5 ** 2, rel=0.05)  # exponential: variance v^2


def test_bad_configs_and_inputs_raise_clear_errors():
    with pytest.raises(ConfigError, match="family"):
        DVAEConfig(family="lstm")
    with pytest.raises(ConfigError, match="z_dim"):
        DVAEConfig(z_dim=0)
    with pytest.raises(ConfigError, match="residual"):
        DVAEConfig(family="vrnn", residual=True)
    model = build_dvae(DVAEConfig(), seed=0)
    with pytest.raises(DataFormatError, match=r"\(B, T, 4\)"):
        model.loss(torch.zeros(2, 5, 3))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_runs_on_cuda():
    model = build_dvae(DVAEConfig(), device="cuda", seed=0)
    x = torch.randn(2, 6, 4, device="cuda")
    assert model.loss(x).loss.device.type == "cuda"


@pytest.mark.parametrize("family", ["srnn", "deep_ar"])
def test_residual_scale_multiplies_the_decoder_change_only(family):
    cfg = DVAEConfig(family=family, residual=True, residual_velocity=True, input_transform="delta")
    one = build_dvae(cfg, seed=3)
    small = build_dvae(DVAEConfig(**{**cfg.__dict__, "residual_scale": 0.01}), seed=3)
    x = _x(cfg, T=6)
    z, _ = one.encode(x, sample=False)
    base = one.residual_base_seq(x)
    p1, p2 = one.decode(x, z), small.decode(x, z)
    # mean = base + scale * f with the same f: (p2 - base) = 0.01 (p1 - base); variances equal
    assert torch.allclose(p2.mean - base, 0.01 * (p1.mean - base), atol=1e-6)
    assert torch.allclose(p1.var, p2.var)
    with pytest.raises(ConfigError, match="residual_scale"):
        DVAEConfig(residual=True, residual_scale=0.0)


@pytest.mark.parametrize("family", ["srnn", "deep_ar"])
@pytest.mark.parametrize("transform", ["delta", "delta2"])
def test_the_step_recursion_sees_what_the_sequence_pass_sees(family, transform):
    """h_t from h_step, frame by frame (as the VEM runs it), equals deterministic_h on the whole
    sequence: the first and second differences are rebuilt from the carried frames."""
    cfg = DVAEConfig(family=family, residual=True, input_transform=transform)
    model = build_dvae(cfg, seed=2)
    x = _x(cfg, B=2, T=7)
    expected = model.deterministic_h(x)
    state, x_prev, hs = None, None, []
    for t in range(x.shape[1]):
        h, state = model.h_step(x_prev, state, x.shape[0])
        hs.append(h)
        x_prev = x[:, t]
    assert torch.allclose(torch.stack(hs, 1), expected, atol=1e-6)
    if transform == "delta2":
        feats = model.net_input(x)
        second = x[:, 3] - 2 * x[:, 2] + x[:, 1]
        assert torch.allclose(feats[:, 3, 8:], cfg.delta_scale ** 2 * second, rtol=1e-4, atol=1e-4)
        assert torch.equal(feats[:, :2, 8:], torch.zeros_like(feats[:, :2, 8:]))


def test_forecast_term_is_half_the_log_mse_of_the_one_step_forecast():
    """loss(forecast_weight=w) - loss(0) = w/2 log mean (x_t - E[x_t | x_{<t}])^2, and it trains the
    prediction path: its gradient reaches the prior p(z_t | ...), which the ELBO's decoder term
    (z_t from q) does not use for x_t."""
    model = build_dvae(DVAEConfig(family="srnn", x_dim=4, z_dim=3, encoder="causal"), seed=1).double()
    x = torch.rand(5, 12, 4, dtype=torch.float64)
    base = model.loss(x, generator=torch.Generator().manual_seed(3))
    with_term = model.loss(x, generator=torch.Generator().manual_seed(3), forecast_weight=2.0)
    mse = ((model.predict_next(x).mean - x[:, 1:]) ** 2).mean()
    assert float((with_term.loss - base.loss).detach()) == pytest.approx(float(torch.log(mse).detach()), rel=1e-9)
    model.zero_grad()
    (with_term.loss - base.loss).backward()
    assert model.prior_z_mean.weight.grad.abs().sum() > 0


def test_srnn_encoder_hoisted_first_layer_equals_the_step_by_step_formula():
    """q(z_t | g_t, z_{t-1}) with the g part of MLP_gzz's first layer computed before the loop equals
    MLP_gzz([g_t, z_{t-1}]) step by step, with and without sampling (same generator draws)."""
    torch.manual_seed(0)
    model = build_dvae(DVAEConfig(family="srnn", encoder="backward", x_dim=6, z_dim=3, dense_x=[8], rnn_dim=5, dense_g=[7], g_dim=4, dense_enc=[6, 5],
                            dense_prior=[4], dense_dec=[8])).double()
    feats = torch.randn(3, 9, 4, dtype=torch.float64)
    for sample in (False, True):
        z, q = model.encode_from_features(feats, sample, torch.Generator().manual_seed(5))
        gen = torch.Generator().manual_seed(5)
        z_prev, zs, means, variances = torch.zeros(3, 3, dtype=torch.float64), [], [], []
        for t in range(9):
            f = model.mlp_gz_z(torch.cat([feats[:, t], z_prev], -1))
            mean, logvar = model.inf_z_mean(f), model.inf_z_logvar(f)
            z_prev = mean + (torch.exp(0.5 * logvar) * torch.randn(mean.shape, generator=gen, dtype=mean.dtype)
                             if sample else 0)
            zs.append(z_prev)
            means.append(mean)
            variances.append(torch.exp(logvar))
        torch.testing.assert_close(z, torch.stack(zs, 1))
        torch.testing.assert_close(q.mean, torch.stack(means, 1))
        torch.testing.assert_close(q.var, torch.stack(variances, 1))
