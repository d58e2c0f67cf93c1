"""IS-NMF baseline: monotone costs, separation of disjoint spectra, temporal continuity, batch = loop,
Wiener gains, bases files and bad inputs. Synthetic fixtures from fixed torch.Generator seeds."""

from __future__ import annotations

import json
import math

import pytest
import torch
from safetensors.torch import save_file

from mixdvae.baselines.nmf import (
    _safeguarded_update,
    _temporal_gradient_parts,
    apply_masks,
    fit_is_nmf,
    is_divergence,
    learn_bases_for_sources,
    learn_is_nmf_bases,
    load_nmf_bases,
    read_nmf_bases_meta,
    save_nmf_bases,
    separate_is_nmf,
    temporal_continuity_cost,
    wiener_gains,
)
from mixdvae.errors import CheckpointError, ConfigError, DataFormatError

D = torch.float64
F_BINS, T_FRAMES, K_COMP = 48, 60, 4


def gamma_noise(shape: tuple[int, ...], shape_k: int, g: torch.Generator) -> torch.Tensor:
    """Gamma(k, 1/k) draws (mean 1) as the mean of k Exp(1) = -log U draws."""
    u = torch.rand((shape_k,) + shape, generator=g, dtype=D)
    return -torch.log(u).sum(dim=0) / shape_k


def band_bases(g: torch.Generator, lo: int, hi: int, k: int = K_COMP) -> torch.Tensor:
    """A true dictionary (F, k) whose energy lies only in bins [lo, hi)."""
    w = torch.zeros(F_BINS, k, dtype=D)
    w[lo:hi] = 0.1 + torch.rand(hi - lo, k, generator=g, dtype=D)
    return w


def source_power(g: torch.Generator, w: torch.Tensor, frames: int = T_FRAMES) -> torch.Tensor:
    """Variance (T, F) = (W H)^T with sparse-ish random activations."""
    h = torch.rand(w.shape[1], frames, generator=g, dtype=D) ** 3
    return (w @ h).T


