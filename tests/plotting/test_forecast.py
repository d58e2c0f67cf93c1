"""Forecast plot."""

from __future__ import annotations

import numpy as np
import pytest

from mixdvae.baselines.constant_velocity import constant_velocity_forecast
from mixdvae.data.synthetic import generate_trajectories
from mixdvae.errors import ConfigError
from mixdvae.plotting.forecast import plot_forecasts

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_writes_a_png(tmp_path):
    target = generate_trajectories(4, 20, seed=0)
    preds = {"constant velocity": constant_velocity_forecast(target), "copy last": target[:, :-1]}
    out = plot_forecasts(tmp_path / "plots" / "forecast.png", target, preds, num=3, title="test")
    assert out == tmp_path / "plots" / "forecast.png"
    data = out.read_bytes()
    assert len(data) > 1000 and data.startswith(PNG_SIGNATURE)
    assert [p.name for p in out.parent.iterdir()] == ["forecast.png"]


def test_nan_gaps_and_more_rows_than_trajectories(tmp_path):
    target = generate_trajectories(2, 10, seed=1).copy()
    target[0, 3] = np.nan
    out = plot_forecasts(tmp_path / "f.png", target, {"cv": constant_velocity_forecast(target)}, num=6)
    assert out.read_bytes().startswith(PNG_SIGNATURE)


def test_bad_inputs(tmp_path):
    target = np.zeros((2, 5, 4))
    with pytest.raises(ConfigError, match="num = 0"):
        plot_forecasts(tmp_path / "f.png", target, {}, num=0)
    with pytest.raises(ValueError, match=r"prediction 'cv' has shape \(2, 6, 4\), expected \(2, T_p <= 5, 4\)"):
        plot_forecasts(tmp_path / "f.png", target, {"cv": np.zeros((2, 6, 4))})
    with pytest.raises(ValueError, match=r"target has shape \(5, 4\)"):
        plot_forecasts(tmp_path / "f.png", target[0], {})
    assert not (tmp_path / "f.png").exists()
