"""Simulated detector: the documented miss, noise and false-positive model, checked against closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import shared_data_dir
from mixdvae.config import config_from_dict
from mixdvae.data.detector import SimulatedDetector, ar1_along_tracks, miss_probability, simulate_detections
from mixdvae.data.mot import MotBoxes, SeqInfo, read_sequence
from mixdvae.errors import ConfigError


def _one_box_per_frame(widths: np.ndarray, visibility: np.ndarray, flag: np.ndarray | None = None,
                       obj_class: np.ndarray | None = None) -> tuple[MotBoxes, SeqInfo]:
    """Ground truth with box m alone on frame m + 1 (so a detection's frame names its gt box)."""
    m = widths.shape[0]
    x1, y1 = np.full(m, 100.0), np.full(m, 50.0)
    boxes = np.stack([x1, y1, x1 + widths, y1 + 2 * widths], axis=1)
    gt = MotBoxes(source="toy", frame=np.arange(1, m + 1), id=np.ones(m, dtype=np.int64), boxes=boxes,
                  conf=np.ones(m), flag=np.ones(m, dtype=np.int64) if flag is None else flag,
                  obj_class=np.ones(m, dtype=np.int64) if obj_class is None else obj_class, visibility=visibility)
    return gt, SeqInfo("toy", 1920, 1080, m, 30.0)


def test_miss_probability_closed_form() -> None:
    cfg = SimulatedDetector(miss_floor=0.1, miss_gamma=2.0)
    np.testing.assert_allclose(miss_probability(np.array([1.0, 0.5, 0.0, np.nan]), cfg),
                               [0.1, 0.1 + 0.9 * 0.25, 1.0, 0.1])


def test_seed_deterministic() -> None:
    gt, info = _one_box_per_frame(np.full(500, 40.0), np.linspace(0, 1, 500))
    cfg = SimulatedDetector(false_positives_per_frame=0.5)
    a = simulate_detections(gt, info, cfg, np.random.default_rng(3))
    b = simulate_detections(gt, info, cfg, np.random.default_rng(3))
    c = simulate_detections(gt, info, cfg, np.random.default_rng(4))
    np.testing.assert_array_equal(a.frame, b.frame)
    np.testing.assert_array_equal(a.boxes, b.boxes)
    np.testing.assert_array_equal(a.conf, b.conf)
    assert len(a) != len(c) or not np.array_equal(a.boxes, c.boxes)
    assert (a.id == -1).all() and (np.diff(a.frame) >= 0).all()


def test_miss_rate_rises_as_visibility_falls() -> None:
    m = 20000
    vis = np.repeat([1.0, 0.2], m // 2)
    gt, info = _one_box_per_frame(np.full(m, 40.0), vis)
    cfg = SimulatedDetector()
    det = simulate_detections(gt, info, cfg, np.random.default_rng(0))
    detected = np.zeros(m, dtype=bool)
    detected[det.frame - 1] = True
    for v, rows in ((1.0, slice(0, m // 2)), (0.2, slice(m // 2, m))):
        p = cfg.miss_floor + (1 - cfg.miss_floor) * (1 - v) ** cfg.miss_gamma
        rate = 1 - detected[rows].mean()
        assert abs(rate - p) < 4 * np.sqrt(p * (1 - p) / (m // 2)), (v, rate, p)
    assert (1 - detected[m // 2:].mean()) > (1 - detected[: m // 2].mean()) + 0.3


def test_noise_std_proportional_to_box_size() -> None:
    m = 8000
    widths = np.repeat([20.0, 200.0], m // 2)
    gt, info = _one_box_per_frame(widths, np.ones(m))
    cfg = SimulatedDetector(miss_floor=0.0, noise_x=0.1, noise_y=0.05)
    det = simulate_detections(gt, info, cfg, np.random.default_rng(1))
    assert len(det) == m  # nothing missed at visibility 1, p0 = 0
    err = det.boxes - gt.boxes[det.frame - 1]
    for w, rows in ((20.0, slice(0, m // 2)), (200.0, slice(m // 2, m))):
        expected = np.array([0.1 * w, 0.05 * 2 * w, 0.1 * w, 0.05 * 2 * w])
        std = err[rows].std(axis=0)
        np.testing.assert_allclose(std, expected, rtol=0.05)  # sample std of 4000 draws: ~1.1 % error
        assert (np.abs(err[rows].mean(axis=0)) < 4 * expected / np.sqrt(m // 2)).all()  # unbiased


def test_only_considered_boxes_are_detected() -> None:
    gt, info = _one_box_per_frame(np.full(6, 40.0), np.ones(6), flag=np.array([1, 0, 1, 1, 1, 0]),
                                  obj_class=np.array([1, 1, 7, 1, 1, 1]))
    det = simulate_detections(gt, info, SimulatedDetector(miss_floor=0.0, noise_x=0.0, noise_y=0.0),
                              np.random.default_rng(0))
    np.testing.assert_array_equal(det.frame, [1, 4, 5])  # flag 0 (frames 2, 6) and class 7 (frame 3) left out
    np.testing.assert_array_equal(det.boxes, gt.boxes[[0, 3, 4]])


def test_false_positives_poisson_and_inside_image() -> None:
    m = 4000
    gt, info = _one_box_per_frame(np.full(m, 40.0), np.ones(m))
    cfg = SimulatedDetector(miss_floor=1.0, false_positives_per_frame=2.0)  # every true box missed
    det = simulate_detections(gt, info, cfg, np.random.default_rng(2))
    assert abs(len(det) / m - 2.0) < 4 * np.sqrt(2.0 / m)
    b = det.boxes
    assert (b[:, 0] >= 0).all() and (b[:, 1] >= 0).all()
    assert (b[:, 2] <= info.im_width).all() and (b[:, 3] <= info.im_height).all()
    np.testing.assert_allclose(b[:, 2] - b[:, 0], 40.0)  # the size of the frame's gt box
    np.testing.assert_allclose(b[:, 3] - b[:, 1], 80.0)
    assert ((det.conf >= 0) & (det.conf < 0.5)).all()


def test_correlated_noise_keeps_its_std_and_has_the_asked_lag_one_correlation() -> None:
    """noise_corr = 0.6 on one person seen on 20,000 frames (some missed): the edge errors keep the
    std sigma x size, and consecutive detected frames correlate by 0.6 (rho^2 two frames apart)."""
    m = 20000
    gt, info = _one_box_per_frame(np.full(m, 40.0), np.ones(m))
    cfg = SimulatedDetector(miss_floor=0.2, noise_x=0.1, noise_y=0.05, noise_corr=0.6)
    det = simulate_detections(gt, info, cfg, np.random.default_rng(2))
    err = (det.boxes - gt.boxes[det.frame - 1]) / np.array([4.0, 4.0, 4.0, 4.0])  # sigma x size = 4 px
    np.testing.assert_allclose(err.std(axis=0), 1.0, rtol=0.05)
    for gap, expected in ((1, 0.6), (2, 0.36)):
        pairs = np.nonzero(np.diff(det.frame) == gap)[0]
        for d in range(4):
            r = np.corrcoef(err[pairs, d], err[pairs + 1, d])[0, 1]
            assert abs(r - expected) < 0.05, (gap, d, r)
    white = simulate_detections(gt, info, SimulatedDetector(miss_floor=0.2, noise_x=0.1, noise_y=0.05),
                                np.random.default_rng(2))
    e0 = (white.boxes - gt.boxes[white.frame - 1])[:, 0]
    pairs = np.nonzero(np.diff(white.frame) == 1)[0]
    assert abs(np.corrcoef(e0[pairs], e0[pairs + 1])[0, 1]) < 0.05


def test_ar1_runs_along_each_track_separately() -> None:
    """Two interleaved tracks: each track's first value is its innovation, each is AR(1) in its own
    frames, and the two stay uncorrelated."""
    rng = np.random.default_rng(0)
    n = 4000
    ids = np.tile([7, 3], n)
    frames = np.repeat(np.arange(1, n + 1), 2)
    nu = rng.standard_normal((2 * n, 1))
    e = ar1_along_tracks(nu, ids, frames, 0.8)
    assert e[0, 0] == nu[0, 0] and e[1, 0] == nu[1, 0]
    np.testing.assert_allclose(e[2, 0], 0.8 * e[0, 0] + 0.6 * nu[2, 0])
    a, b = e[0::2, 0], e[1::2, 0]
    assert abs(np.corrcoef(a[:-1], a[1:])[0, 1] - 0.8) < 0.05
    assert abs(np.corrcoef(a, b)[0, 1]) < 0.05


def test_config_validation() -> None:
    with pytest.raises(ConfigError, match="SimulatedDetector.miss_floor = 1.5: must be in"):
        SimulatedDetector(miss_floor=1.5)
    with pytest.raises(ConfigError, match=r"noise_corr = 1.0: must be in \[0, 1\)"):
        SimulatedDetector(noise_corr=1.0)
    with pytest.raises(ConfigError, match="noise_x"):
        SimulatedDetector(noise_x=-0.1)
    cfg = config_from_dict(SimulatedDetector, {"miss_gamma": 2, "false_positives_per_frame": 1}, "t.toml")
    assert cfg.miss_gamma == 2.0 and cfg.false_positives_per_frame == 1.0


def test_recall_on_mot17_matches_model() -> None:
    seq_dir = shared_data_dir() / "MOT17" / "train" / "MOT17-09-SDP"
    if not seq_dir.is_dir():
        pytest.skip("../shared/data is not beside the repository")
    seq = read_sequence(seq_dir)
    cfg = SimulatedDetector()
    det = simulate_detections(seq.gt, seq.info, cfg, np.random.default_rng(0))
    p_miss = miss_probability(seq.gt.visibility[seq.gt.considered], cfg)
    expected = (1 - p_miss).sum()
    assert abs(len(det) - expected) < 4 * np.sqrt((p_miss * (1 - p_miss)).sum())