def complex_gaussian(var: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    """s ~ N_c(0, var), elementwise."""
    re = torch.randn(var.shape, generator=g, dtype=D)
    im = torch.randn(var.shape, generator=g, dtype=D)
    return var.sqrt() * torch.complex(re, im) / math.sqrt(2.0)


@pytest.fixture(scope="module")
def disjoint_problem():
    """Two sources (low bins / high bins), bases learned on separate training examples, 3 mixtures."""
    g = torch.Generator().manual_seed(7)
    half = F_BINS // 2
    w_low, w_high = band_bases(g, 0, half), band_bases(g, half, F_BINS)
    train = {
        "low": torch.stack([source_power(g, w_low) * gamma_noise((T_FRAMES, F_BINS), 1, g) for _ in range(3)]),
        "high": [source_power(g, w_high, 50 + 5 * i) * gamma_noise((50 + 5 * i, F_BINS), 1, g) for i in range(3)],
    }
    bases = learn_bases_for_sources(train, K_COMP, 60, torch.Generator().manual_seed(1))
    var = torch.stack([torch.stack([source_power(g, w_low), source_power(g, w_high)]) for _ in range(3)])
    # var (B, 2, T, F)
    sources = complex_gaussian(var, g)  # (B, 2, T, F)
    return bases, sources, sources.sum(dim=1)


def test_learning_decreases_is_divergence_and_normalises_bases():
    g = torch.Generator().manual_seed(0)
    w_true = torch.rand(F_BINS, 5, generator=g, dtype=D) ** 4
    h_true = torch.rand(5, 200, generator=g, dtype=D) ** 2
    frames = (w_true @ h_true).T * gamma_noise((200, F_BINS), 2, g)  # (M, F)
    fit = fit_is_nmf(frames, 5, 80, torch.Generator().manual_seed(1))
    costs = fit.costs
    assert costs.shape == (81,)
    assert bool(((costs[1:] - costs[:-1]) <= 1e-6 * costs[:-1].abs()).all())
    assert costs[-1] < 0.6 * costs[0]
    assert bool((fit.bases >= 0).all()) and bool((fit.activations >= 0).all())
    torch.testing.assert_close(fit.bases.sum(dim=0), torch.ones(5, dtype=D))
    # the recorded cost is the IS divergence of the floored data under the returned factors
    floored = frames + 1e-10 * frames.mean()
    model = (fit.bases @ fit.activations).T
    torch.testing.assert_close(is_divergence(floored, model), costs[-1])
    # learn_is_nmf_bases is the same fit on (S, T, F) frames; L2 normalisation on request
    stacked = frames.reshape(4, 50, F_BINS)
    torch.testing.assert_close(learn_is_nmf_bases(stacked, 5, 80, torch.Generator().manual_seed(1)), fit.bases)
    w_l2 = learn_is_nmf_bases(stacked.float(), 5, 10, torch.Generator().manual_seed(1), norm="l2")
    assert w_l2.dtype == torch.float32
    torch.testing.assert_close(w_l2.norm(dim=0), torch.ones(5))


def test_restarts_keep_the_fit_of_least_cost():
    """restarts = R: R fits from successive draws of one generator, the bases of least final cost kept."""
    g = torch.Generator().manual_seed(3)
    w_true = torch.rand(F_BINS, 4, generator=g, dtype=D) ** 4
    frames = (w_true @ torch.rand(4, 120, generator=g, dtype=D) ** 2).T * gamma_noise((120, F_BINS), 2, g)  # (M, F)
    draws = torch.Generator().manual_seed(5)
    fits = [fit_is_nmf(frames, 4, 15, draws) for _ in range(4)]  # the same draws, one after another
    finals = torch.stack([f.costs[-1] for f in fits])
    assert float(finals.max() - finals.min()) > 1e-6 * float(finals.min())  # the draws do lead to different fits
    best = int(finals.argmin())
    kept = learn_is_nmf_bases(frames, 4, 15, torch.Generator().manual_seed(5), restarts=4)
    torch.testing.assert_close(kept, fits[best].bases)
    # one restart is one fit, the first draw
    torch.testing.assert_close(learn_is_nmf_bases(frames, 4, 15, torch.Generator().manual_seed(5)), fits[0].bases)
    with pytest.raises(ConfigError, match="restarts"):
        learn_is_nmf_bases(frames, 4, 15, torch.Generator().manual_seed(5), restarts=0)


def test_separation_recovers_disjoint_sources(disjoint_problem):
    bases, sources, mix = disjoint_problem
    half = F_BINS // 2
    result = separate_is_nmf(mix.abs() ** 2, [bases["low"], bases["high"]], 60)
    assert result.source_vars.shape == (3, 2, T_FRAMES, F_BINS)
    assert result.activations.shape == (3, 2 * K_COMP, T_FRAMES)
    assert result.costs.shape == (61, 3)
    gains = wiener_gains(result.source_vars)
    assert float(gains[:, 0, :, :half].min()) > 0.9
    assert float(gains[:, 1, :, half:].min()) > 0.9
    estimates = apply_masks(mix, gains)
    assert estimates.shape == sources.shape and estimates.is_complex()
    error = (estimates - sources).abs().square().sum(dim=(2, 3))
    snr_db = 10 * torch.log10(sources.abs().square().sum(dim=(2, 3)) / error)
    assert float(snr_db.min()) > 30.0
    torch.testing.assert_close(estimates.sum(dim=1), mix)  # gains sum to one: nothing lost


def test_temporal_continuity_smooths_activations_and_cost_never_rises(disjoint_problem):
    bases, _, _ = disjoint_problem
    g = torch.Generator().manual_seed(3)
    level = torch.rand(K_COMP, 1, generator=g, dtype=D).expand(K_COMP, T_FRAMES)  # constant activations
    clean = (bases["low"] @ level).T  # (T, F)
    noisy = (clean * gamma_noise((T_FRAMES, F_BINS), 1, g)).unsqueeze(0)  # (1, T, F)

    def roughness(h: torch.Tensor) -> float:
        return float((h[..., 1:] - h[..., :-1]).square().sum())

    plain = separate_is_nmf(noisy, [bases["low"]], 60)
    smooth = separate_is_nmf(noisy, [bases["low"]], 60, temporal_weight=1.0)
    assert roughness(smooth.activations) < 0.5 * roughness(plain.activations)
    assert float(temporal_continuity_cost(smooth.activations)) < float(temporal_continuity_cost(plain.activations))
    for costs in (plain.costs, smooth.costs):
        assert bool(((costs[1:] - costs[:-1]) <= 1e-6 * costs[:-1].abs()).all())
    # the recorded cost is the penalised cost of the returned activations
    model = torch.matmul(smooth.activations.transpose(1, 2), bases["low"].T)
    expected = is_divergence(noisy + 1e-10 * noisy.mean(), model) + temporal_continuity_cost(smooth.activations)
    torch.testing.assert_close(smooth.costs[-1], expected)


def test_gradient_split_matches_autograd():
    g = torch.Generator().manual_seed(4)
    w = torch.rand(F_BINS, 3, generator=g, dtype=D)
    v = torch.rand(2, 9, F_BINS, generator=g, dtype=D) + 0.1
    h = (torch.rand(2, 3, 9, generator=g, dtype=D) + 0.1).requires_grad_(True)
    temporal_continuity_cost(h).sum().backward()
    positive, negative = _temporal_gradient_parts(h.detach())
    assert bool((positive >= 0).all()) and bool((negative >= 0).all())
    torch.testing.assert_close(positive - negative, h.grad)
    h.grad = None
    is_divergence(v, torch.matmul(h.transpose(1, 2), w.T)).sum().backward()
    model = torch.matmul(h.detach().transpose(1, 2), w.T)
    split = torch.matmul(1 / model, w) - torch.matmul(v / model / model, w)  # W^T v^^-1 - W^T (V v^^-2)
    torch.testing.assert_close(split.transpose(1, 2), h.grad)


def test_safeguard_halves_the_step_and_keeps_a_stuck_factor():
    factor = torch.tensor([[0.5], [1.0]], dtype=D)  # element 1 already at the minimum of (x - 1)^2
    ratio = torch.full((2, 1), 100.0, dtype=D)  # a far too long multiplicative step

    def cost_of(x: torch.Tensor) -> torch.Tensor:
        return (x - 1).square().sum(dim=1)

    new, cost = _safeguarded_update(factor, ratio, cost_of(factor), cost_of, 1.0)
    assert 0.5 < float(new[0, 0]) < 1.5 and float(cost[0]) < 0.25
    assert float(new[1, 0]) == 1.0 and float(cost[1]) == 0.0


def test_batched_separation_equals_loop(disjoint_problem):
    bases, _, mix = disjoint_problem
    power = mix.abs() ** 2
    power[1] *= 1e3  # mixtures of very different levels: the floor is per mixture
    basis_list = [bases["low"], bases["high"]]
    for weight in (0.0, 0.5):
        batch = separate_is_nmf(power, basis_list, 40, temporal_weight=weight)
        for b in range(power.shape[0]):
            alone = separate_is_nmf(power[b : b + 1], basis_list, 40, temporal_weight=weight)
            torch.testing.assert_close(batch.source_vars[b : b + 1], alone.source_vars, rtol=1e-5, atol=0)
            torch.testing.assert_close(batch.activations[b : b + 1], alone.activations, rtol=1e-5, atol=0)


def test_float32_and_random_start(disjoint_problem):
    bases, _, mix = disjoint_problem
    power = (mix.abs() ** 2).float()
    result = separate_is_nmf(power, [bases["low"], bases["high"]], 30, generator=torch.Generator().manual_seed(5))
    assert result.source_vars.dtype == torch.float32
    assert bool(torch.isfinite(result.source_vars).all())
    gains = wiener_gains(result.source_vars)
    torch.testing.assert_close(gains.sum(dim=1), torch.ones_like(gains[:, 0]))


def test_wiener_gains_sum_to_one_and_split_silence_evenly():
    g = torch.Generator().manual_seed(6)
    var = torch.rand(2, 3, 5, 7, generator=g, dtype=D)
    var[0, :, 2, 3] = 0.0  # every source silent in one bin
    var[1, 1] = 0.0  # one source silent everywhere
    gains = wiener_gains(var)
    torch.testing.assert_close(gains.sum(dim=1), torch.ones(2, 5, 7, dtype=D))
    torch.testing.assert_close(gains[0, :, 2, 3], torch.full((3,), 1 / 3, dtype=D))
    assert float(gains[1, 1].abs().max()) == 0.0
    torch.testing.assert_close(gains[0, :, 0, 0], var[0, :, 0, 0] / var[0, :, 0, 0].sum())


def test_bases_file_round_trip(tmp_path):
    g = torch.Generator().manual_seed(8)
    bases = {"speech": torch.rand(F_BINS, 5, generator=g), "flute": torch.rand(F_BINS, 3, generator=g)}
    path = save_nmf_bases(tmp_path / "nmf" / "bases.safetensors", bases, {"iterations": 60, "data": "synthetic"})
    loaded = load_nmf_bases(path)
    assert list(loaded) == ["speech", "flute"]
    for name, w in bases.items():
        torch.testing.assert_close(loaded[name], w)
    meta = read_nmf_bases_meta(path)
    assert meta == {"components": {"speech": 5, "flute": 3}, "iterations": 60, "data": "synthetic"}
    assert [p.name for p in path.parent.iterdir()] == ["bases.safetensors"]  # no temporary left


def test_bad_bases_files_name_the_file(tmp_path):
    good = save_nmf_bases(tmp_path / "good.safetensors", {"speech": torch.rand(F_BINS, 4)})
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    nan = tmp_path / "nan.safetensors"
    meta = {"format": "mixdvae-nmf-bases", "format_version": "1", "meta": json.dumps({"components": {"speech": 4}})}
    save_file({"speech": torch.full((F_BINS, 4), float("nan"))}, str(nan), metadata=meta)
    other = tmp_path / "other.safetensors"
    save_file({"weight": torch.ones(2, 2)}, str(other))
    cases = [(tmp_path / "missing.safetensors", "not found"), (truncated, "truncated"), (nan, "NaN"), (other, "format")]
    for path, words in cases:
        with pytest.raises(CheckpointError) as info:
            load_nmf_bases(path)
        message = str(info.value)
        assert message.startswith(str(path)) and words in message and "\n" not in message


def test_bad_inputs_raise_one_line_errors(disjoint_problem):
    bases, _, mix = disjoint_problem
    power = mix.abs() ** 2
    negative = power.clone()
    negative[0, 3, 4] = -1.0
    basis_list = [bases["low"], bases["high"]]
    g = torch.Generator().manual_seed(0)
    frames = power[0]
    cases = [
        (lambda: separate_is_nmf(negative, basis_list, 5), DataFormatError, "negative"),
        (lambda: learn_is_nmf_bases(-frames, 3, 5, g), DataFormatError, "negative"),
        (lambda: separate_is_nmf(mix, basis_list, 5), DataFormatError, "complex"),
        (lambda: separate_is_nmf(power[0], basis_list, 5), DataFormatError, "(B, T, F)"),
        (lambda: separate_is_nmf(power, [bases["low"][:-1]], 5), ConfigError, "bins"),
        (lambda: separate_is_nmf(power, basis_list, 5, temporal_weight=-1.0), ConfigError, "temporal_weight"),
        (lambda: learn_is_nmf_bases(frames, 0, 5, g), ConfigError, "num_components"),
        (lambda: fit_is_nmf(frames, 2, -1, g), ConfigError, "iterations"),
        (lambda: learn_bases_for_sources({"flute": -frames}, 2, 5, g), DataFormatError, "flute"),
        (lambda: wiener_gains(-power.unsqueeze(1)), DataFormatError, "negative"),
        (lambda: apply_masks(mix, torch.ones(3, 2, 5, 5)), DataFormatError, "does not match"),
    ]
    for call, error, words in cases:
        with pytest.raises(error) as info:
            call()
        assert words in str(info.value) and "\n" not in str(info.value)
