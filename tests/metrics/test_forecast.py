"""Forecast RMSE."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from mixdvae.errors import NumericalError
from mixdvae.metrics.forecast import forecast_rmse


def test_closed_form():
    pred = np.array([[1.0, 2.0], [3.0, 4.0]])
    target = np.array([[1.0, 0.0], [0.0, 4.0]])
    assert forecast_rmse(pred, target) == pytest.approx(math.sqrt((0 + 4 + 9 + 0) / 4))


def test_nan_targets_are_skipped():
    pred = np.array([1.0, 2.0, 5.0, np.nan])
    target = np.array([1.0, 4.0, np.nan, np.nan])
    assert forecast_rmse(pred, target) == pytest.approx(math.sqrt(4 / 2))


def test_torch_and_numpy_agree():
    rng = np.random.default_rng(0)
    pred, target = rng.normal(size=(3, 5, 4)), rng.normal(size=(3, 5, 4))
    assert forecast_rmse(torch.from_numpy(pred).float(), torch.from_numpy(target)) == pytest.approx(
        forecast_rmse(pred, target), rel=1e-6
    )


@pytest.mark.parametrize(
    ("pred", "target", "match"),
    [
        ([np.nan, 1.0], [0.0, 1.0], r"pred is non-finite at 1 known target elements \(first at index \(0,\)\)"),
        ([1.0, np.inf], [0.0, 1.0], r"pred is non-finite at 1 known target elements \(first at index \(1,\)\)"),
        ([1.0, 1.0], [np.nan, np.nan], "target holds no known"),
        ([1.0, 1.0], [np.inf, 0.0], "target holds 1 infinite values"),
    ],
)
def test_numerical_errors(pred, target, match):
    with pytest.raises(NumericalError, match=match):
        forecast_rmse(np.array(pred), np.array(target))


def test_shape_mismatch():
    with pytest.raises(ValueError, match=r"pred has shape \(2, 3\) but target has shape \(3, 2\)"):
        forecast_rmse(np.zeros((2, 3)), np.zeros((3, 2)))
