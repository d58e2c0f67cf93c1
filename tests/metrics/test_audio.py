"""Separation metrics: parity with fast_bss_eval, invariances, PESQ / ESTOI failures reported."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from mixdvae.errors import ConfigError, DataFormatError
from mixdvae.metrics.audio import (
    METRICS,
    MetricValue,
    estoi,
    evaluate_mixture,
    evaluate_separation,
    pesq_wb,
    scaled_rmse,
    separation_table,
    si_sdr,
)

SR = 16000


def voiced(seconds: float, f0: float, seed: int) -> np.ndarray:
    """Speech-like: harmonics of f0 with a syllable-rate envelope (PESQ's voice activity detector accepts it)."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    x = sum(np.sin(2 * np.pi * f0 * h * t + rng.uniform(0, 6)) / h for h in range(1, 8))
    x *= 0.6 + 0.4 * np.sin(2 * np.pi * 3.0 * t)
    return 0.2 * x + 0.01 * rng.standard_normal(t.size)


def test_si_sdr_matches_fast_bss_eval():
    fbe = pytest.importorskip("fast_bss_eval.numpy")
    rng = np.random.default_rng(0)
    ref = rng.standard_normal((6, 4000))
    est = 0.7 * ref + rng.uniform(0.05, 2.0, (6, 1)) * rng.standard_normal((6, 4000))
    ours = si_sdr(est, ref)
    theirs = fbe.si_sdr(ref[:, None, :], est[:, None, :])[:, 0]  # one channel: no permutation search
    assert ours.shape == (6,)
    np.testing.assert_allclose(ours, theirs, atol=1e-3)


def test_si_sdr_matches_least_squares_projection():
    rng = np.random.default_rng(1)
    ref, est = rng.standard_normal(3000), rng.standard_normal(3000)
    est += 2 * ref
    alpha = np.linalg.lstsq(ref[:, None], est, rcond=None)[0][0]
    expected = 10 * np.log10(np.sum((alpha * ref) ** 2) / np.sum((est - alpha * ref) ** 2))
    assert si_sdr(est, ref) == pytest.approx(expected, abs=1e-6)


def test_si_sdr_is_scale_invariant_and_batched():
    rng = np.random.default_rng(2)
    ref = rng.standard_normal((2, 3, 1000))
    est = ref + 0.5 * rng.standard_normal((2, 3, 1000))
    base = si_sdr(est, ref)
    assert base.shape == (2, 3)
    for scale in (1e-3, 0.5, 40.0):
        np.testing.assert_allclose(si_sdr(scale * est, ref), base, atol=1e-9)
    loop = np.array([[si_sdr(est[i, j], ref[i, j]) for j in range(3)] for i in range(2)])
    np.testing.assert_allclose(base, loop)
    assert isinstance(si_sdr(est[0, 0], ref[0, 0]), float)
    assert si_sdr(ref[0, 0], ref[0, 0]) > 100.0


def test_scaled_rmse():
    rng = np.random.default_rng(3)
    ref = rng.standard_normal((4, 500))
    assert np.all(scaled_rmse(-3.0 * ref, ref) < 1e-12)
    noise = rng.standard_normal(500)
    noise -= noise @ ref[0] / (ref[0] @ ref[0]) * ref[0]  # orthogonal to ref[0]
    est = ref[0] + noise
    alpha = (est @ ref[0]) / (est @ est)
    assert scaled_rmse(est, ref[0]) == pytest.approx(np.sqrt(np.mean((alpha * est - ref[0]) ** 2)))
    assert scaled_rmse(np.zeros(500), ref[0]) == pytest.approx(np.sqrt(np.mean(ref[0] ** 2)))
    with pytest.raises(ValueError, match="differs"):
        scaled_rmse(ref, ref[:, :-1])


def test_pesq_and_estoi_of_the_reference_itself():
    ref = voiced(1.0, 150.0, 0)
    p = pesq_wb(ref, ref)
    assert p.ok and p.value > 4.0
    e = estoi(ref, ref)
    assert e.ok and e.value == pytest.approx(1.0, abs=1e-6)
    noisy = ref + 0.1 * np.random.default_rng(0).standard_normal(ref.size)
    assert pesq_wb(noisy, ref).value < p.value and estoi(noisy, ref).value < e.value


def test_pesq_and_estoi_failures_carry_a_reason():
    ref = voiced(1.0, 150.0, 0)
    silent = pesq_wb(np.zeros_like(ref), ref)
    assert math.isnan(silent.value) and "silent" in silent.error
    rumble = np.sin(2 * np.pi * 20.0 * np.arange(SR) / SR)  # below the band PESQ listens to
    no_voice = pesq_wb(rumble, rumble)
    assert math.isnan(no_voice.value) and "utterance" in no_voice.error.lower()
    assert "16000" in pesq_wb(ref, ref, sample_rate=8000).error
    short = estoi(ref[:1500], ref[:1500])
    assert math.isnan(short.value) and "Not enough STFT frames" in short.error
    assert estoi(ref, np.zeros_like(ref)).error == "reference is silent (all zero)"
    assert MetricValue(1.0).ok and not MetricValue(math.nan, "x").ok


def _problem(m: int = 2, seconds: float = 1.0):
    refs = np.stack([np.stack([voiced(seconds, 120.0 + 40 * i, i), voiced(seconds, 500.0 + 50 * i, 10 + i)]) for i in range(m)])
    rng = np.random.default_rng(5)
    est = refs + 0.05 * rng.standard_normal(refs.shape)
    return est, refs


def test_evaluate_separation_layout_and_failures():
    est, refs = _problem()
    est[1, 1] = 0.0  # a silent estimate: PESQ fails, reported, not averaged
    est[0, 1, 10] = np.nan  # a non-finite estimate fails every metric
    result = evaluate_separation(est, refs, ["speech", "flute"], SR, mixture=refs.sum(1))
    assert list(result) == ["overall", "per_mixture", "failures", "mixture"]
    assert list(result["overall"]) == ["speech", "flute"]
    assert list(result["overall"]["speech"]) == list(METRICS)
    assert [r["index"] for r in result["per_mixture"]] == [0, 1]
    assert list(result["per_mixture"][0]) == ["index", "speech", "flute"]
    failed = {(f["index"], f["source"], f["metric"]) for f in result["failures"]}
    assert {(0, "flute", m) for m in METRICS} <= failed
    assert (1, "flute", "pesq") in failed
    assert result["per_mixture"][1]["flute"]["pesq"] is None
    assert result["per_mixture"][0]["flute"]["si_sdr"] is None
    # Overall = mean of the values that could be computed.
    assert result["overall"]["flute"]["pesq"] is None  # both flute PESQ values failed
    assert result["overall"]["flute"]["si_sdr"] == pytest.approx(result["per_mixture"][1]["flute"]["si_sdr"])
    speech_sdr = [r["speech"]["si_sdr"] for r in result["per_mixture"]]
    assert result["overall"]["speech"]["si_sdr"] == pytest.approx(np.mean(speech_sdr))
    assert result["overall"]["speech"]["pesq"] > 2.5
    json.dumps(result, allow_nan=False)  # never NaN in JSON
    # The mixture row: the mixture scored against every source; worse than the estimates for speech.
    assert result["mixture"]["overall"]["speech"]["si_sdr"] < result["overall"]["speech"]["si_sdr"]
    table = separation_table(result, method="test")
    assert "| test |" in table and "| Mixture |" in table and "speech:" in table and "flute:" in table
    assert "could not be computed" in table


def test_evaluate_subset_of_metrics_and_errors():
    est, refs = _problem(m=3, seconds=0.3)
    result = evaluate_separation(est, refs, ["a", "b"], SR, metrics=("si_sdr", "rmse"))
    assert list(result["overall"]["a"]) == ["rmse", "si_sdr"]
    assert result["failures"] == []
    np.testing.assert_allclose(
        [r["b"]["si_sdr"] for r in result["per_mixture"]], si_sdr(est[:, 1], refs[:, 1])
    )
    table = separation_table(result)
    assert "| estimate |" in table and " - |" in table
    mix_only = evaluate_mixture(refs.sum(1), refs, ["a", "b"], SR, metrics=("rmse",))
    assert list(mix_only) == ["overall", "per_mixture", "failures"]
    with pytest.raises(ConfigError, match="choose from"):
        evaluate_separation(est, refs, ["a", "b"], SR, metrics=("sdr",))
    with pytest.raises(DataFormatError, match="expected the same"):
        evaluate_separation(est[:, :1], refs, ["a", "b"], SR)
    with pytest.raises(DataFormatError, match="source names"):
        evaluate_separation(est, refs, ["a"], SR)
