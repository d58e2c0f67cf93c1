"""The shipped weights: every one loads, its card says how it was made, and the figures it claims
hold when recomputed."""

import json

import numpy as np
import pytest
import torch

from mixdvae.baselines.constant_velocity import constant_velocity_forecast
from mixdvae.baselines.nmf import load_nmf_bases, read_nmf_bases_meta
from mixdvae.cli.evaluate_forecast import prior_forecast
from mixdvae.data.trajectories import load_trajectories
from mixdvae.dvae.weights import SHIPPED, load_weights, shipped_weights
from mixdvae.metrics.forecast import forecast_rmse
from mixdvae.demo import asset


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_prior_loads_and_has_a_card(name):
    path = shipped_weights(name)
    model = load_weights(path, ensemble_ok=name.startswith(("speech", "flute")))  # the flute priors are ensembles
    card = json.loads(path.with_suffix(".json").read_text())
    assert "mixdvae train" in card["command"] and card.get("license")
    assert model.num_parameters() > 0
    assert all(torch.isfinite(p).all() for p in model.parameters())
    if name.startswith(("speech", "flute")):
        assert model.x_dim == 513 and model.config.head == "complex_variance"
        r = card["heldout_resynthesis"]
        assert r["clips"] > 0 and np.isfinite(r["si_sdr_db"])
    else:
        assert model.x_dim == 4 and "heldout_forecast" in card


def test_shipped_motion_prior_forecasts_better_than_constant_velocity():
    """One-step forecast RMSE of the shipped SRNN on the 1,000 held-out synthetic trajectories
    (recomputed here, and equal to the card's figure) strictly below constant velocity's, which is
    exact on most frames of these trajectories (docs/tracking.md); the prior was trained with the
    point-forecast term (forecast_weight = 1) and measures 0.998 x constant velocity."""
    boxes = load_trajectories(asset("heldout_trajectories.npz")).boxes
    model = load_weights(shipped_weights("motion_srnn"))
    target = boxes[:, 1:]
    prior = forecast_rmse(prior_forecast(model, boxes), target)
    cv = forecast_rmse(constant_velocity_forecast(boxes), target)
    assert prior < cv, (prior, cv)
    card = json.loads(shipped_weights("motion_srnn").with_suffix(".json").read_text())
    assert card["heldout_forecast"]["prior_rmse"] == pytest.approx(prior, rel=1e-4)


def test_shipped_nmf_bases_cover_both_sources():
    path = shipped_weights("nmf_bases")
    bases = load_nmf_bases(path)
    assert set(bases) == {"speech", "flute"}
    for w in bases.values():
        assert w.shape[0] == 513 and (w >= 0).all()
    assert "learn_nmf_bases" in json.dumps(read_nmf_bases_meta(path))


def test_shipped_audio_priors_separate_unseen_speech_from_real_flute(shared_data):
    """The leakage-trained priors (docs/separation.md) on 6 mixtures of unseen LibriSpeech speakers
    and real flute recordings at 0 dB, T = 100: MixDVAE's speech and flute SI-SDR are well above
    temporal NMF's (measured at stop 17: 16.5 / 16.5 against 5.8 / 6.7 dB; the bar is 2 dB) and
    above the Deep AR prior's in the same VEM; and the default's block-wise assignment prior beats
    the uniform 1/N of the reference on both sources (the development sets chose it; these are
    unseen speakers and real flute)."""
    import dataclasses

    from mixdvae.data.mixtures import make_mixtures
    from mixdvae.metrics.audio import si_sdr
    from mixdvae.separation.presets import DEFAULT
    from mixdvae.separation.separate import Separator

    audio = shared_data / "audio"
    mix = make_mixtures(audio / "speech" / "librispeech" / "test-other", audio / "music" / "medley_solos_db" / "flute",
                        [0.0], 100, 6, seed=5)
    cfg = dataclasses.replace(DEFAULT, chunk_frames=100, overlap_frames=0)
    uniform = dataclasses.replace(cfg, vem=dataclasses.replace(cfg.vem, assignment_prior="uniform"))
    score = {}
    for label, method, config in (("mixdvae", "mixdvae", cfg), ("uniform prior", "mixdvae", uniform),
                                  ("deep-ar", "deep-ar", cfg), ("temporal-nmf", "temporal-nmf", cfg)):
        est = Separator(list(mix.source_names), method, config).separate(mix.mixture).waveforms
        score[label] = [float(si_sdr(est[:, n], mix.sources[:, n]).mean()) for n in range(2)]
    for n in range(2):
        assert score["mixdvae"][n] > score["temporal-nmf"][n] + 2.0, score
        assert score["mixdvae"][n] > score["deep-ar"][n], score
        assert score["mixdvae"][n] > score["uniform prior"][n], score
