"""Constant-velocity one-step forecast."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mixdvae.baselines.constant_velocity import constant_velocity_forecast
from mixdvae.metrics.forecast import forecast_rmse


def test_exact_on_linear_trajectories_after_the_first_step():
    t = np.arange(10, dtype=np.float64)[None, :, None]  # (1, T, 1)
    x = np.concatenate([0.1 + 0.02 * t, 0.5 - 0.01 * t, 0.2 + 0 * t, 0.3 + 0.005 * t], axis=-1)  # (1, 10, 4)
    x = np.repeat(x, 3, axis=0) + np.arange(3)[:, None, None] * 0.1  # (3, 10, 4)
    pred = constant_velocity_forecast(x)
    assert pred.shape == (3, 9, 4)
    np.testing.assert_array_equal(pred[:, 0], x[:, 0])  # x̂_1 = x_0
    assert forecast_rmse(pred[:, 1:], x[:, 2:]) == pytest.approx(0.0, abs=1e-12)
    # the first step misses by exactly one velocity
    np.testing.assert_allclose(pred[:, 0] - x[:, 1], -np.array([0.02, -0.01, 0.0, 0.005]) + 0 * x[:, 0], atol=1e-15)


def test_matches_the_definition_on_random_input():
    x = np.random.default_rng(0).normal(size=(2, 7, 3))
    pred = constant_velocity_forecast(x)
    for t in range(2, 7):
        np.testing.assert_allclose(pred[:, t - 1], x[:, t - 1] + (x[:, t - 1] - x[:, t - 2]))


def test_numpy_and_torch_agree():
    x = np.random.default_rng(1).normal(size=(4, 9, 4)).astype(np.float32)
    got = constant_velocity_forecast(torch.from_numpy(x))
    assert isinstance(got, torch.Tensor) and got.dtype == torch.float32
    np.testing.assert_array_equal(got.numpy(), constant_velocity_forecast(x))


def test_nan_propagates_only_to_forecasts_that_use_it():
    x = np.zeros((1, 6, 1))
    x[0, 2, 0] = np.nan
    pred = constant_velocity_forecast(x)[0, :, 0]  # forecasts of frames 1..5
    np.testing.assert_array_equal(np.isnan(pred), [False, False, True, True, False])


@pytest.mark.parametrize("shape", [(5,), (1, 1, 4)])
def test_rejects_too_short_input(shape):
    with pytest.raises(ValueError, match="expected \\(B, T, D\\) with T >= 2"):
        constant_velocity_forecast(np.zeros(shape))
