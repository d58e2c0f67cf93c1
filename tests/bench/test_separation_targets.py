"""The separation targets and their paired statistics (mixdvae.bench.separation_targets)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from mixdvae.bench.separation_targets import format_separation_targets, paired_difference, separation_targets


def test_paired_difference_matches_scipy_and_skips_missing_pairs():
    rng = np.random.default_rng(0)
    a = rng.normal(10, 2, 30)
    b = a - rng.normal(0.3, 1, 30)
    a_list, b_list = list(a), list(b)
    a_list[3] = None  # a failed metric on mixture 3: that pair is left out, not counted as 0
    b_list[7] = float("nan")
    res = paired_difference(a_list, b_list)
    keep = [i for i in range(30) if i not in (3, 7)]
    d = a[keep] - b[keep]
    assert res["n"] == 28
    assert res["mean"] == pytest.approx(d.mean())
    # the paired t statistic of scipy is mean / se
    t = stats.ttest_rel(a[keep], b[keep]).statistic
    assert res["mean"] / res["se"] == pytest.approx(t)
    assert res["wins"] == int((d > 0).sum())


def test_paired_difference_degenerate_cases():
    assert paired_difference([None, None], [1.0, 2.0]) == {"mean": None, "se": None, "wins": 0, "n": 0}
    one = paired_difference([3.0], [1.0])
    assert one["mean"] == 2.0 and one["se"] is None and one["wins"] == 1
    with pytest.raises(ValueError, match="2 values against 1"):
        paired_difference([1.0, 2.0], [1.0])


def _row(method, speech, flute):
    return {"method": method, "per_mixture": {"speech": {"si_sdr": list(speech)}, "flute": {"si_sdr": list(flute)}}}


def _result():
    mix = [10.0, 12.0, 8.0]
    rows = [
        _row("Mixture", [-5, -5, -5], [5, 5, 5]),
        _row("Oracle IBM", [20, 20, 20], [25, 25, 25]),
        _row("DVAE-init", [9.0, 11.0, 7.5], [14.0, 13.0, 15.0]),  # flute: MixDVAE - DVAE-init = -0.1 on average
        _row("Temporal NMF", [5.0, 9.0, 4.5], [9, 9, 9]),  # speech margin 11.5 / 3 = 3.83 < 4
        _row("MixDVAE (reference)", [9, 9, 9], [9, 9, 9]),
        _row("MixDVAE", mix, [14.1, 13.0, 14.6]),
    ]
    return {"cells": {"T=50, -5 dB": {"rows": rows}}}


def test_targets_follow_the_means_and_name_the_misses():
    targets = separation_targets(_result())
    by = {(t["target"], t["source"], t["against"]): t for t in targets}
    assert by[("above every non-oracle baseline", "speech", "DVAE-init")]["met"] is True
    flute_init = by[("above every non-oracle baseline", "flute", "DVAE-init")]
    assert flute_init["mean"] == pytest.approx((0.1 + 0.0 - 0.4) / 3) and flute_init["met"] is False
    assert flute_init["wins"] == 1
    margin = by[("speech >= temporal NMF + 4 dB", "speech", "Temporal NMF")]
    assert margin["mean"] == pytest.approx(11.5 / 3) and margin["met"] is False
    assert by[("default >= reference", "flute", "MixDVAE (reference)")]["met"] is True
    assert by[("oracles stay ahead", "speech", "Oracle IBM")]["met"] is True
    assert ("speech >= temporal NMF + 4 dB", "flute", "Temporal NMF") not in by  # speech only
    assert not any(t["against"] == "Oracle Wiener" for t in targets)  # rows a cell lacks are skipped
    text = format_separation_targets(targets)
    missed = [t for t in targets if t["met"] is False]
    assert len(missed) == 2
    assert f"targets met: {len(targets) - 2} of {len(targets)}" in text
    assert "T=50, -5 dB flute vs DVAE-init" in text and "**no**" in text


def test_a_metric_failed_everywhere_is_neither_met_nor_missed():
    res = _result()
    for row in res["cells"]["T=50, -5 dB"]["rows"]:
        if row["method"] == "Deep AR":
            raise AssertionError
    res["cells"]["T=50, -5 dB"]["rows"].insert(0, _row("Deep AR", [None] * 3, [math.nan] * 3))
    deep = [t for t in separation_targets(res) if t["against"] == "Deep AR"]
    assert len(deep) == 2 and all(t["met"] is None and t["n"] == 0 for t in deep)
    assert "| - |" in format_separation_targets(deep)
