"""Track birth, confirmation, missed detections and death, decided from q(w).

Per frame t and source n the quantity that decides is the expected number of detections the
source explains, d_tn = sum_k q(w_tk = n) (the one-hot association for the Kalman tracker):

- **detected** at t when d_tn >= ``detect_threshold``; otherwise the source is in the
  missed-detection state at t;
- **birth**: a proposal (a chain of detections the existing tracks did not explain) becomes a
  confirmed track, and gets a new id, once sum_t d_tn >= ``birth_hits`` while it never missed
  more than ``tentative_gap`` consecutive frames; otherwise its detections stay clutter;
- **death**: a confirmed track that explains no detection for more than ``death_gap`` seconds
  (converted with the sequence's frame rate) is removed; a person who comes back later is a new
  track with a new id. Ids are never reused.

Output boxes (the MOTChallenge result): a confirmed track reports its posterior mean on every
frame it is detected, and on the missed frames between two detections (``fill_gaps``; the gap
is shorter than the death gap by construction). Frames after its last detection are never
reported. A track's frames before its confirmation are reported once it is confirmed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from mixdvae.config import check_positive
from mixdvae.errors import ConfigError
from mixdvae.tracking.association import BoxFilter

__all__ = ["LifecycleConfig", "Track", "death_gap_frames", "step_lifecycle", "report_frames"]


@dataclass(frozen=True)
class LifecycleConfig:
    """Birth, death and output rules (defaults tuned on MOT17 train, docs/sequences.md).

    Attributes:
        birth_hits: expected number of detections sum_t d_tn a proposal needs to be confirmed.
        tentative_gap: a proposal missing more consecutive frames than this is dropped.
        death_gap: seconds without a detection after which a confirmed track dies.
        min_death_frames: the death gap in frames is never below this.
        detect_threshold: d_tn at or above this is a detection of source n at t.
        fill_gaps: report the posterior mean on missed frames between two detections.
    """

    birth_hits: float = 5.0
    tentative_gap: int = 1
    death_gap: float = 1.0
    min_death_frames: int = 5
    detect_threshold: float = 0.5
    fill_gaps: bool = True

    def __post_init__(self) -> None:
        check_positive("LifecycleConfig", "birth_hits", self.birth_hits)
        check_positive("LifecycleConfig", "death_gap", self.death_gap)
        if self.tentative_gap < 0:
            raise ConfigError(f"LifecycleConfig.tentative_gap = {self.tentative_gap}: must be >= 0")
        if self.min_death_frames < 1:
            raise ConfigError(f"LifecycleConfig.min_death_frames = {self.min_death_frames}: must be >= 1")
        if not 0 < self.detect_threshold <= 1:
            raise ConfigError(f"LifecycleConfig.detect_threshold = {self.detect_threshold}: must be in (0, 1]")


def death_gap_frames(config: LifecycleConfig, frame_rate: float) -> int:
    """The death gap in frames: max(min_death_frames, round(death_gap x frame rate))."""
    return max(config.min_death_frames, int(math.floor(config.death_gap * frame_rate + 0.5)))


@dataclass
class Track:
    """One source over the sequence (frames are 0-based indices).

    ``filt`` is its Kalman state after the last processed frame (one row of a
    :class:`~mixdvae.tracking.association.BoxFilter`); ``boxes`` and ``variances`` hold the
    posterior mean and variance (model coordinates) of every processed frame since its birth,
    ``detected`` the frames it explained a detection on.
    """

    key: int
    born: int
    filt: BoxFilter
    last_detected: int
    track_id: int | None = None
    hits: float = 0.0
    dead: bool = False
    boxes: dict[int, np.ndarray] = field(default_factory=dict)
    variances: dict[int, np.ndarray] = field(default_factory=dict)
    detected: set[int] = field(default_factory=set)

    @property
    def confirmed(self) -> bool:
        return self.track_id is not None


def step_lifecycle(track: Track, frame: int, detections: float, config: LifecycleConfig, death_frames: int,
                   next_id: int) -> int:
    """Apply the rules of the module docstring to ``track`` at ``frame`` given d_tn = ``detections``.

    Returns the next free id (``next_id + 1`` when the track is confirmed now).
    """
    if track.dead:
        return next_id
    if detections >= config.detect_threshold:
        track.detected.add(frame)
        track.last_detected = frame
        track.hits += float(detections)
        if not track.confirmed and track.hits >= config.birth_hits:
            track.track_id = next_id
            return next_id + 1
        return next_id
    gap = frame - track.last_detected
    if (not track.confirmed and gap > config.tentative_gap) or gap > death_frames:
        track.dead = True
    return next_id


def report_frames(track: Track, config: LifecycleConfig) -> list[int]:
    """Frames a confirmed track is reported on: detected frames, plus the gaps between them."""
    if not track.confirmed or not track.detected:
        return []
    det = sorted(track.detected)
    if not config.fill_gaps:
        return det
    return [f for f in range(det[0], det[-1] + 1) if f in track.boxes]
