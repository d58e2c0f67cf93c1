"""Synthetic single-object box trajectories for pretraining the motion DVAE.

The recipe follows reference-implementation.md section 2 (the original
``data/mot_generate_synthetic_data.py``), generalised to any length T and expressed in our box
encoding. For one trajectory:

1. **Position** x(t), y(t) (the box's left and top edges), each drawn independently as
   a piecewise function. The number of breakpoints is uniform on {0, ..., min(2, C)}, where C is the
   number of multiples of 3 strictly inside (0, T) (the original's {0, 1, 2} whenever T >= 7;
   fewer for shorter T); the breakpoints are drawn from those multiples
   without replacement. Each of the resulting segments [b_j, b_{j+1}) picks a kind
   (static 0.15, line 0.30, parabola 0.30, sinus 0.25) and, with local time τ = 0 … L_j − 1,
   starts from a₀ = x(0) (first segment) or the last value of the previous segment (so every
   breakpoint repeats a value: a zero-velocity step):

   - static:   a₀
   - line:     a₀ + v τ,              v ~ N(0, σ_v²)
   - parabola: a₀ + v τ + a τ²,       a ~ N(0, σ_a²)
   - sinus:    (a₀ / sin φ) sin(ω τ + φ),  ω ~ N(0, σ_ω²), φ ~ N(0, σ_φ²)

   x(0), y(0) ~ U(0, 1); σ for x: (σ_v, σ_a, σ_ω, σ_φ) = (0.00125, 0.000037, 0.003, 3.2), for y:
   (0.0006, 0.00002, 0.001, 3.2).
2. **Width** w(t): one segment (no breakpoint) of kind static 0.25, line 0.60, parabola 0.15 with
   σ_v = 0.00032, σ_a = 0.00001 and w(0) ~ LogNormal(−3.8, 0.7).
3. **Height** h(t) = r w(t) with one r ~ N(5.26, 0.77²) per trajectory, in normalised units (the
   original's MOT17 estimate: a pixel aspect h/w of about 2.96 on a 16:9 image).
4. **Box** (x1, y1, x2, y2) = (x, y, x + w, y + h): left, top, right, bottom, y down, normalised
   to [0, 1] image coordinates (SPEC section 4 "Boxes").

The σ are per frame, so the dynamics do not depend on T; longer trajectories drift further and
are rejected more often (see :func:`generate_trajectories`).

**Rejection rules** (:func:`valid_box_trajectories`). The original rejects on nine asymmetric
bounds written for its (x, y, x + w, y − h) encoding, among them ``max x2 > 0.8``, which removes
every object that ever reaches the right fifth of the image, and ``min w < 0``, which lets w = 0
through. We keep a trajectory only if, on every frame,

- every value is finite;
- w = x2 − x1 > 0 and h = y2 − y1 > 0 (a box, not a point or an inverted box);
- the box overlaps the image: x2 > 0, x1 < 1, y2 > 0, y1 < 1 (an object that has left the frame
  can't be observed, and a tracker is never asked to follow it);
- every coordinate lies in [−0.5, 1.5] (no huge boxes or far excursions: most exploding
  sinusoids, with sin φ ≈ 0, fail this rule or the overlap rule);
- no coordinate moves more than 0.05 between two frames (about 96 px per frame at 1920 px wide):
  the exploding sinusoids that survive the bounds on a short segment do it with jumps of up to
  0.3 per frame (0.1 to 0.2 % of otherwise accepted ones at T = 60), which no tracked object
  makes.

The rules are symmetric in left/right and top/bottom, so the accepted set has no spatial bias
beyond the one the image itself imposes. The rules are checked on the float32 boxes that are
returned. Rejection sampling runs until exactly ``num`` trajectories are accepted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from tqdm.auto import tqdm

from mixdvae import __version__
from mixdvae.config import check_positive, config_to_dict
from mixdvae.errors import ConfigError
from mixdvae.utils.seed import numpy_generator

__all__ = [
    "SEGMENT_KINDS",
    "SegmentPrior",
    "TrajectoryRecipe",
    "CandidateDraw",
    "sample_candidates",
    "valid_box_trajectories",
    "generate_trajectories",
    "trajectory_meta",
]

logger = logging.getLogger(__name__)

SEGMENT_KINDS = ("static", "line", "parabola", "sinus")
"""Segment kinds, in the order of :attr:`SegmentPrior.kind_probs`."""

_STATIC, _LINE, _PARABOLA, _SINUS = range(4)


@dataclass(frozen=True)
class SegmentPrior:
    """Prior of one piecewise coordinate (x, y or the width).

    Each segment has kind k ~ Categorical(kind_probs) over (static, line, parabola, sinus) and
    parameters v ~ N(0, sigma_velocity²), a ~ N(0, sigma_accel²), ω ~ N(0, sigma_freq²),
    φ ~ N(0, sigma_phase²) (per frame, normalised image units). Up to ``max_breakpoints``
    breakpoints split the sequence into segments.
    """

    kind_probs: tuple[float, float, float, float]
    sigma_velocity: float
    sigma_accel: float
    sigma_freq: float = 0.0
    sigma_phase: float = 0.0
    max_breakpoints: int = 2

    def __post_init__(self) -> None:
        name = type(self).__name__
        probs = tuple(float(p) for p in self.kind_probs)
        if len(probs) != len(SEGMENT_KINDS):
            raise ConfigError(
                f"{name}.kind_probs = {list(self.kind_probs)!r}: needs {len(SEGMENT_KINDS)} "
                f"probabilities ({', '.join(SEGMENT_KINDS)})"
            )
        for p in probs:
            check_positive(name, "kind_probs", p, allow_zero=True)
        if abs(sum(probs) - 1.0) > 1e-6:
            raise ConfigError(f"{name}.kind_probs = {list(probs)!r}: must sum to 1 (sum {sum(probs):.6g})")
        object.__setattr__(self, "kind_probs", probs)
        for f in ("sigma_velocity", "sigma_accel", "sigma_freq", "sigma_phase"):
            check_positive(name, f, getattr(self, f), allow_zero=True)
        if probs[_SINUS] > 0 and self.sigma_phase <= 0:
            raise ConfigError(f"{name}.sigma_phase = {self.sigma_phase!r}: must be > 0 when sinus segments are allowed")
        if isinstance(self.max_breakpoints, bool) or not isinstance(self.max_breakpoints, int) or self.max_breakpoints < 0:
            raise ConfigError(f"{name}.max_breakpoints = {self.max_breakpoints!r}: must be an integer >= 0")


def _default_x() -> SegmentPrior:
    # reference section 2, step 1 (x)
    return SegmentPrior((0.15, 0.30, 0.30, 0.25), 0.00125, 0.000037, 0.003, 3.2, 2)


def _default_y() -> SegmentPrior:
    # reference section 2, step 1 (y)
    return SegmentPrior((0.15, 0.30, 0.30, 0.25), 0.0006, 0.00002, 0.001, 3.2, 2)


def _default_width() -> SegmentPrior:
    # reference section 2, step 2: single segment, no sinus
    return SegmentPrior((0.25, 0.60, 0.15, 0.0), 0.00032, 0.00001, 0.0, 0.0, 0)


@dataclass(frozen=True)
class TrajectoryRecipe:
    """All the numbers of the synthetic trajectory recipe; defaults from reference section 2.

    Attributes:
        x, y: priors of the left and top edges (section 2 step 1).
        width: prior of the width (section 2 step 2).
        breakpoint_step: breakpoints are multiples of this, strictly inside (0, T) (original: 3).
        width_log_mean, width_log_std: w(0) ~ LogNormal(width_log_mean, width_log_std²).
        aspect_mean, aspect_std: h = r w with r ~ N(aspect_mean, aspect_std²) (section 2 step 3).
        coord_min, coord_max: every coordinate must stay in [coord_min, coord_max] (our rule).
        max_step: largest allowed |change| of a coordinate between two frames; None: no limit
            (our rule).
    """

    x: SegmentPrior = field(default_factory=_default_x)
    y: SegmentPrior = field(default_factory=_default_y)
    width: SegmentPrior = field(default_factory=_default_width)
    breakpoint_step: int = 3
    width_log_mean: float = -3.8
    width_log_std: float = 0.7
    aspect_mean: float = 5.26
    aspect_std: float = 0.77
    coord_min: float = -0.5
    coord_max: float = 1.5
    max_step: float | None = 0.05

    def __post_init__(self) -> None:
        name = type(self).__name__
        for f in ("x", "y", "width"):
            if not isinstance(getattr(self, f), SegmentPrior):
                raise ConfigError(f"{name}.{f}: expected a SegmentPrior, got {type(getattr(self, f)).__name__}")
        step = self.breakpoint_step
        if isinstance(step, bool) or not isinstance(step, int) or step < 1:
            raise ConfigError(f"{name}.breakpoint_step = {step!r}: must be an integer >= 1")
        check_positive(name, "width_log_std", self.width_log_std, allow_zero=True)
        check_positive(name, "aspect_mean", self.aspect_mean)
        check_positive(name, "aspect_std", self.aspect_std, allow_zero=True)
        if not np.isfinite(self.width_log_mean):
            raise ConfigError(f"{name}.width_log_mean = {self.width_log_mean!r}: must be finite")
        if not (np.isfinite(self.coord_min) and np.isfinite(self.coord_max)):
            raise ConfigError(f"{name}.coord_min/coord_max = {self.coord_min!r}/{self.coord_max!r}: must be finite")
        if not (self.coord_min <= 0.0 and self.coord_max >= 1.0):
            raise ConfigError(
                f"{name}.coord_min/coord_max = {self.coord_min!r}/{self.coord_max!r}: "
                "must contain the image [0, 1]"
            )
        if self.max_step is not None:
            check_positive(name, "max_step", self.max_step)


class _Component(NamedTuple):
    values: np.ndarray  # (n, T) float64
    kinds: np.ndarray  # (n, S) int, S = max breakpoints + 1; unused segments keep a drawn kind
    breakpoints: np.ndarray  # (n, S - 1) int, sorted; T where unused


class _Segments(NamedTuple):
    """Segment j of row i is c0 + c1 τ + c2 τ² + amp sin(ω τ + φ); every field (n, S)."""

    c0: np.ndarray
    c1: np.ndarray
    c2: np.ndarray
    amp: np.ndarray
    omega: np.ndarray
    phase: np.ndarray

    def at(self, tau: np.ndarray) -> np.ndarray:
        """Value at local time τ (same shape as the fields)."""
        value = self.c0 + tau * (self.c1 + tau * self.c2)
        if np.any(self.amp != 0):  # skipped for the width, which has no sinus
            value = value + self.amp * np.sin(self.omega * tau + self.phase)
        return value

    def per_frame(self, seg_of_t: np.ndarray) -> "_Segments":
        """Gather each frame's segment.  seg_of_t: (n, T) -> fields (n, T)."""
        return _Segments(*(np.take_along_axis(f, seg_of_t, axis=1) for f in self))


