"""Leakage training: the leaky input has the stated gain, the loss with x_in = x is the plain loss,
the options are checked, and a prior trained on leaky inputs reconstructs its own source from a
leaky estimate better than one trained on clean inputs (what separation needs of it)."""

from __future__ import annotations

import math

import pytest
import torch

from mixdvae.dvae import DVAEConfig, build_dvae
from mixdvae.dvae.heads import itakura_saito
from mixdvae.dvae.leakage import leaky_input
from mixdvae.dvae.train import TrainConfig, train_dvae
from mixdvae.errors import ConfigError, DataFormatError

F = 16
TINY = dict(x_dim=F, head="complex_variance", input_transform="log", encoder="backward", z_dim=2, rnn_dim=8,
            dense_x=(16,), dense_enc=(8,), dense_prior=(8,), dense_dec=(16,), dense_g=(16,), g_dim=8, dense_z=(8,))


def _spectra(num: int, low_band: bool, seed: int, T: int = 12) -> torch.Tensor:
    """Toy power spectra of one 'source': its own spectral shape (power in the low or the high half
    of the bins, 30 dB less in the other half) at a level that drifts over time.  (num, T, F)"""
    g = torch.Generator().manual_seed(seed)
    own = torch.arange(F) < F // 2 if low_band else torch.arange(F) >= F // 2
    shape = torch.where(own, 1.0, 1e-3)
    level = torch.exp(torch.cumsum(0.3 * torch.randn(num, T, 1, generator=g), 1) + torch.randn(num, 1, 1, generator=g))
    return level * shape * torch.exp(0.1 * torch.randn(num, T, F, generator=g))


def test_leaky_input_adds_the_other_source_at_the_drawn_gain():
    x = _spectra(32, True, 0).double()
    other = _spectra(1, False, 1).double()  # one sequence: every draw picks it
    for low, high in ((-10.0, -10.0), (-20.0, 0.0)):
        out = leaky_input(x, other, low, high, generator=torch.Generator().manual_seed(3))
        added = out - x
        # the added part is the other sequence, scaled: proportional to it bin by bin
        ratio = added / other[0]
        assert torch.allclose(ratio, ratio[:, :1, :1].expand_as(ratio), rtol=1e-6)
        gain_db = 10 * torch.log10(added.mean(dim=(1, 2)) / x.mean(dim=(1, 2)))
        assert (gain_db >= low - 1e-3).all() and (gain_db <= high + 1e-3).all()
        if low == high:
            assert torch.allclose(gain_db, torch.full_like(gain_db, low), atol=1e-3)
        else:
            assert gain_db.std() > 3.0  # a spread of gains, not one


def test_loss_with_x_in_equal_to_x_is_the_plain_loss():
    model = build_dvae(DVAEConfig(**TINY), seed=0)
    x = _spectra(8, True, 0)
    a = model.loss(x, generator=torch.Generator().manual_seed(5))
    b = model.loss(x, generator=torch.Generator().manual_seed(5), x_in=x.clone())
    assert torch.equal(a.loss, b.loss)
    c = model.loss(x, generator=torch.Generator().manual_seed(5), x_in=x + _spectra(8, False, 1))
    assert not torch.equal(a.loss, c.loss)


def test_leakage_options_are_checked(tmp_path):
    with pytest.raises(ConfigError, match="leakage_db"):
        TrainConfig(leakage_db=(0.0, -10.0))
    with pytest.raises(ConfigError, match="leakage_db"):
        TrainConfig(leakage_db=(float("nan"), 0.0))
    assert TrainConfig(leakage_db=[-20, 0]).leakage_db == (-20.0, 0.0)
    model = build_dvae(DVAEConfig(**TINY), seed=0)
    x = _spectra(16, True, 0)
    with pytest.raises(ConfigError, match="--leakage-data"):
        train_dvae(model, x, x, TrainConfig(epochs=1, leakage_db=(-10.0, 0.0)), tmp_path / "a", progress=False)
    with pytest.raises(ConfigError, match="set leakage_db"):
        train_dvae(model, x, x, TrainConfig(epochs=1), tmp_path / "b", progress=False, leakage_x=x)
    with pytest.raises(DataFormatError, match="shorter"):
        train_dvae(model, x, x, TrainConfig(epochs=1, leakage_db=(-10.0, 0.0)), tmp_path / "c", progress=False,
                   leakage_x=x[:, :5])


def test_a_leakage_trained_prior_reads_through_leakage(tmp_path):
    """Both priors see the same clean low-band source; one is trained on inputs with high-band
    leakage. Fed a leaky version of held-out sequences, it predicts the clean spectra with a lower
    Itakura-Saito divergence than the prior trained on clean inputs."""
    own, other = _spectra(256, True, 0), _spectra(256, False, 1)
    test_x = _spectra(64, True, 2)
    test_in = leaky_input(test_x, _spectra(64, False, 3), -10.0, 0.0, generator=torch.Generator().manual_seed(4))
    cfg = TrainConfig(epochs=20, batch_size=32, lr=1e-2, kl_warmup_epochs=2, patience=20, seed=0)
    errors = {}
    for name, leak in (("clean", None), ("leaky", (-10.0, 0.0))):
        model = build_dvae(DVAEConfig(**TINY), seed=0)
        train_dvae(model, own[:224], own[224:], TrainConfig(**{**cfg.__dict__, "leakage_db": leak}), tmp_path / name,
                   progress=False, leakage_x=None if leak is None else other)
        with torch.no_grad():
            h = model.deterministic_h(test_in)
            z, _ = model.encode_from_features(model.encoder_features(test_in, h), sample=False)
            v = model.decode_from_h(h, z).var
        errors[name] = float(itakura_saito(test_x, v).mean())
    assert math.isfinite(errors["leaky"]) and errors["leaky"] < 0.25 * errors["clean"], errors
