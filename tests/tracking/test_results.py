"""Tracking results file: round trip and one-line errors naming the file and the field."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from mixdvae.errors import DataFormatError
from mixdvae.tracking.results import TrackingResults, load_tracking_results, save_tracking_results

W, T, K, N = 2, 5, 3, 3


def _results() -> TrackingResults:
    rng = np.random.default_rng(0)
    xy = rng.uniform(0, 500, (W, T, N, 2))
    eta = rng.dirichlet(np.ones(N), (W, T, K))
    eta[0, 1, 2] = np.nan  # a missing detection
    return TrackingResults(boxes=np.concatenate([xy, xy + 40], -1), eta=eta, elbo=rng.normal(size=(W, 7)),
                           method="mixdvae", config={"preset": "reference", "iterations": 70})


def _arrays(res: TrackingResults) -> dict:
    return {"boxes": res.boxes, "eta": res.eta, "elbo": res.elbo, "method": np.array(res.method),
            "config": np.array(json.dumps(res.config))}


def test_round_trip(tmp_path: Path) -> None:
    res = _results()
    path = save_tracking_results(tmp_path / "r.npz", res)
    back = load_tracking_results(path)
    np.testing.assert_array_equal(back.boxes, res.boxes)
    np.testing.assert_array_equal(back.eta, res.eta)  # NaN rows kept
    np.testing.assert_array_equal(back.elbo, res.elbo)
    assert (back.method, back.config) == ("mixdvae", {"preset": "reference", "iterations": 70})
    assert [p.name for p in tmp_path.iterdir()] == ["r.npz"]  # no temporary file left


def test_elbo_is_optional(tmp_path: Path) -> None:
    res = _results()
    path = save_tracking_results(tmp_path / "r.npz", TrackingResults(res.boxes, res.eta, None, "vkf", "{}"))
    back = load_tracking_results(path)
    assert back.elbo is None and back.config == {} and back.method == "vkf"


def _write(tmp_path: Path, **changes) -> Path:
    arrays = {**_arrays(_results()), **changes}
    arrays = {k: v for k, v in arrays.items() if v is not None}
    path = tmp_path / "r.npz"
    np.savez(path, **arrays)
    return path


def _boxes_with_nan() -> np.ndarray:
    boxes = _results().boxes.copy()
    boxes[1, 3, 2, 0] = np.nan
    return boxes


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"eta": None}, "r.npz: missing key 'eta' (found: boxes, elbo, method, config)"),
        ({"config": None}, "r.npz: missing key 'config' (found: boxes, eta, elbo, method)"),
        ({"boxes": np.zeros((W, T, N, 2))},
         "r.npz: 'boxes' must be float (W, T, N, 4), got float64 (2, 5, 3, 2)"),
        ({"boxes": np.zeros((W, T, N, 4), dtype=np.int64)},
         "r.npz: 'boxes' must be float (W, T, N, 4), got int64 (2, 5, 3, 4)"),
        ({"eta": np.zeros((W, T, K, N + 1))},
         "r.npz: 'eta' must be float (W, T, K, N) = (2, 5, K, 3), got float64 (2, 5, 3, 4)"),
        ({"boxes": _boxes_with_nan()},
         "r.npz: 'boxes' of window 1 are not finite (frame 3, source 2: [nan,"),
        ({"eta": np.full((W, T, K, N), 2.0)}, "r.npz: 'eta' must hold probabilities in [0, 1] or NaN"),
        ({"elbo": np.zeros((W + 1, 4))}, "r.npz: 'elbo' must be float (W, I) with W = 2, got float64 (3, 4)"),
        ({"method": np.array(["a", "b"])}, "r.npz: 'method' must be a 0-d string, got <U1 (2,)"),
        ({"config": np.array("{oops")}, "r.npz: 'config' is not JSON (Expecting property name"),
        ({"config": np.array("[1, 2]")}, "r.npz: 'config' must be a JSON object, got list"),
    ],
)
def test_bad_files(tmp_path: Path, changes: dict, message: str) -> None:
    path = _write(tmp_path, **changes)
    with pytest.raises(DataFormatError) as info:
        load_tracking_results(path)
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith(str(tmp_path / "r.npz")), text
    assert message.split(": ", 1)[1] in text, text


def test_missing_and_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(DataFormatError, match="results file not found"):
        load_tracking_results(tmp_path / "nope.npz")
    bad = tmp_path / "bad.npz"
    bad.write_text("not a zip")
    with pytest.raises(DataFormatError, match=r"bad.npz: not a valid \.npz file \("):
        load_tracking_results(bad)
    npy = tmp_path / "a.npy"
    np.save(npy, np.zeros(3))
    with pytest.raises(DataFormatError, match=r"a.npy: not a valid \.npz file \(a single \.npy array, not an archive\)$"):
        load_tracking_results(npy)
