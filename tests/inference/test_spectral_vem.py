"""The audio VEM loop: the ELBO never falls with exact steps and a fixed prior; sources with
distinct spectral profiles are recovered; recursions agree where they must; bad input is refused."""

import pytest
import torch

from mixdvae.dvae.config import DVAEConfig
from mixdvae.dvae.factory import build_dvae
from mixdvae.errors import ConfigError, NumericalError
from mixdvae.inference.spectral_prior import DVAESpectralPrior, SpectralPriorOptions, sample_power
from mixdvae.inference.spectral_steps import SpectralSources, abs2
from mixdvae.inference.spectral_vem import SpectralVEMConfig, run_spectral_vem

F = 16


def _fixed_profile_model(log_profile: torch.Tensor, family: str = "deep_ar"):
    """A spectral DVAE whose variance ignores its input: v^s_t = exp(log_profile) for every t."""
    cfg = DVAEConfig(family=family, x_dim=F, z_dim=2, head="complex_variance", dense_x=(4,), rnn_dim=4,
                     dense_g=(4,), g_dim=4, dense_enc=(4,), dense_prior=(4,), dense_dec=(4,), input_transform="log")
    model = build_dvae(cfg, seed=0)
    with torch.no_grad():
        model.head.logvar.weight.zero_()
        model.head.logvar.bias.copy_(log_profile)
    return model


