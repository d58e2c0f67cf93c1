"""``mixdvae bench separation`` end to end on a few real mixtures (LibriSpeech test-other + real flute)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mixdvae.bench.separation import SeparationBenchSpec, bench_mixtures, default_flute_files
from mixdvae.cli.main import main
from mixdvae.metrics.audio import si_sdr
from mixdvae.separation.separate import Separator


def test_bench_writes_rows_per_mixture_values_and_targets(shared_data, tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = main(["bench", "separation", "--audio-dir", str(shared_data / "audio"), "--lengths", "50", "--ratios", "-5",
                 "--num", "3", "--methods", "oracle-ibm,temporal-nmf,mixdvae", "--metrics", "si_sdr",
                 "--cache-dir", str(tmp_path / "cache"), "--no-speed", "--no-progress", "--json", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "| T=50, -5 dB (3 mix) | MixDVAE |" in printed
    assert "Targets (SI-SDR" in printed and "targets met:" in printed
    result = json.loads(out.read_text())
    assert result["complete"] is True
    rows = {r["method"]: r for r in result["cells"]["T=50, -5 dB"]["rows"]}
    # "mixdvae" selects both presets' rows
    assert list(rows) == ["Mixture", "Oracle IBM", "Temporal NMF", "MixDVAE (reference)", "MixDVAE"]
    # the per-mixture values are the SI-SDR of each mixture's estimate, and their mean is "overall"
    spec = SeparationBenchSpec(shared_data / "audio" / "speech" / "librispeech" / "test-other",
                               default_flute_files(shared_data / "audio"), (50,), (-5.0,), 3,
                               cache_dir=tmp_path / "cache")
    mix = bench_mixtures(spec, 50, -5.0)
    ibm = Separator(list(mix.source_names), "oracle-ibm").separate(mix.mixture, mix.sources)
    for n, name in enumerate(mix.source_names):
        mine = np.array(rows["Oracle IBM"]["per_mixture"][name]["si_sdr"])
        np.testing.assert_allclose(mine, si_sdr(ibm.waveforms[:, n], mix.sources[:, n]), atol=1e-6)
        assert rows["Oracle IBM"]["overall"][name]["si_sdr"] == pytest.approx(mine.mean())
    targets = result["targets"]
    kinds = {(t["target"], t["source"], t["against"]) for t in targets}
    assert ("speech >= temporal NMF + 4 dB", "speech", "Temporal NMF") in kinds
    assert ("oracles stay ahead", "flute", "Oracle IBM") in kinds
    assert ("above every non-oracle baseline", "flute", "Mixture") in kinds
    assert ("default >= reference", "speech", "MixDVAE (reference)") in kinds
    for t in targets:
        other = np.array(rows[t["against"]]["per_mixture"][t["source"]]["si_sdr"])
        ours = np.array(rows["MixDVAE"]["per_mixture"][t["source"]]["si_sdr"])
        assert t["mean"] == pytest.approx((ours - other).mean()) and t["n"] == 3
    # on real mixtures the oracle mask is far ahead, and MixDVAE far above the mixture itself
    assert all(t["met"] for t in targets if t["target"] == "oracles stay ahead")
    assert all(t["met"] for t in targets if t["against"] == "Mixture")


def test_an_interrupted_bench_keeps_the_cells_it_finished(shared_data, tmp_path, capsys, monkeypatch):
    out = tmp_path / "bench.json"
    calls = {"n": 0}
    real = Separator.separate

    def separate_then_interrupt(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:  # the second cell's first method: Ctrl-C
            raise KeyboardInterrupt
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Separator, "separate", separate_then_interrupt)
    code = main(["bench", "separation", "--audio-dir", str(shared_data / "audio"), "--lengths", "50,100", "--ratios", "-5",
                 "--num", "2", "--methods", "oracle-ibm", "--metrics", "si_sdr", "--cache-dir", str(tmp_path / "cache"),
                 "--no-speed", "--no-progress", "--json", str(out)])
    assert code == 130
    assert "interrupted; finished results were kept" in capsys.readouterr().err
    result = json.loads(out.read_text())
    assert result["complete"] is False
    assert list(result["cells"]) == ["T=50, -5 dB"]
    rows = {r["method"]: r for r in result["cells"]["T=50, -5 dB"]["rows"]}
    assert rows["Oracle IBM"]["overall"]["speech"]["si_sdr"] > 10
