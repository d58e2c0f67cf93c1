"""The spectral DVAE prior reading a power sequence at several levels (``read_power``): the
geometric mean of the per-level readings rescaled, with the latents stacked (KL summed), a closed
form for a network that ignores its input, an ELBO that still never falls, and options checked."""

import math

import pytest
import torch

from mixdvae.config import config_from_dict
from mixdvae.dvae.config import DVAEConfig
from mixdvae.dvae.factory import build_dvae
from mixdvae.errors import ConfigError
from mixdvae.inference.spectral_prior import DVAESpectralPrior, SpectralPriorOptions
from mixdvae.inference.spectral_vem import SpectralVEMConfig, run_spectral_vem

F = 12


def _srnn(seed: int):
    cfg = DVAEConfig(family="srnn", x_dim=F, z_dim=3, head="complex_variance", dense_x=(8,), rnn_dim=8, dense_g=(8,),
                     g_dim=8, dense_enc=(8,), dense_prior=(8,), dense_dec=(8,), input_transform="log", encoder="backward")
    return build_dvae(cfg, seed=seed).double()


def _power(B=3, T=9, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(B, T, F, generator=g, dtype=torch.float64) ** 4 + 1e-4  # (B, T, F)


def test_a_network_that_ignores_its_input_is_rescaled_by_the_levels_geometric_mean():
    """v(g u) = v_0 for every u, so the reading at levels L_l is v_0 / (prod_l g_l)^(1 / G)."""
    model = _srnn(0)
    profile = torch.linspace(-3.0, 1.0, F, dtype=torch.float64)
    with torch.no_grad():
        model.head.logvar.weight.zero_()
        model.head.logvar.bias.copy_(profile)
    u = _power()
    for levels in [(0.0,), (-10.0,), (0.0, -10.0), (0.0, -10.0, -20.0), (6.0,)]:
        prior = DVAESpectralPrior([model], SpectralPriorOptions(mixture_levels_db=levels))
        v = prior.initial_variance(u)[:, :, 0]  # (B, T, F)
        mean_log_g = sum(level / 10 for level in levels) / len(levels) * math.log(10)
        torch.testing.assert_close(v, torch.exp(profile - mean_log_g).expand_as(v))


def test_several_levels_are_the_geometric_mean_of_one_level_each_and_their_kl_the_sum():
    model = _srnn(1)
    prior = DVAESpectralPrior([model])
    u = _power(seed=1)
    v0, kl0 = prior.read_power(model, u, (0.0,))
    v1, kl1 = prior.read_power(model, u, (-10.0,))
    v01, kl01 = prior.read_power(model, u, (0.0, -10.0))
    torch.testing.assert_close(v01, torch.sqrt(v0 * v1))
    torch.testing.assert_close(kl01, kl0 + kl1)
    assert kl0.shape == (3,) and (kl0 > 0).all()
    # one level of L dB is the network reading g u, rescaled by 1 / g, and not the plain reading
    z, _, h = prior._latents(model, 0.1 * u, None)
    torch.testing.assert_close(v1, prior._decode(model, h, z) / 0.1)
    assert not torch.allclose(v1, v0, rtol=1e-2)
    # each chunk's reading does not depend on the others of its batch
    v_alone, kl_alone = prior.read_power(model, u[1:2], (0.0, -10.0))
    torch.testing.assert_close(v_alone, v01[1:2])
    torch.testing.assert_close(kl_alone, kl01[1:2])


@pytest.mark.parametrize("feedback", ["mixture", "expected"])
def test_the_loop_reads_the_mixture_and_the_estimates_at_their_own_levels(feedback):
    models = [_srnn(2), _srnn(3)]
    g = torch.Generator().manual_seed(4)
    mix = torch.complex(torch.randn(2, 8, F, generator=g, dtype=torch.float64), torch.randn(2, 8, F, generator=g, dtype=torch.float64))
    opts = SpectralPriorOptions(feedback=feedback, mixture_levels_db=(0.0, -10.0), estimate_level_db=-20.0)
    prior = DVAESpectralPrior(models, opts)
    first = prior.initial_variance(mix.abs() ** 2)
    for n, m in enumerate(models):
        torch.testing.assert_close(first[:, :, n], prior.read_power(m, mix.abs() ** 2, (0.0, -10.0))[0])
    res = run_spectral_vem(mix, prior, SpectralVEMConfig(iterations=3, assignment="marginal"))
    if feedback == "mixture":
        torch.testing.assert_close(res.prior_var, first)
    else:  # the last v^s is the networks' reading of the previous estimates at -20 dB
        assert not torch.allclose(res.prior_var, first, rtol=1e-3)


def test_elbo_never_falls_when_the_mixture_is_read_at_several_levels():
    """feedback = 'mixture' keeps v^s fixed; with mean-field E-W and exact M-steps the ELBO (whose KL
    now sums over the levels) never falls."""
    models = [_srnn(5), _srnn(6)]
    g = torch.Generator().manual_seed(7)
    mix = torch.complex(torch.randn(3, 10, F, generator=g, dtype=torch.float64), torch.randn(3, 10, F, generator=g, dtype=torch.float64))
    prior = DVAESpectralPrior(models, SpectralPriorOptions(feedback="mixture", mixture_levels_db=(0.0, -10.0)))
    res = run_spectral_vem(mix, prior, SpectralVEMConfig(iterations=12, m_step=True))
    diffs = res.elbo[1:] - res.elbo[:-1]
    assert (diffs >= -1e-9 * res.elbo[1:].abs()).all(), diffs.min()
    assert torch.isfinite(res.elbo).all()


def test_level_options_are_checked_and_read_from_toml_lists():
    opts = config_from_dict(SpectralPriorOptions, {"mixture_levels_db": [0, -10], "estimate_level_db": -10})
    assert opts.mixture_levels_db == (0.0, -10.0) and opts.estimate_level_db == -10.0
    with pytest.raises(ConfigError, match="levels"):
        SpectralPriorOptions(mixture_levels_db=())
    with pytest.raises(ConfigError, match="levels"):
        SpectralPriorOptions(mixture_levels_db=(0.0, float("nan")))
    with pytest.raises(ConfigError, match="levels"):
        SpectralPriorOptions(estimate_level_db=float("inf"))
    with pytest.raises(ConfigError, match="parallel"):
        SpectralPriorOptions(recursion="sequential", estimate_level_db=-10.0)
    with pytest.raises(ConfigError, match="parallel"):
        SpectralPriorOptions(recursion="sequential", feedback="mixture", mixture_levels_db=(0.0, -10.0))
    # the first reading alone may use levels with any recursion
    SpectralPriorOptions(recursion="sequential", mixture_levels_db=(0.0, -10.0))
