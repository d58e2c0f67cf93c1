"""Tracking plots: detection colours follow argmax η, PNG files, window selection (the ELBO figure:
test_elbo.py)."""

from __future__ import annotations

import numpy as np
import pytest
from matplotlib.colors import to_rgba

from mixdvae.data.windows import WindowSet
from mixdvae.errors import ConfigError
from mixdvae.plotting.tracking import (
    UNASSIGNED_COLOUR,
    detection_colours,
    detection_labels,
    plot_assignments,
    plot_tracking_results,
    plot_window_tracks,
    source_colours,
)
from mixdvae.tracking.results import TrackingResults

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
W, T, N = 3, 8, 2


def _is_png(path) -> bool:
    data = path.read_bytes()
    return data.startswith(PNG_SIGNATURE) and len(data) > 5000


def _window_data(seed: int = 0):
    """Two people walking apart; detections = truth + noise, slot 1 missed at t = 3, slot 0 clutter at t = 5."""
    rng = np.random.default_rng(seed)
    t = np.arange(T)[:, None]
    x1 = np.array([[100.0, 300.0]]) + np.array([[5.0, -4.0]]) * t  # (T, N)
    gt = np.stack([x1, np.full((T, N), 80.0), x1 + 30, np.full((T, N), 160.0)], axis=-1)  # (T, N, 4)
    boxes = gt + rng.normal(0, 2, gt.shape)
    det = (gt + rng.normal(0, 3, gt.shape))[:, ::-1].copy()  # slot k holds person N - 1 - k
    eta = np.zeros((T, N, N))
    eta[:, 0, 1] = eta[:, 1, 0] = 1.0
    det[3, 1] = np.nan
    eta[3, 1] = np.nan  # missing detection: NaN row
    eta[5, 0] = [0.2, 0.1]  # mostly clutter
    return gt, boxes, det, eta


def test_detection_labels_argmax_and_unassigned():
    eta = np.array([
        [[0.9, 0.1, 0.0], [0.0, 0.3, 0.6], [0.2, 0.1, 0.1], [np.nan, np.nan, np.nan], [0.0, 0.0, 0.0]],
    ])  # (T=1, K=5, N=3)
    labels, prob = detection_labels(eta)
    assert labels.tolist() == [[0, 2, -1, -1, -1]]
    np.testing.assert_allclose(prob, [[0.9, 0.6, 0.2, 0.0, 0.0]])
    assert labels.dtype == np.int64
    # the threshold is on the row sum: 0.4 passes at min_mass = 0.3
    assert detection_labels(eta, min_mass=0.3)[0].tolist() == [[0, 2, 0, -1, -1]]
    rgba = detection_colours(eta)
    assert rgba.shape == (1, 5, 4)
    palette = source_colours(3)
    assert [tuple(c) for c in rgba[0]] == [palette[0], palette[2], UNASSIGNED_COLOUR, UNASSIGNED_COLOUR,
                                           UNASSIGNED_COLOUR]


def test_source_colours_are_distinct_and_not_grey():
    colours = source_colours(15)
    assert len(set(colours)) == 15
    assert UNASSIGNED_COLOUR not in colours and to_rgba("tab:gray") not in colours
    assert source_colours(16)[15] == colours[0]


def test_window_and_assignment_pngs(tmp_path):
    gt, boxes, det, eta = _window_data()
    out = plot_window_tracks(tmp_path / "a" / "w.png", gt, boxes, det, eta, title="test",
                             image_size=(640, 480), first_frame=11, gt_labels=["#0 (id 4)", "#1 (id 7)"])
    assert out == tmp_path / "a" / "w.png" and _is_png(out)
    out = plot_assignments(tmp_path / "a" / "asg.png", eta, det_gt_index=np.tile([1, 0], (T, 1)), title="t")
    assert _is_png(out)
    assert plot_assignments(tmp_path / "a" / "asg2.png", eta).exists()
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["asg.png", "asg2.png", "w.png"]  # no temp files


def test_window_shape_errors(tmp_path):
    gt, boxes, det, eta = _window_data()
    with pytest.raises(ValueError, match=r"eta \(8, 2, 3\); expected"):
        plot_window_tracks(tmp_path / "w.png", gt, boxes, det, np.zeros((T, N, 3)))
    with pytest.raises(ValueError, match="1 gt_labels for 2 ground-truth objects"):
        plot_window_tracks(tmp_path / "w.png", gt, boxes, det, eta, gt_labels=["a"])
    with pytest.raises(ValueError, match=r"det_gt_index has shape \(8, 3\), expected \(8, 2\)"):
        plot_assignments(tmp_path / "a.png", eta, np.zeros((T, 3), dtype=int))
    assert not list(tmp_path.iterdir())


def _window_set() -> WindowSet:
    gt, _, det, _ = _window_data()
    return WindowSet(
        gt=np.stack([gt] * W), det=np.stack([det] * W), det_gt_index=np.tile([1, 0], (W, T, 1)),
        sequence=np.array(["TUD-Campus"] * W), ids=np.tile([4, 7], (W, 1)),
        image_size=np.tile([640.0, 480.0], (W, 1)), frames=np.array([[1, 8], [9, 16], [17, 24]]),
        recipe={},
    )


def test_plot_tracking_results_files(tmp_path):
    windows = _window_set()
    _, boxes, _, eta = _window_data()
    results = TrackingResults(boxes=np.stack([boxes] * W), eta=np.stack([eta] * W),
                              elbo=np.tile(np.linspace(0, 1, 5), (W, 1)), method="test")
    paths = plot_tracking_results(tmp_path / "out", windows, results, indices=[2, 0])
    assert [p.name for p in paths] == ["window_0002.png", "assignments_0002.png", "window_0000.png",
                                       "assignments_0000.png", "elbo.png"]
    assert all(_is_png(p) for p in paths)
    no_elbo = TrackingResults(boxes=results.boxes, eta=results.eta, elbo=None, method="kalman")
    paths = plot_tracking_results(tmp_path / "out2", windows, no_elbo, max_windows=1, assignments=False)
    assert [p.name for p in paths] == ["window_0000.png"]
    assert plot_tracking_results(tmp_path / "out3", windows, no_elbo, max_windows=0) == []


def test_plot_tracking_results_errors(tmp_path):
    windows = _window_set()
    _, boxes, _, eta = _window_data()
    results = TrackingResults(boxes=np.stack([boxes] * W), eta=np.stack([eta] * W))
    with pytest.raises(ConfigError, match=r"window index 3 is out of range: the file has 3 windows \(0 … 2\)"):
        plot_tracking_results(tmp_path, windows, results, indices=[0, 3])
    with pytest.raises(ConfigError, match="max_windows = -1"):
        plot_tracking_results(tmp_path, windows, results, max_windows=-1)
    short = TrackingResults(boxes=results.boxes[:, :4], eta=results.eta[:, :4])
    with pytest.raises(ValueError, match=r"results boxes \(3, 4, 2, 4\)"):
        plot_tracking_results(tmp_path, windows, short)
    assert not list(tmp_path.iterdir())