def _segment_coefficients(
    kind: np.ndarray, a0: np.ndarray, vel: np.ndarray, acc: np.ndarray, omega: np.ndarray, phase: np.ndarray
) -> _Segments:
    """Coefficients of segments of the given kinds that start at a₀ (elementwise):

    static a₀; line a₀ + v τ; parabola a₀ + v τ + a τ²; sinus (a₀ / sin φ) sin(ω τ + φ).
    """
    poly = kind != _SINUS
    sin_phase = np.sin(phase)
    # sin φ = 0 has probability 0 where sinus segments are drawn: NaN, rejected later
    amp = np.where(poly, 0.0, a0 / np.where(sin_phase != 0.0, sin_phase, np.nan))
    return _Segments(
        c0=np.where(poly, a0, 0.0),
        c1=np.where((kind == _LINE) | (kind == _PARABOLA), vel, 0.0),
        c2=np.where(kind == _PARABOLA, acc, 0.0),
        amp=amp,
        omega=np.where(poly, 0.0, omega),
        phase=np.where(poly, 0.0, phase),
    )


def _draw_subsets(rng: np.random.Generator, n: int, pool: int, k: int) -> np.ndarray:
    """k distinct indices in [0, pool) per row, drawn sequentially without replacement.

    Draw j picks rank r ~ U{0, …, pool − 1 − j} among the indices not yet taken and maps it to
    its index by stepping over the taken ones in increasing order. The first j columns are a
    uniform j-subset, so truncating to fewer columns keeps the distribution. Shape: -> (n, k).
    """
    taken = np.empty((n, 0), dtype=np.int64)
    for j in range(k):
        r = rng.integers(0, pool - j, size=n)
        for c in np.sort(taken, axis=1).T:  # ascending taken indices, one column at a time
            r = r + (r >= c)
        taken = np.concatenate([taken, r[:, None]], axis=1)
    return taken


