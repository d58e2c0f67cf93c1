"""``make demo`` end to end on the bundled data and weights (what a newcomer runs first)."""

import json

from mixdvae.demo import main


def test_demo_writes_every_table_and_figure(tmp_path, capsys):
    assert main(["--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    for heading in ("## 1. One-step forecast", "## 2. Tracking", "## 3. Separating"):
        assert heading in out
    forecast = json.loads((tmp_path / "forecast.json").read_text())
    assert forecast["prior_rmse"] < forecast["constant_velocity_rmse"]  # docs/tracking.md
    tracking = json.loads((tmp_path / "tracking.json").read_text())
    assert set(tracking) == {"MixDVAE", "VKF"} and all(0 <= r["IDF1"] <= 100 for r in tracking.values())
    separation = json.loads((tmp_path / "separation.json").read_text())
    assert set(separation) == {"Mixture", "Temporal NMF", "MixDVAE"}
    for name in ("speech", "flute"):
        # every separator does better than leaving the mixture as it is
        assert separation["MixDVAE"][name]["si_sdr"] > separation["Mixture"][name]["si_sdr"]
    for f in ("forecast.png", "separation/spectrograms_0.png", "separation/mixdvae_0_speech.wav",
              "separation/mixture_1.wav", "tracking_mixdvae.npz"):
        assert (tmp_path / f).stat().st_size > 0
