"""Synthetic trajectories: reproducibility, validity rules, the recipe's distributions."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from mixdvae.config import config_from_dict
from mixdvae.data.synthetic import (
    SEGMENT_KINDS,
    SegmentPrior,
    TrajectoryRecipe,
    generate_trajectories,
    sample_candidates,
    trajectory_meta,
    valid_box_trajectories,
)
from mixdvae.errors import ConfigError


def _assert_valid(boxes: np.ndarray) -> None:
    """The documented rejection rules, written out independently of valid_box_trajectories."""
    x1, y1, x2, y2 = (boxes[..., i] for i in range(4))
    assert np.isfinite(boxes).all()
    assert (x2 - x1 > 0).all() and (y2 - y1 > 0).all()
    assert (x2 > 0).all() and (x1 < 1).all() and (y2 > 0).all() and (y1 < 1).all()
    assert boxes.min() >= -0.5 and boxes.max() <= 1.5


def test_same_seed_same_array_other_seed_other_array():
    a = generate_trajectories(300, 60, seed=3)
    b = generate_trajectories(300, 60, seed=3)
    c = generate_trajectories(300, 60, seed=4)
    assert a.shape == (300, 60, 4) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_smaller_num_is_a_prefix():
    small = generate_trajectories(40, 30, seed=1, chunk_size=64)
    large = generate_trajectories(500, 30, seed=1, chunk_size=64)  # several chunks
    np.testing.assert_array_equal(small, large[:40])
    assert len(np.unique(large[:, 0, 0])) == 500  # no duplicated trajectory across chunks


@pytest.mark.parametrize("length", [3, 10, 60, 120, 300])
def test_boxes_follow_the_rules_at_every_length(length):
    boxes = generate_trajectories(200, length, seed=length)
    assert boxes.shape == (200, length, 4)
    _assert_valid(boxes)
    # h = r w with one r per trajectory
    ratio = (boxes[..., 3] - boxes[..., 1]) / (boxes[..., 2] - boxes[..., 0])
    np.testing.assert_allclose(ratio, ratio[:, :1].repeat(length, axis=1), rtol=1e-3)


def test_valid_box_trajectories_rules():
    good = np.tile(np.array([0.2, 0.3, 0.25, 0.5]), (1, 5, 1))  # (1, 5, 4)

    def with_frame(t: int, box: list[float]) -> np.ndarray:
        out = good.copy()
        out[0, t] = box
        return out

    cases = {
        "good": good,
        "zero width": with_frame(2, [0.2, 0.3, 0.2, 0.5]),
        "inverted height": with_frame(1, [0.2, 0.5, 0.25, 0.3]),
        "left of the image": with_frame(4, [-0.2, 0.3, -0.01, 0.5]),
        "right of the image": with_frame(0, [1.0, 0.3, 1.05, 0.5]),
        "above the image": with_frame(3, [0.2, -0.3, 0.25, 0.0]),
        "below the image": with_frame(3, [0.2, 1.0, 0.25, 1.2]),
        "beyond 1.5": with_frame(3, [0.2, 0.9, 0.25, 1.6]),
        "beyond -0.5": with_frame(3, [-0.6, 0.3, 0.1, 0.5]),
        "nan": with_frame(1, [0.2, np.nan, 0.25, 0.5]),
        "jump of 0.06": with_frame(2, [0.26, 0.3, 0.31, 0.5]),
        "partly outside is fine": np.tile(np.array([-0.4, 0.8, 0.05, 1.4]), (1, 5, 1)),
    }
    got = {name: bool(valid_box_trajectories(b)[0]) for name, b in cases.items()}
    expected = {name: name in ("good", "partly outside is fine") for name in cases}
    assert got == expected
    no_step = {name: bool(valid_box_trajectories(b, max_step=None)[0]) for name, b in cases.items()}
    assert no_step == {name: name in ("good", "partly outside is fine", "jump of 0.06") for name in cases}


def test_breakpoints_are_multiples_of_three_with_zero_velocity_steps():
    rng = np.random.default_rng(0)
    draw = sample_candidates(rng, 3000, 60)
    for coord, breaks in ((0, draw.x_breakpoints), (1, draw.y_breakpoints)):
        assert breaks.shape == (3000, 2)
        used = breaks < 60
        assert (breaks[used] % 3 == 0).all() and (breaks[used] > 0).all()
        # distinct and sorted, unused ones (= T) last
        assert (np.diff(breaks, axis=1) > 0)[used[:, 1]].all()
        counts = np.bincount(used.sum(axis=1), minlength=3) / 3000
        np.testing.assert_allclose(counts, [1 / 3] * 3, atol=0.04)
        values = draw.boxes[..., coord]
        rows, cols = np.nonzero(used)
        b = breaks[rows, cols]
        ok = np.isfinite(values[rows, b])
        np.testing.assert_allclose(values[rows, b][ok], values[rows, b - 1][ok], rtol=0, atol=1e-9)


def test_short_lengths_cap_the_breakpoints():
    rng = np.random.default_rng(1)
    assert sample_candidates(rng, 10, 3).x_breakpoints.shape == (10, 0)  # no multiple of 3 in (0, 3)
    assert sample_candidates(rng, 10, 5).x_breakpoints.shape == (10, 1)  # only 3
    assert sample_candidates(rng, 10, 5).width_kinds.shape == (10, 1)


def test_segment_kinds_and_start_distributions_match_the_recipe():
    n = 20000
    draw = sample_candidates(np.random.default_rng(2), n, 60)
    recipe = TrajectoryRecipe()
    for kinds, prior in ((draw.x_kinds, recipe.x), (draw.y_kinds, recipe.y), (draw.width_kinds, recipe.width)):
        freq = np.bincount(kinds[:, 0], minlength=len(SEGMENT_KINDS)) / n
        np.testing.assert_allclose(freq, prior.kind_probs, atol=0.015)
    assert set(np.unique(draw.x_kinds)) == {0, 1, 2, 3}
    np.testing.assert_allclose(draw.boxes[:, 0, :2].mean(axis=0), [0.5, 0.5], atol=0.01)  # U(0, 1)
    w0 = draw.boxes[:, 0, 2] - draw.boxes[:, 0, 0]
    np.testing.assert_allclose(np.median(w0), np.exp(-3.8), rtol=0.03)  # LogNormal(-3.8, 0.7)
    np.testing.assert_allclose(np.std(np.log(w0)), 0.7, rtol=0.03)
    np.testing.assert_allclose([draw.aspect.mean(), draw.aspect.std()], [5.26, 0.77], rtol=0.02)


def test_velocities_are_sane():
    boxes = generate_trajectories(2000, 60, seed=5).astype(np.float64)
    vx = np.diff(boxes[..., 0], axis=1)
    vy = np.diff(boxes[..., 1], axis=1)
    assert abs(vx.mean()) < 3e-4 and abs(vy.mean()) < 3e-4  # no drift to one side
    assert 1e-4 < np.median(np.abs(vx)) < 5e-3  # σ_v(x) = 0.00125 per frame
    assert np.median(np.abs(vy)) < np.median(np.abs(vx))  # σ(y) < σ(x) in the recipe
    assert np.abs(np.diff(boxes, axis=1)).max() <= 0.05 + 1e-7  # the max_step rule


def test_static_recipe_gives_constant_boxes_and_line_recipe_constant_velocity():
    static = SegmentPrior((1.0, 0.0, 0.0, 0.0), 0.0, 0.0)
    recipe = TrajectoryRecipe(x=static, y=static, width=dataclasses.replace(static, max_breakpoints=0))
    boxes = generate_trajectories(50, 20, seed=0, recipe=recipe)
    np.testing.assert_array_equal(boxes, np.repeat(boxes[:, :1], 20, axis=1))

    line = SegmentPrior((0.0, 1.0, 0.0, 0.0), 0.002, 0.0, max_breakpoints=0)
    recipe = TrajectoryRecipe(x=line, y=line, width=dataclasses.replace(static, max_breakpoints=0))
    boxes = generate_trajectories(50, 20, seed=0, recipe=recipe).astype(np.float64)
    v = np.diff(boxes[..., :2], axis=1)  # (50, 19, 2)
    np.testing.assert_allclose(v, np.repeat(v[:, :1], 19, axis=1), atol=1e-6)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num": 0, "length": 60}, "num = 0: must be an integer >= 1"),
        ({"num": 5, "length": 2}, "length = 2: must be an integer >= 3"),
        ({"num": 2.5, "length": 60}, "num = 2.5: must be an integer >= 1"),
        ({"num": 5, "length": 60, "seed": -1}, "seed = -1: must be an integer >= 0"),
    ],
)
def test_bad_arguments_raise_config_error(kwargs, message):
    with pytest.raises(ConfigError) as info:
        generate_trajectories(**{"seed": 0, **kwargs})
    assert str(info.value) == message


def test_bad_recipes_raise_config_error():
    with pytest.raises(ConfigError, match=r"kind_probs .* must sum to 1"):
        SegmentPrior((0.5, 0.5, 0.5, 0.0), 0.1, 0.1)
    with pytest.raises(ConfigError, match="needs 4 probabilities"):
        SegmentPrior((0.5, 0.5), 0.1, 0.1)
    with pytest.raises(ConfigError, match="sigma_velocity"):
        SegmentPrior((1.0, 0.0, 0.0, 0.0), -1.0, 0.1)
    with pytest.raises(ConfigError, match="breakpoint_step"):
        TrajectoryRecipe(breakpoint_step=0)
    with pytest.raises(ConfigError, match="must contain the image"):
        TrajectoryRecipe(coord_max=0.9)


def test_unreachable_num_stops_with_config_error():
    with pytest.raises(ConfigError, match=r"only \d+ of 100000 trajectories accepted after 200 candidates"):
        generate_trajectories(100000, 60, seed=0, chunk_size=100, max_candidates=200)


def test_meta_recipe_round_trips_through_config():
    meta = trajectory_meta(10, 60, 7)
    assert meta["seed"] == 7 and meta["length"] == 60 and meta["num"] == 10
    assert config_from_dict(TrajectoryRecipe, meta["recipe"]) == TrajectoryRecipe()
    loose = TrajectoryRecipe(max_step=None)
    assert config_from_dict(TrajectoryRecipe, trajectory_meta(1, 3, 0, loose)["recipe"]) == loose
