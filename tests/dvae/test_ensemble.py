"""Ensembles of DVAEs (several seeds of one recipe read as one prior): the combined variance is the
closed form of the members' own outputs, the stacked latent's KL is the sum of theirs, the
checkpoint round-trips, and an ensemble is refused where it cannot run."""

from __future__ import annotations

import json

import pytest
import torch

from mixdvae.dvae.base import kl_diag_gauss
from mixdvae.dvae.checkpoint import load_dvae, save_dvae
from mixdvae.dvae.config import DVAEConfig
from mixdvae.dvae.ensemble import DVAEEnsemble, combine_variances, save_ensemble
from mixdvae.dvae.factory import build_dvae
from mixdvae.dvae.layers import shift_right
from mixdvae.dvae.weights import load_weights
from mixdvae.errors import CheckpointError, ConfigError
from mixdvae.inference.spectral_prior import DVAESpectralPrior
from mixdvae.inference.spectral_vem import SpectralVEMConfig, run_spectral_vem

F = 12


def _member(seed: int, family: str = "srnn", rnn_dim: int = 6):
    cfg = DVAEConfig(family=family, encoder="backward", x_dim=F, z_dim=3, head="complex_variance", dense_x=(8,),
                     rnn_dim=rnn_dim, dense_g=(8,), g_dim=5, dense_enc=(8,), dense_prior=(8,), dense_dec=(8,),
                     input_transform="log")
    return build_dvae(cfg, seed=seed).eval()


def _power(B=2, T=7, seed=0):
    return torch.rand(B, T, F, generator=torch.Generator().manual_seed(seed)) + 0.05


def _read(model, u):
    """v (decoder variance at the encoder mean) and KL(q(z) || p(z)) per sequence.  u (B, T, F) -> (B, T, F), (B,)"""
    h = model.deterministic_h(u)
    z, q = model.encode_from_features(model.encoder_features(u, h), sample=False)
    kl = kl_diag_gauss(q, model.prior_from_h(h, shift_right(z))).sum(-1)
    return model.decode_from_h(h, z).var, kl


def test_combined_variance_is_the_closed_form():
    v = [torch.tensor([1.0, 4.0]), torch.tensor([4.0, 1.0]), torch.tensor([2.0, 2.0])]
    torch.testing.assert_close(combine_variances(v, "geometric"), torch.tensor([2.0, 2.0]))
    torch.testing.assert_close(combine_variances(v, "arithmetic"), torch.tensor([7 / 3, 7 / 3]))


@pytest.mark.parametrize("combine", ["geometric", "arithmetic"])
@torch.no_grad()
def test_ensemble_reads_like_its_members_combined(combine):
    members = [_member(1), _member(2), _member(3, rnn_dim=9)]  # members may differ in width
    ens = DVAEEnsemble(members, combine)
    assert ens.batched_encoder  # the members' encoder loops run as one batched loop
    u = _power()
    v_ens, kl_ens = _read(ens, u)
    reads = [_read(m, u) for m in members]
    torch.testing.assert_close(v_ens, combine_variances([r[0] for r in reads], combine))
    torch.testing.assert_close(kl_ens, sum(r[1] for r in reads))
    assert ens.z_dim == 9


@torch.no_grad()
def test_an_ensemble_of_one_is_the_member():
    m = _member(4)
    u = _power()
    for a, b in zip(_read(DVAEEnsemble([m]), u), _read(m, u)):
        torch.testing.assert_close(a, b)


@torch.no_grad()
def test_deep_ar_members_have_no_latent():
    members = [_member(1, "deep_ar"), _member(2, "deep_ar")]
    ens = DVAEEnsemble(members)
    u = _power()
    v = ens.decode_from_h(ens.deterministic_h(u)).var
    ref = [m.decode_from_h(m.deterministic_h(u)).var for m in members]
    torch.testing.assert_close(v, torch.sqrt(ref[0] * ref[1]))