def _sample_component(
    rng: np.random.Generator, start: np.ndarray, length: int, prior: SegmentPrior, step: int
) -> _Component:
    """One piecewise coordinate for n trajectories.  start: (n,) -> values (n, T)."""
    n = start.shape[0]
    candidates = np.arange(step, length, step)  # multiples of step strictly inside (0, T)
    k = min(prior.max_breakpoints, candidates.size)
    num_breaks = rng.integers(0, k + 1, size=n)
    if k > 0:
        breaks = candidates[_draw_subsets(rng, n, candidates.size, k)]  # (n, k)
        breaks = np.where(np.arange(k)[None, :] < num_breaks[:, None], breaks, length)  # unused -> T
        breaks.sort(axis=1)
    else:
        breaks = np.empty((n, 0), dtype=np.int64)
    num_seg = k + 1
    seg_start = np.concatenate([np.zeros((n, 1), dtype=np.int64), breaks], axis=1)  # (n, S)
    seg_len = np.concatenate([breaks, np.full((n, 1), length)], axis=1) - seg_start  # 0 if unused

    kind = rng.choice(len(SEGMENT_KINDS), size=(n, num_seg), p=np.asarray(prior.kind_probs))
    vel = rng.normal(0.0, prior.sigma_velocity, size=(n, num_seg))
    acc = rng.normal(0.0, prior.sigma_accel, size=(n, num_seg))
    omega = rng.normal(0.0, prior.sigma_freq, size=(n, num_seg))
    phase = rng.normal(0.0, prior.sigma_phase, size=(n, num_seg))

    # a₀ of segment j = last value of segment j - 1 (used segments come first, so τ_end >= 0)
    a0 = np.empty((n, num_seg))
    a0[:, 0] = start
    with np.errstate(invalid="ignore", divide="ignore", over="ignore"):
        for j in range(1, num_seg):
            prev = _segment_coefficients(*(p[:, j - 1 : j] for p in (kind, a0, vel, acc, omega, phase)))
            tau_end = np.maximum(seg_len[:, j - 1 : j] - 1, 0).astype(np.float64)
            a0[:, j] = prev.at(tau_end)[:, 0]
        segments = _segment_coefficients(kind, a0, vel, acc, omega, phase)  # (n, S) each
        t = np.arange(length)
        seg_of_t = (t[None, None, :] >= breaks[:, :, None]).sum(axis=1)  # (n, T) segment index per frame
        tau = (t[None, :] - np.take_along_axis(seg_start, seg_of_t, axis=1)).astype(np.float64)
        values = segments.per_frame(seg_of_t).at(tau)  # (n, T)
    return _Component(values, kind, breaks)


