"""ELBO figure: the progress closed form, skipped when there is nothing to draw, NaN and flat runs, the unit."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from mixdvae.plotting.elbo import elbo_progress, plot_elbo

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_progress_is_zero_at_the_start_one_at_the_end_nan_when_flat():
    elbo = np.array([[-10.0, -4.0, -2.0, -0.0], [3.0, 3.0, 3.0, 3.0], [1.0, 2.0, 0.5, 1.5]])
    progress = elbo_progress(elbo)
    np.testing.assert_allclose(progress[0], [0.0, 6 / 10, 8 / 10, 1.0])
    assert np.isnan(progress[1]).all()
    np.testing.assert_allclose(progress[2], [0.0, 1 / 0.5, -0.5 / 0.5, 1.0])


def test_none_empty_or_all_nan_is_skipped(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="mixdvae.plotting.elbo"):
        assert plot_elbo(tmp_path / "e.png", None) is None
        assert plot_elbo(tmp_path / "e.png", np.zeros((3, 0))) is None
        assert plot_elbo(tmp_path / "e.png", np.full((2, 4), np.nan)) is None
    assert caplog.text.count("not written") == 3
    assert not (tmp_path / "e.png").exists()


@pytest.mark.parametrize("unit", ["window", "chunk"])
def test_png_with_nan_and_flat_curves(tmp_path, unit):
    elbo = np.cumsum(np.random.default_rng(0).uniform(0, 1, (6, 10)), axis=1) + np.arange(6)[:, None] * 100
    elbo[1] = 5.0  # flat: no progress curve
    elbo[2, 7:] = np.nan
    out = plot_elbo(tmp_path / "e.png", elbo, labels=[f"w{i}" for i in range(6)], title="x", unit=unit)
    assert out.read_bytes().startswith(PNG_SIGNATURE)
    assert [p.name for p in tmp_path.iterdir()] == ["e.png"]  # written atomically, no leftovers
    with pytest.raises(ValueError, match=f"2 labels for 6 {unit}s"):
        plot_elbo(tmp_path / "e2.png", elbo, labels=["a", "b"], unit=unit)
    with pytest.raises(ValueError, match=r"elbo has shape \(10,\), expected \(W, I\)"):
        plot_elbo(tmp_path / "e3.png", elbo[0])