def test_members_of_another_family_or_size_are_refused():
    with pytest.raises(ConfigError, match="share family"):
        DVAEEnsemble([_member(1), _member(2, "deep_ar")])
    with pytest.raises(ConfigError, match="combine"):
        DVAEEnsemble([_member(1)], "median")


@torch.no_grad()
def test_checkpoint_round_trip_and_refusals(tmp_path):
    widened = {"init": "runs/a/best.safetensors", "init_widened": {"dense_dec": {"from": [8], "to": [32]}}}
    paths = [save_dvae(tmp_path / f"m{s}", _member(s), {"seed": s, "metrics": {"val_loss": -float(s)},
                                                         **(widened if s == 2 else {})}) for s in (1, 2)]
    out = save_ensemble(tmp_path / "ens", paths)
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["ensemble"]["members"] == 2 and card["seed"] == [1, 2]
    members = card["ensemble"]["member_cards"]
    assert [c["metrics"]["val_loss"] for c in members] == [-1.0, -2.0]
    assert "init" not in members[0] and {k: members[1][k] for k in widened} == widened  # what a member started from
    loaded = load_dvae(out)
    assert isinstance(loaded, DVAEEnsemble)
    u = _power()
    for a, b in zip(_read(loaded, u), _read(DVAEEnsemble([_member(1), _member(2)]), u)):
        torch.testing.assert_close(a, b)
    # where an ensemble cannot run (tracking, forecasting) it is a one-line error
    with pytest.raises(CheckpointError, match="ensemble of 2 priors"):
        load_weights(out)
    assert isinstance(load_weights(out, ensemble_ok=True), DVAEEnsemble)
    # members of different architectures, and a broken card entry
    other = save_dvae(tmp_path / "wide", _member(3, rnn_dim=9))
    with pytest.raises(ConfigError, match="architecture differs"):
        save_ensemble(tmp_path / "bad", [paths[0], other])
    card["ensemble"]["members"] = "two"
    out.with_suffix(".json").write_text(json.dumps(card))
    with pytest.raises(CheckpointError, match="'members', an integer"):
        load_dvae(out)


def test_the_audio_vem_elbo_never_falls_with_an_ensemble_prior():
    """Exact steps (mean-field E-W at temperature 1, uniform prior) with an ensemble per source whose
    members read a fixed profile: the stacked latent keeps the ELBO exact, so it never falls."""
    low = torch.where(torch.arange(F) < F // 2, torch.tensor(0.0), torch.tensor(-9.0))

    def fixed(seed, profile):
        m = _member(seed, "deep_ar").double()
        with torch.no_grad():
            m.head.logvar.weight.zero_()
            m.head.logvar.bias.copy_(profile + 0.3 * (seed % 2))
        return m

    prior = DVAESpectralPrior([DVAEEnsemble([fixed(1, low), fixed(2, low)]),
                               DVAEEnsemble([fixed(3, low.flip(0)), fixed(4, low.flip(0))])])
    g = torch.Generator().manual_seed(0)
    std = torch.stack([torch.exp(0.5 * low), torch.exp(0.5 * low.flip(0))])  # (N, F)
    s = torch.complex(torch.randn(3, 10, 2, F, generator=g, dtype=torch.float64),
                      torch.randn(3, 10, 2, F, generator=g, dtype=torch.float64)) * std.double()
    res = run_spectral_vem(s.sum(2).to(torch.complex128), prior, SpectralVEMConfig(iterations=10))
    diffs = res.elbo[1:] - res.elbo[:-1]
    assert (diffs >= -1e-6 * res.elbo[1:].abs()).all(), diffs.min()
    # and the two sources are told apart: each bin goes to the profile that is loud there
    eta = res.eta.mean(dim=(0, 1))  # (F, N)
    assert (eta[: F // 2, 0] > 0.9).all() and (eta[F // 2:, 1] > 0.9).all()