def _profiles():
    f = torch.arange(F, dtype=torch.float32)
    low = torch.where(f < F // 2, torch.tensor(0.0), torch.tensor(-9.0))
    return low, torch.flip(low, [0])


def _mixture(B=3, T=12, seed=0):
    """Two sources drawn from the two profiles: s_n ~ CN(0, exp(profile_n))."""
    g = torch.Generator().manual_seed(seed)
    srcs = []
    for prof in _profiles():
        std = torch.exp(0.5 * prof)
        re, im = torch.randn(B, T, F, generator=g), torch.randn(B, T, F, generator=g)
        srcs.append(torch.complex(re, im) * std / 2**0.5)
    s = torch.stack(srcs, 2)  # (B, T, N, F)
    return s.sum(2), s


@pytest.mark.parametrize("m_step,assignment_prior", [(False, "uniform"), (True, "uniform"), (False, "frequency"), (True, "frequency")])
def test_elbo_never_falls_with_exact_steps_and_a_fixed_prior(m_step, assignment_prior):
    """With the frequency prior the objective is the ELBO plus the log Dirichlet density (MAP-EM)."""
    mix, _ = _mixture()
    prior = DVAESpectralPrior([_fixed_profile_model(p) for p in _profiles()])
    cfg = SpectralVEMConfig(iterations=15, m_step=m_step, assignment_prior=assignment_prior, prior_concentration=0.5, prior_block=5)
    res = run_spectral_vem(mix.to(torch.complex128), _as64(prior), cfg)
    diffs = res.elbo[1:] - res.elbo[:-1]  # (I-1, B)
    assert (diffs >= -1e-6 * res.elbo[1:].abs()).all(), diffs.min()


def _as64(prior):
    return DVAESpectralPrior([m.double() for m in prior.models], prior.options)


def test_sources_with_distinct_profiles_are_recovered():
    mix, s = _mixture(B=2, T=20)
    prior = DVAESpectralPrior([_fixed_profile_model(p) for p in _profiles()])
    res = run_spectral_vem(mix, prior, SpectralVEMConfig(iterations=10, m_step=True))
    for n in range(2):
        err = (res.sources.mean[:, :, n] - s[:, :, n]).abs().pow(2).sum()
        energy = s[:, :, n].abs().pow(2).sum()
        assert 10 * torch.log10(energy / err) > 15.0
    # the assignment of each bin goes to the source whose half of the spectrum it is in
    assert (res.eta[..., : F // 2, 0] > 0.9).float().mean() > 0.95
    assert (res.eta[..., F // 2:, 1] > 0.9).float().mean() > 0.95


def test_sequential_recursion_equals_parallel_when_the_prior_ignores_its_input():
    mix, _ = _mixture(B=2, T=8)
    models = [_fixed_profile_model(p, family="srnn") for p in _profiles()]
    cfg = SpectralVEMConfig(iterations=3)
    par = run_spectral_vem(mix, DVAESpectralPrior(models, SpectralPriorOptions(recursion="parallel")), cfg)
    seq = run_spectral_vem(mix, DVAESpectralPrior(models, SpectralPriorOptions(recursion="sequential")), cfg)
    assert torch.allclose(par.sources.mean, seq.sources.mean, atol=1e-5)


def test_gaussian_power_samples_are_unbiased_and_uniform_ones_have_the_original_bias():
    q = SpectralSources(torch.full((200_000,), 1.0 + 0.5j), torch.full((200_000,), 2.0))
    g = torch.Generator().manual_seed(0)
    expected = 1.25 + 2.0
    assert abs(sample_power(q, "gaussian", g).mean().item() - expected) < 0.03
    # the original's U[0, 1) noise: E|s~|^2 = |m|^2 + 2 sqrt(gamma/2) (Re m + Im m) / 2 + gamma / 3
    biased = 1.25 + 2 * 1.0 * (1.0 + 0.5) / 2 + 2.0 / 3
    assert abs(sample_power(q, "uniform", g).mean().item() - biased) < 0.03


def test_bad_inputs_are_refused():
    prior = DVAESpectralPrior([_fixed_profile_model(p) for p in _profiles()])
    with pytest.raises(ConfigError, match="complex"):
        run_spectral_vem(torch.zeros(1, 4, F), prior)
    bad = torch.zeros(1, 4, F, dtype=torch.complex64)
    bad[0, 1, 2] = float("nan")
    with pytest.raises(NumericalError, match="NaN"):
        run_spectral_vem(bad, prior)
    box_model = build_dvae(DVAEConfig(family="deep_ar", x_dim=F))
    with pytest.raises(ConfigError, match="complex_variance"):
        DVAESpectralPrior([box_model])
    with pytest.raises(ConfigError, match="recursion"):
        SpectralPriorOptions(recursion="both")


def test_silent_mixture_gives_finite_estimates():
    prior = DVAESpectralPrior([_fixed_profile_model(p) for p in _profiles()])
    res = run_spectral_vem(torch.zeros(1, 6, F, dtype=torch.complex64), prior, SpectralVEMConfig(iterations=3, m_step=True))
    assert torch.isfinite(torch.view_as_real(res.sources.mean)).all()
    assert torch.allclose(res.eta.sum(-1), torch.ones(1, 6, F))


def test_marginal_assignment_also_recovers_distinct_profiles():
    mix, s = _mixture(B=2, T=20, seed=3)
    prior = DVAESpectralPrior([_fixed_profile_model(p) for p in _profiles()])
    res = run_spectral_vem(mix, prior, SpectralVEMConfig(iterations=5, assignment="marginal"))
    for n in range(2):
        err = (res.sources.mean[:, :, n] - s[:, :, n]).abs().pow(2).sum()
        assert 10 * torch.log10(s[:, :, n].abs().pow(2).sum() / err) > 15.0
    with pytest.raises(ConfigError, match="assignment"):
        SpectralVEMConfig(assignment="hard")


@pytest.mark.parametrize("options", [dict(posterior="mixture"), dict(latent="prior"), dict(feedback="sample")])
def test_prior_options_recover_distinct_profiles(options):
    mix, s = _mixture(B=2, T=16, seed=5)
    models = [_fixed_profile_model(p, family="srnn") for p in _profiles()]
    prior = DVAESpectralPrior(models, SpectralPriorOptions(**options))
    assignment = "marginal" if options.get("posterior") == "mixture" else "mean_field"
    res = run_spectral_vem(mix, prior, SpectralVEMConfig(iterations=4, assignment=assignment), torch.Generator().manual_seed(0))
    assert (res.eta[..., : F // 2, 0] > 0.9).float().mean() > 0.95
    assert (res.eta[..., F // 2:, 1] > 0.9).float().mean() > 0.95
    with pytest.raises(ConfigError):
        SpectralPriorOptions(**{k: "neither" for k in options})


def test_frequency_prior_recovers_distinct_profiles():
    mix, s = _mixture(B=2, T=20, seed=6)
    prior = DVAESpectralPrior([_fixed_profile_model(p) for p in _profiles()])
    cfg = SpectralVEMConfig(iterations=6, assignment="marginal", temperature=0.3, assignment_prior="frequency", prior_block=10)
    res = run_spectral_vem(mix, prior, cfg)
    for n in range(2):
        err = (res.sources.mean[:, :, n] - s[:, :, n]).abs().pow(2).sum()
        assert 10 * torch.log10(s[:, :, n].abs().pow(2).sum() / err) > 15.0
    assert (res.eta[..., : F // 2, 0] > 0.9).float().mean() > 0.95
    assert (res.eta[..., F // 2:, 1] > 0.9).float().mean() > 0.95
    with pytest.raises(ConfigError, match="assignment_prior"):
        SpectralVEMConfig(assignment_prior="per_frame")
    with pytest.raises(ConfigError, match="prior_concentration"):
        SpectralVEMConfig(prior_concentration=-1.0)
    with pytest.raises(ConfigError, match="prior_block"):
        SpectralVEMConfig(prior_block=0)


def test_mixture_posterior_needs_the_marginal_assignment():
    prior = DVAESpectralPrior([_fixed_profile_model(p) for p in _profiles()], SpectralPriorOptions(posterior="mixture"))
    with pytest.raises(ConfigError, match="marginal"):
        run_spectral_vem(_mixture(B=1, T=4)[0], prior, SpectralVEMConfig(iterations=1))


def test_initial_masks_start_the_loop_from_them():
    """With the masks that put each half of the spectrum on its own source, one iteration from them
    already separates; the wrong masks (the halves swapped) give the first E-Z the other source's
    spectrum, and a prior that ignores its input recovers anyway (its profile, not the start, decides)."""
    mix, s = _mixture(B=2, T=12)
    prior = DVAESpectralPrior([_fixed_profile_model(p) for p in _profiles()])
    f = torch.arange(F)
    right = torch.stack([(f < F // 2).float(), (f >= F // 2).float()], -1).expand(2, 12, F, 2)
    cfg = SpectralVEMConfig(iterations=1, assignment="marginal")
    for masks in (right, right.flip(-1)):
        res = run_spectral_vem(mix, prior, cfg, init_masks=masks.contiguous())
        assert (res.eta[..., : F // 2, 0] > 0.9).float().mean() > 0.95
    # with a prior that reads its input, the first E-Z reads the masked mixtures: the start matters
    cfg_in = DVAEConfig(family="srnn", x_dim=F, z_dim=2, head="complex_variance", dense_x=(8,), rnn_dim=8, dense_g=(8,),
                        g_dim=8, dense_enc=(8,), dense_prior=(8,), dense_dec=(8,), input_transform="log", encoder="backward")
    reading = DVAESpectralPrior([build_dvae(cfg_in, seed=1), build_dvae(cfg_in, seed=2)])
    a = run_spectral_vem(mix, reading, cfg, init_masks=right.contiguous())
    b = run_spectral_vem(mix, reading, cfg, init_masks=right.flip(-1).contiguous())
    expected = reading.e_step(mix, right, torch.zeros_like(mix.real), SpectralSources(
        right.transpose(-1, -2) * mix[:, :, None, :], torch.zeros(2, 12, 2, F)))[2]
    assert torch.allclose(a.prior_var, expected)
    assert not torch.allclose(a.prior_var, b.prior_var)
    with pytest.raises(ConfigError, match="init_masks"):
        run_spectral_vem(mix, prior, cfg, init_masks=right[:, :5].contiguous())


def test_initial_variance_reads_one_power_per_source_when_given_one():
    cfg_in = DVAEConfig(family="srnn", x_dim=F, z_dim=2, head="complex_variance", dense_x=(8,), rnn_dim=8, dense_g=(8,),
                        g_dim=8, dense_enc=(8,), dense_prior=(8,), dense_dec=(8,), input_transform="log", encoder="backward")
    prior = DVAESpectralPrior([build_dvae(cfg_in, seed=1), build_dvae(cfg_in, seed=2)])
    _, s = _mixture(B=2, T=10)
    power = s.abs() ** 2  # (B, T, N, F)
    both = prior.initial_variance(power)
    for n in range(2):
        alone = prior.initial_variance(power[:, :, n])[:, :, n]
        assert torch.allclose(both[:, :, n], alone)  # the 1e-8 relative floors are far below v^s here
    assert not torch.allclose(both[:, :, 0], prior.initial_variance(power[:, :, 1])[:, :, 0])


def test_each_chunk_stops_on_its_own_elbo_whatever_its_batch():
    """With a tolerance, a chunk's estimate, masks and ELBO history are the same separated alone or
    with chunks that converge at other iterations; a stopped chunk repeats its last ELBO."""
    mix, _ = _mixture(B=4, T=12, seed=3)
    mix = mix * torch.tensor([1.0, 3.0, 0.3, 1.0])[:, None, None]
    mix[3] = mix[3] + 0.5 * torch.flip(mix[3], [1])  # a harder, slower chunk
    prior = _as64(DVAESpectralPrior([_fixed_profile_model(p) for p in _profiles()]))
    cfg = SpectralVEMConfig(iterations=40, tol=1e-3, m_step=True, assignment_prior="frequency", prior_block=5)
    mix = mix.to(torch.complex128)
    together = run_spectral_vem(mix, prior, cfg)
    alone = [run_spectral_vem(mix[b:b + 1], prior, cfg) for b in range(4)]
    counts = [a.iterations for a in alone]
    assert len(set(counts)) > 1 and together.iterations == max(counts), counts
    for b, a in enumerate(alone):
        assert torch.allclose(together.eta[b], a.eta[0], atol=1e-9)
        assert torch.allclose(together.sources.mean[b], a.sources.mean[0], atol=1e-9)
        assert torch.allclose(together.noise_ratio[b], a.noise_ratio[0])
        assert torch.allclose(together.elbo[:counts[b], b], a.elbo[:, 0])
        assert (together.elbo[counts[b] - 1:, b] == a.elbo[-1, 0]).all()


@pytest.mark.parametrize("recursion", ["parallel", "sequential"])
def test_mixture_feedback_keeps_the_priors_first_reading(recursion):
    """feedback = 'mixture': every E-S reads |X|^2, so v^s is the priors' reading of the mixture
    (initial_variance) at every iteration whatever the estimates, while with the expected power it
    moves with them."""
    cfg_in = DVAEConfig(family="srnn", x_dim=F, z_dim=2, head="complex_variance", dense_x=(8,), rnn_dim=8, dense_g=(8,),
                        g_dim=8, dense_enc=(8,), dense_prior=(8,), dense_dec=(8,), input_transform="log", encoder="backward")
    models = [build_dvae(cfg_in, seed=1), build_dvae(cfg_in, seed=2)]
    mix, _ = _mixture(B=2, T=10)
    reading = DVAESpectralPrior(models, SpectralPriorOptions(feedback="mixture", recursion=recursion))
    first = reading.initial_variance(mix.abs() ** 2)
    res = run_spectral_vem(mix, reading, SpectralVEMConfig(iterations=4, assignment="marginal", assignment_prior="frequency"))
    torch.testing.assert_close(res.prior_var, first, rtol=1e-5, atol=1e-8)
    moving = run_spectral_vem(mix, DVAESpectralPrior(models, SpectralPriorOptions(recursion=recursion)),
                              SpectralVEMConfig(iterations=4, assignment="marginal", assignment_prior="frequency"))
    assert not torch.allclose(moving.prior_var, first, rtol=1e-3)


def test_mixture_feedback_reads_the_networks_once_per_mixture(monkeypatch):
    """feedback = 'mixture' (parallel, encoder mean): the reading of initial_variance, with its KL,
    serves every E-step of the loop, so the networks run once per mixture; the loop's v^s and ELBO
    are those of a prior that reads anew at every step, and a mixture of other values is read anew."""
    cfg_in = DVAEConfig(family="srnn", x_dim=F, z_dim=2, head="complex_variance", dense_x=(8,), rnn_dim=8, dense_g=(8,),
                        g_dim=8, dense_enc=(8,), dense_prior=(8,), dense_dec=(8,), input_transform="log", encoder="backward")
    models = [build_dvae(cfg_in, seed=1), build_dvae(cfg_in, seed=2)]
    options = SpectralPriorOptions(feedback="mixture", mixture_levels_db=(0.0, -10.0))
    cfg = SpectralVEMConfig(iterations=4, assignment="marginal", assignment_prior="frequency")
    kept, anew = DVAESpectralPrior(models, options), DVAESpectralPrior(models, options)
    monkeypatch.setattr(anew, "_cached_reading", lambda power: None)
    reads = []
    read_power = DVAESpectralPrior.read_power
    monkeypatch.setattr(kept, "read_power", lambda *a, **k: reads.append(1) or read_power(kept, *a, **k))
    for seed in (0, 1):
        mix, _ = _mixture(B=2, T=10, seed=seed)
        first = kept.initial_variance(abs2(mix))  # the power the loop computes, to the bit
        res = run_spectral_vem(mix, kept, cfg, first_reading=first)
        ref = run_spectral_vem(mix, anew, cfg)
        assert len(reads) == 2 * (seed + 1)  # one reading per source and mixture
        torch.testing.assert_close(res.prior_var, ref.prior_var)
        torch.testing.assert_close(res.elbo, ref.elbo)


def test_a_first_reading_given_by_the_caller_is_the_one_the_loop_would_make():
    """first_reading = prior.initial_variance(|X|^2) gives the same result as letting the loop read;
    one of another shape is refused."""
    cfg_in = DVAEConfig(family="srnn", x_dim=F, z_dim=2, head="complex_variance", dense_x=(8,), rnn_dim=8, dense_g=(8,),
                        g_dim=8, dense_enc=(8,), dense_prior=(8,), dense_dec=(8,), input_transform="log", encoder="backward")
    prior = DVAESpectralPrior([build_dvae(cfg_in, seed=1), build_dvae(cfg_in, seed=2)],
                              SpectralPriorOptions(mixture_levels_db=(0.0, -10.0)))
    mix, _ = _mixture(B=2, T=10)
    cfg = SpectralVEMConfig(iterations=3, assignment="marginal", assignment_prior="frequency")
    first = prior.initial_variance(mix.abs() ** 2)
    own, given = run_spectral_vem(mix, prior, cfg), run_spectral_vem(mix, prior, cfg, first_reading=first)
    torch.testing.assert_close(given.eta, own.eta)
    torch.testing.assert_close(given.elbo, own.elbo)
    with pytest.raises(ConfigError, match="first_reading"):
        run_spectral_vem(mix, prior, cfg, first_reading=first[:, :5])
