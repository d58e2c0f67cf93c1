"""Separation benchmark figure: mean and standard error in closed form, failures left out, a PNG per results
file, one-line errors for results that are not a separation benchmark's."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mixdvae.errors import DataFormatError
from mixdvae.plotting.bench import mean_and_standard_error, plot_separation_bench

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def bench_result(metrics=("si_sdr",)) -> dict:
    """Two cells (T = 50 at -5 and 0 dB) of three rows, three mixtures each, in the JSON layout of
    `mixdvae bench separation`; one failed value (None)."""
    def row(method, base):
        per = {n: {m: [base + k + 0.5 * i for i in range(3)] for m in metrics} for k, n in enumerate(("speech", "flute"))}
        return {"method": method, "preset": None, "seconds_per_mixture": 0.1, "overall": {}, "failures": 0,
                "per_mixture": per}
    cells = {}
    for ratio in (-5.0, 0.0):
        rows = [row("Mixture", ratio), row("Oracle IBM", 20.0), row("MixDVAE", 12.0)]
        cells[f"T=50, {ratio:+.0f} dB"] = {"mixtures": 3, "length": 50, "ratio_db": ratio, "rows": rows}
    cells["T=50, -5 dB"]["rows"][2]["per_mixture"]["flute"][metrics[0]][1] = None
    return {"complete": True, "spec": {"metrics": list(metrics)}, "cells": cells}


def test_mean_and_standard_error_leave_failures_out():
    mean, se, k = mean_and_standard_error([1.0, None, 3.0, float("nan"), 5.0])
    assert (mean, k) == (3.0, 3)
    assert se == pytest.approx(math.sqrt(((1 - 3) ** 2 + 0 + (5 - 3) ** 2) / (3 * 2)))
    assert mean_and_standard_error([2.0]) == (2.0, 0.0, 1)
    mean, se, k = mean_and_standard_error([None])
    assert math.isnan(mean) and math.isnan(se) and k == 0


def test_writes_one_png(tmp_path):
    path = plot_separation_bench(tmp_path / "figs" / "bench.png", bench_result(), title="b.json")
    assert path.read_bytes().startswith(PNG_SIGNATURE) and len(path.read_bytes()) > 5000
    assert [p.name for p in path.parent.iterdir()] == ["bench.png"]  # written atomically, no leftovers


@pytest.mark.parametrize(
    ("result", "metric", "message"),
    [
        ({"rows": []}, "si_sdr", "no 'cells'"),
        ([1, 2], "si_sdr", "no 'cells'"),
        ({"cells": {"T=50": {"rows": []}}}, "si_sdr", "a cell lacks 'length'"),
        (bench_result(), "pesq", "cell 'T=50, -5 dB', row 'MixDVAE': no per-mixture 'pesq' for 'speech'"),
    ],
)
def test_other_results_are_one_line_errors(tmp_path, result, metric, message):
    with pytest.raises(DataFormatError) as info:
        plot_separation_bench(tmp_path / "b.png", result, metric=metric)
    assert message in str(info.value) and len(str(info.value).splitlines()) == 1
    assert not list(tmp_path.iterdir())


def test_means_drawn_are_the_per_mixture_means(tmp_path, monkeypatch):
    """The bar of each (row, source) is the mean of its per-mixture values, failures left out."""
    from matplotlib.axes import Axes

    drawn = []
    original = Axes.barh

    def recording(self, y, width, *args, **kwargs):
        drawn.append(float(width))
        return original(self, y, width, *args, **kwargs)

    monkeypatch.setattr(Axes, "barh", recording)
    plot_separation_bench(tmp_path / "b.png", bench_result())
    # the first cell's rows are drawn bottom-up (MixDVAE first), speech then flute; flute 13, (failed), 14 -> 13.5
    np.testing.assert_allclose(drawn[:6], [12.5, 13.5, 20.5, 21.5, -4.5, -3.5])
