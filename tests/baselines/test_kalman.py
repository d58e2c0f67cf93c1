"""kalman_track: identities and boxes on synthetic scenes, order invariance, parity with cv_smoother."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

from mixdvae.baselines.kalman import KalmanTrackerConfig, kalman_track
from mixdvae.errors import ConfigError
from mixdvae.inference.lgssm import cv_smoother


def make_scene(seed: int, W: int = 32, T: int = 40, miss: float = 0.2, noise: float = 0.03):
    """3 well-separated boxes on straight lines (normalised units), Gaussian noise of ``noise`` box
    sizes, ``miss`` of the detections dropped, slots shuffled within frames.

    Returns gt (W, T, 3, 4), det (W, T, 3, 4) and obj (W, T, 3): det[w, t, k] is a noisy box of
    object obj[w, t, k] (or NaN).
    """
    rng = np.random.default_rng(seed)
    N = 3
    cx0 = np.array([0.2, 0.5, 0.8]) + rng.uniform(-0.03, 0.03, (W, N))
    cy0 = rng.uniform(0.3, 0.7, (W, N))
    vx, vy = rng.uniform(-0.004, 0.004, (2, W, N))
    width = rng.uniform(0.04, 0.08, (W, N))
    height = 2.5 * width
    t = np.arange(T)[None, :, None]
    cx, cy = cx0[:, None] + vx[:, None] * t, cy0[:, None] + vy[:, None] * t
    half_w, half_h = width[:, None] / 2, height[:, None] / 2
    gt = np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=-1)
    size = np.stack([width, height, width, height], axis=-1)[:, None]
    det = gt + noise * size * rng.normal(size=gt.shape)
    det[rng.uniform(size=(W, T, N)) < miss] = np.nan
    obj = np.argsort(rng.uniform(size=(W, T, N)), axis=-1)  # random slot order per frame
    return gt, np.take_along_axis(det, obj[..., None], axis=2), obj


def match_tracks(assign: np.ndarray, obj: np.ndarray, det: np.ndarray) -> tuple[float, np.ndarray]:
    """Best global track <-> object permutation per window; fraction of valid detections it explains.

    Returns the fraction and perm (W, N) with perm[w, n] = the object of track n.
    """
    W, T, K, N = assign.shape
    valid = ~np.isnan(det[..., 0])
    agree, perm = 0.0, np.zeros((W, N), dtype=int)
    for w in range(W):
        conf = np.einsum("tko,tkn->on", np.eye(N)[obj[w]] * valid[w][..., None], assign[w])  # (objects, tracks)
        objs, tracks = linear_sum_assignment(-conf)
        agree += conf[objs, tracks].sum()
        perm[w, tracks] = objs
    return agree / valid.sum(), perm


@pytest.mark.parametrize("cost", ["mahalanobis", "iou"])
def test_recovers_identities_and_boxes(cost):
    gt, det, obj = make_scene(0)
    res = kalman_track(det, 3, KalmanTrackerConfig(cost=cost))
    assert res.boxes.shape == (32, 40, 3, 4) and res.assign.shape == (32, 40, 3, 3)
    assert res.boxes.dtype == torch.float32 and not torch.isnan(res.boxes).any()
    assign = res.assign.numpy()
    valid = ~np.isnan(det[..., 0])
    np.testing.assert_array_equal(assign.sum(-1), valid.astype(float))  # one track per detection
    assert (assign.sum(-2) <= 1).all()  # one detection per track
    accuracy, perm = match_tracks(assign, obj, det)
    assert accuracy > 0.95
    truth = np.take_along_axis(gt, perm[:, None, :, None], axis=2)  # (W, T, N, 4) truth of each track
    err = np.abs(res.boxes.numpy() - truth)
    det_err = np.nanmean(np.abs(det - np.take_along_axis(gt, obj[..., None], axis=2)))
    assert err.mean() < det_err  # filtering beats the raw detections
    assert np.median(err) < 0.005


def test_detection_order_is_not_identity():
    """Reshuffling the slots within frames permutes the rows of assign and changes nothing else."""
    gt, det, obj = make_scene(1)
    rng = np.random.default_rng(123)
    reorder = np.argsort(rng.uniform(size=det.shape[:3]), axis=-1)
    det2 = np.take_along_axis(det, reorder[..., None], axis=2)
    res1, res2 = kalman_track(det, 3), kalman_track(det2, 3)
    torch.testing.assert_close(res2.boxes, res1.boxes, rtol=0, atol=0)  # the labelling is canonical
    expected = np.take_along_axis(res1.assign.numpy(), reorder[..., None], axis=2)
    np.testing.assert_array_equal(res2.assign.numpy(), expected)


def test_late_start_when_first_frames_lack_detections():
    gt, det, obj = make_scene(2, W=8, miss=0.0, noise=0.02)
    det[:, :3, :] = np.where((obj[:, :3, :] == 1)[..., None], np.nan, det[:, :3, :])  # object 1 unseen on frames 0-2
    res = kalman_track(det, 3)
    accuracy, perm = match_tracks(res.assign.numpy(), obj, det)
    assert accuracy == 1.0
    boxes = res.boxes.numpy()
    for w in range(8):
        late = int(np.flatnonzero(perm[w] == 1)[0])
        assert (boxes[w, :3, late] == boxes[w, 3, late]).all()  # frames before the start take its first estimate
        assert res.assign[w, 3, :, late].sum() == 1


def test_track_without_detections_is_filled_and_logged(caplog):
    gt, det, obj = make_scene(3, W=2, miss=0.0)
    det[1] = np.where((obj[1] == 2)[..., None], np.nan, det[1])  # window 1 never sees object 2
    with caplog.at_level(logging.WARNING, logger="mixdvae.baselines.kalman"):
        res = kalman_track(torch.tensor(det), 3, device="cpu")
    assert "1 track(s) in 1 window(s) never received a detection" in caplog.text
    assert res.boxes.dtype == torch.float64 and not torch.isnan(res.boxes).any()
    empty = res.assign[1].sum(dim=(0, 1)) == 0
    assert int(empty.sum()) == 1
    mean_det = np.nanmean(det[1].reshape(-1, 4), axis=0)
    np.testing.assert_allclose(res.boxes[1][:, empty].numpy(), np.broadcast_to(mean_det, (40, 1, 4)))


def test_filter_matches_cv_smoother_on_prefixes():
    """One track: the filtered box at t is the smoothed box at t of the prefix 0..t (lgssm oracle).

    The track starts as N(o_0, R) with velocity prior N(0, (init_velocity_std * size)^2): in cv_smoother
    terms mu0 = o_0, var0_p = R, lam_0 = 0, and lam_t = 1 / R on later frames with a detection.
    """
    gt, det, obj = make_scene(4, W=1, T=12, miss=0.0)
    unshuffled = np.take_along_axis(det, np.argsort(obj, axis=-1)[..., None], axis=2)  # slot n = object n
    det = unshuffled[:, :, :1].copy()  # (1, T, 1, 4): object 0 alone
    det[0, [4, 7, 8]] = np.nan  # some missed detections
    cfg = KalmanTrackerConfig()
    res = kalman_track(det, 1, cfg)
    o = det[0, :, 0]  # (T, 4)
    size = o[0, [2, 3, 2, 3]] - o[0, [0, 1, 0, 1]]
    r = (cfg.obs_std * size) ** 2
    lam = np.where(np.isnan(o), 0.0, 1.0 / r)  # (T, 4)
    lam[0] = 0.0
    info = np.nan_to_num(o) * lam
    for t in range(12):
        sm = cv_smoother(torch.tensor(lam[:t + 1].T), torch.tensor(info[:t + 1].T),  # (4, t + 1)
                         torch.tensor((cfg.accel_std * size) ** 2), torch.tensor(o[0]), torch.tensor(r),
                         torch.tensor((cfg.init_velocity_std * size) ** 2))
        np.testing.assert_allclose(res.boxes[0, t, 0].numpy(), sm.mean_p[:, -1].numpy(), rtol=1e-6, atol=1e-7)


def test_crossing_trajectories_keep_identities():
    """Two boxes crossing at constant speed: the velocity carries each track through the overlap."""
    T = 40
    t = np.arange(T, dtype=np.float64)
    x_a, x_b = 0.2 + 0.015 * t, 0.8 - 0.015 * t
    y = 0.5
    boxes = np.stack([np.stack([x - 0.03, np.full(T, y - 0.08), x + 0.03, np.full(T, y + 0.08)], -1)
                      for x in (x_a, x_b)], axis=1)[None]  # (1, T, 2, 4)
    rng = np.random.default_rng(5)
    det = boxes + 0.002 * rng.normal(size=boxes.shape)
    obj = np.argsort(rng.uniform(size=(1, T, 2)), axis=-1)
    det = np.take_along_axis(det, obj[..., None], axis=2)
    res = kalman_track(det, 2)
    accuracy, _ = match_tracks(res.assign.numpy(), obj, det)
    assert accuracy > 0.95


def test_errors():
    good = np.array([[[[0.1, 0.1, 0.2, 0.3]]]])
    with pytest.raises(ValueError, match=r"det should be \(W, T, K, 4\) xyxy boxes, got shape \(1, 4\)"):
        kalman_track(np.zeros((1, 4)), 1)
    with pytest.raises(ValueError, match=r"det\[0, 0, 0\] = \[0.1 nan 0.2 0.3\] is partly NaN"):
        kalman_track(np.array([[[[0.1, np.nan, 0.2, 0.3]]]]), 1)
    with pytest.raises(ValueError, match=r"det\[0, 0, 0\] = \[0.2 0.1 0.1 0.3\] needs x2 > x1 and y2 > y1"):
        kalman_track(np.array([[[[0.2, 0.1, 0.1, 0.3]]]]), 1)
    with pytest.raises(ValueError, match="num_sources = 0, expected an integer >= 1"):
        kalman_track(good, 0)
    with pytest.raises(ConfigError, match=r"KalmanTrackerConfig.obs_std = -1.0: must be a finite number > 0"):
        KalmanTrackerConfig(obs_std=-1.0)
    with pytest.raises(ConfigError, match=r"KalmanTrackerConfig.cost = 'l2': expected 'mahalanobis' or 'iou'"):
        KalmanTrackerConfig(cost="l2")
    with pytest.raises(ConfigError, match=r"KalmanTrackerConfig.min_iou = 0.0: must be in \(0, 1\]"):
        KalmanTrackerConfig(min_iou=0.0)


@pytest.mark.parametrize("N,K", [(3, 3), (3, 5), (4, 2), (1, 4), (3, 1), (7, 7)])
def test_batched_matchings_equal_scipy_per_window(N, K):
    """min_cost_matchings (enumerated for all windows at once; scipy per window for 7 x 7) gives
    linear_sum_assignment's matching on the cost with gated pairs at _FORBIDDEN: the same number of
    gated pairs and the same total admissible cost, in every window."""
    from mixdvae.baselines.kalman import _FORBIDDEN, min_cost_matchings

    rng = np.random.default_rng(N * 10 + K)
    cost = rng.random((200, N, K)) * 10
    ok = rng.random((200, N, K)) < 0.6
    w, n, k = min_cost_matchings(cost, ok)
    assert len(w) == 200 * min(N, K)
    for win in range(200):
        sel = w == win
        rows, cols = n[sel], k[sel]
        assert len(set(rows)) == len(rows) == min(N, K) and len(set(cols)) == len(cols)
        r0, c0 = linear_sum_assignment(np.where(ok[win], cost[win], _FORBIDDEN))
        assert (~ok[win, rows, cols]).sum() == (~ok[win, r0, c0]).sum()
        ours = np.where(ok[win, rows, cols], cost[win, rows, cols], 0).sum()
        theirs = np.where(ok[win, r0, c0], cost[win, r0, c0], 0).sum()
        assert ours == pytest.approx(theirs, abs=1e-9)