@dataclass(frozen=True)
class CandidateDraw:
    """Trajectories drawn from the recipe before rejection, with what was drawn.

    Shape:
        boxes: (n, T, 4) float64 xyxy; x_kinds, y_kinds, width_kinds: (n, S) indices into
        :data:`SEGMENT_KINDS`, S = 1 + the most breakpoints possible at this T (3 for x and y at
        T >= 7 by default, 1 for the width); columns past a row's breakpoints are unused draws;
        x_breakpoints, y_breakpoints: (n, S − 1) sorted breakpoint frames, T where unused (a row has
        ``(x_breakpoints < T).sum(1)`` breakpoints); aspect: (n,) the ratio r.
    """

    boxes: np.ndarray
    x_kinds: np.ndarray
    y_kinds: np.ndarray
    width_kinds: np.ndarray
    x_breakpoints: np.ndarray
    y_breakpoints: np.ndarray
    aspect: np.ndarray


def sample_candidates(
    rng: np.random.Generator, num: int, length: int, recipe: TrajectoryRecipe | None = None
) -> CandidateDraw:
    """Draw ``num`` trajectories from the recipe (module docstring), without rejection.

    Shape:
        -> boxes (num, length, 4) float64, (x1, y1, x2, y2) = (x, y, x + w, y + r w).
    """
    _check_args(num, length, 1)
    recipe = TrajectoryRecipe() if recipe is None else recipe
    step = recipe.breakpoint_step
    x0 = rng.uniform(0.0, 1.0, size=num)
    y0 = rng.uniform(0.0, 1.0, size=num)
    x = _sample_component(rng, x0, length, recipe.x, step)
    y = _sample_component(rng, y0, length, recipe.y, step)
    w0 = rng.lognormal(recipe.width_log_mean, recipe.width_log_std, size=num)
    w = _sample_component(rng, w0, length, recipe.width, step)
    aspect = rng.normal(recipe.aspect_mean, recipe.aspect_std, size=num)
    h = aspect[:, None] * w.values
    boxes = np.stack([x.values, y.values, x.values + w.values, y.values + h], axis=-1)  # (num, T, 4)
    return CandidateDraw(boxes, x.kinds, y.kinds, w.kinds, x.breakpoints, y.breakpoints, aspect)


