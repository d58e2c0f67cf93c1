"""Whole-sequence tracking: unknown number of people, births, deaths, clutter, misses, ids."""

import dataclasses

import numpy as np
import pytest
import torch

from mixdvae.data.mot import MotBoxes, SeqInfo, read_det
from mixdvae.dvae.heads import Gauss
from mixdvae.inference.cv_prior import ConstantVelocityPrior
from mixdvae.metrics.sequence import evaluate_mot_sequences, mot_sequence_boxes
from mixdvae.tracking.lifecycle import LifecycleConfig, death_gap_frames
from mixdvae.tracking.observation import BoxObservationModel, box_scale
from mixdvae.tracking.sequence import SequenceConfig, track_sequence
from mixdvae.tracking.sequence_results import write_sequence_tracks
from mixdvae.tracking.synthetic_sequence import synthetic_sequence
from mixdvae.tracking.window_vem import window_vem


def _result_boxes(tracks) -> MotBoxes:
    return MotBoxes("result", tracks.frames, tracks.ids, tracks.boxes, tracks.conf)


def _assert_valid(tracks):
    assert np.isfinite(tracks.boxes).all()
    assert (tracks.ids >= 1).all()
    key = tracks.frames * 100000 + tracks.ids
    assert np.unique(key).size == key.size, "an id is reported twice in one frame"


@pytest.fixture(scope="module")
def scene():
    return synthetic_sequence(num_people=8, length=160, seed=0, noise=0.05, miss_rate=0.1, clutter_per_frame=1.0)


@pytest.mark.parametrize("method", ["mixdvae", "vkf", "kalman"])
def test_synthetic_scene_with_births_deaths_and_clutter_recovers_the_ids(scene, method):
    gt, det, info = scene
    tracks = track_sequence(det, info, method, seed=0)
    _assert_valid(tracks)
    scores = evaluate_mot_sequences([mot_sequence_boxes(gt, _result_boxes(tracks), info)], tool="native").overall
    # the bar is for MixDVAE; the baselines only have to be sane
    assert scores["IDF1"] > (85.0 if method == "mixdvae" else 75.0), scores
    assert scores["IDS"] <= 3, scores
    # the number of people is unknown to the tracker; it must find about as many tracks as people
    assert 6 <= tracks.num_tracks <= 11, tracks.num_tracks


def test_no_detections_gives_an_empty_valid_result_file(tmp_path):
    info = SeqInfo("empty", 640, 480, 30, 25.0)
    empty = MotBoxes("det.txt", np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), np.zeros((0, 4)), np.zeros(0))
    for method in ("mixdvae", "kalman"):
        tracks = track_sequence(empty, info, method)
        assert tracks.frames.size == 0 and tracks.num_frames == 30
        out, summary = write_sequence_tracks(tmp_path / f"{method}.txt", tracks)
        assert out.read_text() == ""
        assert len(read_det(out, info)) == 0
        assert '"num_boxes": 0' in summary.read_text()


def _one_person(gaps: list[tuple[int, int]], length: int = 120, frame_rate: float = 10.0):
    """One walking person detected on every frame outside the [a, b) gaps, plus nothing else."""
    t = np.arange(length)
    on = np.ones(length, dtype=bool)
    for a, b in gaps:
        on[a:b] = False
    x = 100.0 + 2.0 * t
    boxes = np.stack([x, np.full(length, 200.0), x + 40.0, np.full(length, 320.0)], axis=1)[on]
    frames = t[on] + 1
    det = MotBoxes("det.txt", frames.astype(np.int64), -np.ones(frames.size, dtype=np.int64), boxes, np.ones(frames.size))
    return det, SeqInfo("walker", 640, 480, length, frame_rate)


@pytest.mark.parametrize("method", ["mixdvae", "vkf", "kalman"])
def test_leaving_and_reentering_after_the_death_gap_gives_a_new_id(method):
    config = SequenceConfig()
    gap = death_gap_frames(config.lifecycle, 10.0)  # 1 s at 10 fps
    det, info = _one_person([(40, 40 + gap + 5)])
    tracks = track_sequence(det, info, method, config)
    _assert_valid(tracks)
    before = np.unique(tracks.ids[tracks.frames <= 40])
    after = np.unique(tracks.ids[tracks.frames > 40 + gap + 5])
    assert before.size == 1 and after.size == 1 and before[0] != after[0], (before, after)


@pytest.mark.parametrize("method", ["mixdvae", "kalman"])
def test_a_gap_shorter_than_the_death_gap_keeps_the_id(method):
    config = SequenceConfig()
    det, info = _one_person([(40, 40 + death_gap_frames(config.lifecycle, 10.0) - 3)])
    tracks = track_sequence(det, info, method, config)
    assert np.unique(tracks.ids).size == 1
    # the missed frames in between are filled by the posterior (fill_gaps), nothing after the last detection
    assert tracks.frames.max() == det.frame.max()


def test_death_gap_is_in_seconds():
    life = LifecycleConfig(death_gap=1.0, min_death_frames=5)
    assert death_gap_frames(life, 25.0) == 25
    assert death_gap_frames(life, 7.0) == 7
    assert death_gap_frames(life, 2.0) == 5


def test_window_vem_gives_nothing_to_sources_that_do_not_exist_and_far_boxes_to_clutter():
    T, N = 4, 2
    box = torch.tensor([0.4, 0.4, 0.45, 0.55])
    o = torch.full((1, T, 2, 4), float("nan"))
    o[0, :, 0] = box  # source 0's detection on every frame
    o[0, :, 1] = box + torch.tensor([0.4, -0.3, 0.4, -0.3])  # far away: clutter
    mask = torch.isfinite(o).all(-1)
    exist = torch.tensor([[True, True], [True, True], [True, False], [True, False]])[None]
    m = box.expand(1, T, N, 4).clone()
    init = Gauss(m, torch.full_like(m, 1e-4))
    prior = ConstantVelocityPrior(m[:, 0])
    obs = BoxObservationModel(box_scale(o, mask), torch.full((1, 4), 0.05 ** 2))
    res = window_vem(o, mask, exist, prior, obs, init, None, clutter_prob=0.1, iterations=5)
    r, clutter = res.resp.r[0], res.resp.clutter[0]
    assert torch.all(r[2:, :, 1] < 1e-6)  # source 1 does not exist on frames 2, 3
    assert torch.all(clutter[:, 1] > 0.99)  # the far box is clutter
    assert torch.allclose(r[:, 0].sum(-1) + clutter[:, 0], torch.ones(T))


def test_the_result_does_not_depend_on_the_detection_order_within_frames(scene):
    gt, det, info = scene
    rng = np.random.default_rng(3)
    order = np.lexsort((rng.random(len(det)), det.frame))
    shuffled = det.select(order)
    a = track_sequence(det, info, "kalman")
    b = track_sequence(shuffled, info, "kalman")
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.ids, b.ids)
    np.testing.assert_allclose(a.boxes, b.boxes)


def test_bad_config_raises_config_error():
    from mixdvae.errors import ConfigError

    with pytest.raises(ConfigError, match="clutter_prob"):
        SequenceConfig(clutter_prob=1.5)
    with pytest.raises(ConfigError, match="death_gap"):
        dataclasses.replace(LifecycleConfig(), death_gap=0.0)
    with pytest.raises(ConfigError, match="method"):
        track_sequence(None, SeqInfo("x", 10, 10, 5, 10.0), "deep-ar")