def valid_box_trajectories(
    boxes: np.ndarray, coord_min: float = -0.5, coord_max: float = 1.5, max_step: float | None = 0.05
) -> np.ndarray:
    """Which trajectories pass the rejection rules of the module docstring.

    A trajectory is valid iff on every frame: all values are finite, x2 > x1 and y2 > y1, the box
    overlaps the image (x2 > 0, x1 < 1, y2 > 0, y1 < 1), coord_min <= every value <= coord_max,
    and (unless ``max_step`` is None) |b_{t+1} − b_t| <= max_step for every coordinate.

    Shape:
        boxes: (n, T, 4) xyxy -> (n,) bool
    """
    x1, y1, x2, y2 = (boxes[..., i] for i in range(4))
    with np.errstate(invalid="ignore"):
        ok = np.isfinite(boxes).all(axis=-1)
        ok &= (x2 > x1) & (y2 > y1)
        ok &= (x2 > 0) & (x1 < 1) & (y2 > 0) & (y1 < 1)
        ok &= ((boxes >= coord_min) & (boxes <= coord_max)).all(axis=-1)
        valid = ok.all(axis=-1)
        if max_step is not None and boxes.shape[-2] > 1:
            valid &= (np.abs(np.diff(boxes, axis=-2)) <= max_step).all(axis=(-2, -1))
    return valid


def _check_args(num: int, length: int, chunk_size: int, seed: int = 0) -> None:
    checks = (("num", num, 1), ("length", length, 3), ("chunk_size", chunk_size, 1), ("seed", seed, 0))
    for name, value, low in checks:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ConfigError(f"{name} = {value!r}: must be an integer >= {low}")


def generate_trajectories(
    num: int,
    length: int,
    seed: int,
    progress: bool = False,
    recipe: TrajectoryRecipe | None = None,
    chunk_size: int = 4096,
    max_candidates: int | None = None,
) -> np.ndarray:
    """Exactly ``num`` accepted synthetic box trajectories of ``length`` frames.

    Candidates are drawn in chunks of ``chunk_size`` from one ``numpy.random.Generator`` seeded
    with ``seed`` and filtered by :func:`valid_box_trajectories`; accepted ones are kept in draw
    order. The result depends only on (seed, length, recipe, chunk_size), and a smaller ``num`` gives
    a prefix of a larger one.

    The acceptance rate falls with T because the per-frame σ let long trajectories drift away
    (measured with the default recipe: about 0.79 at T = 60, 0.59 at 120, 0.25 at 300, 0.05 at
    1000; the original rules accept about 0.61 at T = 60).
    ``max_candidates`` (default ``max(1_000_000, 1000 * num)``) bounds the work: past it a
    :class:`ConfigError` says the recipe cannot reach ``num`` at this length.

    Args:
        num: trajectories to return (>= 1).
        length: frames per trajectory T (>= 3).
        seed: seed of the generator (:func:`mixdvae.utils.seed.numpy_generator`).
        progress: show a tqdm bar on stderr.
        recipe: the recipe; :class:`TrajectoryRecipe` defaults (reference section 2) if None.

    Shape:
        -> (num, length, 4) float32, normalised (x1, y1, x2, y2) = (left, top, right, bottom).
    """
    _check_args(num, length, chunk_size, seed)
    recipe = TrajectoryRecipe() if recipe is None else recipe
    limit = max(1_000_000, 1000 * int(num)) if max_candidates is None else int(max_candidates)
    rng = numpy_generator(seed)
    kept: list[np.ndarray] = []
    accepted = drawn = 0
    with tqdm(total=num, desc="trajectories", unit="traj", disable=not progress, leave=False) as bar:
        while accepted < num:
            if drawn >= limit:
                raise ConfigError(
                    f"length = {length}: only {accepted} of {num} trajectories accepted after {drawn} candidates "
                    f"(acceptance {accepted / max(drawn, 1):.2g}); the recipe's motion is too wide for this length"
                )
            boxes = sample_candidates(rng, chunk_size, length, recipe).boxes.astype(np.float32)
            ok = valid_box_trajectories(boxes, recipe.coord_min, recipe.coord_max, recipe.max_step)
            good = boxes[ok][: num - accepted]
            kept.append(good)
            accepted += good.shape[0]
            drawn += chunk_size
            bar.update(good.shape[0])
    logger.debug("accepted %d of %d candidates (T = %d, seed %d)", num, drawn, length, seed)
    return np.concatenate(kept, axis=0)


def trajectory_meta(num: int, length: int, seed: int, recipe: TrajectoryRecipe | None = None) -> dict:
    """The ``meta`` dict stored beside trajectories made by :func:`generate_trajectories`."""
    recipe = TrajectoryRecipe() if recipe is None else recipe
    return {
        "generator": "mixdvae.data.synthetic.generate_trajectories",
        "version": __version__,
        "seed": int(seed),
        "length": int(length),
        "num": int(num),
        "recipe": config_to_dict(recipe),
    }
