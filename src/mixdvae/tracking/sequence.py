"""Track a whole MOTChallenge sequence online: windows, births, deaths, clutter, identities.

The sequence is processed in consecutive windows of ``window`` frames (docs/sequences.md):

1. **Proposal** (E-step initialisation and birth proposals). The tracks alive at the window's
   first frame are propagated frame by frame with their constant-velocity Kalman filters and
   gated Hungarian association (:mod:`mixdvae.tracking.association`); every detection no track
   explains starts a birth proposal. Proposals that miss more than ``tentative_gap`` frames
   before reaching ``birth_hits`` detections are dropped: their detections are clutter.
2. **Window VEM** (``mixdvae``, ``vkf``): the sources are the carried tracks and the kept
   proposals, p(w) has a clutter class and each source's existence (birth frame on), the
   previous window's posterior enters through ``context`` frames
   (:func:`mixdvae.tracking.window_vem.window_vem`). The prior is the DVAE (``mixdvae``) or the
   constant-velocity model (``vkf``). ``kalman`` skips this step and keeps the hard association.
3. **Lifecycle** (:mod:`mixdvae.tracking.lifecycle`): from d_tn = sum_k q(w_tk = n), frame by
   frame, detections, confirmations (new ids), missed detections and deaths.
4. **Carry**: each surviving track's Kalman state is re-filtered through the window on the
   detections the VEM gave it, ready for the next window's proposal.

Identities are carried by the tracks themselves; an id is assigned at confirmation and never
reused. Coordinates are normalised by the image size inside, pixels outside.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from mixdvae.config import config_to_dict, config_with_overrides
from mixdvae.data.mot import MotBoxes, SeqInfo
from mixdvae.dvae.heads import Gauss
from mixdvae.errors import ConfigError
from mixdvae.inference.cv_prior import ConstantVelocityPrior, CVPriorOptions
from mixdvae.inference.dvae_prior import DVAEPriorOptions, DVAESourcePrior
from mixdvae.data.boxes import box_size
from mixdvae.tracking.association import MIN_SIZE, AssociationConfig, BoxFilter, associate, predict, start_filter, update
from mixdvae.tracking.lifecycle import LifecycleConfig, Track, death_gap_frames, report_frames, step_lifecycle
from mixdvae.tracking.observation import BoxObservationModel, box_scale
from mixdvae.tracking.sequence_results import SequenceTracks
from mixdvae.tracking.window_vem import window_vem

__all__ = ["SEQUENCE_METHODS", "VEM_METHODS", "SequenceConfig", "frame_detections", "load_sequence_prior", "track_sequence"]

log = logging.getLogger(__name__)

VEM_METHODS = ("mixdvae", "vkf")
SEQUENCE_METHODS = ("mixdvae", "vkf", "kalman", "sort", "ocsort", "bytetrack")


@dataclass(frozen=True)
class SequenceConfig:
    """Whole-sequence tracking (defaults tuned on MOT17 train with the simulated detector).

    Attributes:
        window: frames per window (the VEM's T, without context).
        context: frames of the previous window whose posterior is passed as messages.
        iterations, tol: VEM iterations at most; stop when no q(w) moved by more than tol.
        clutter_prob: pi_0, the prior probability that a detection is clutter.
        clutter_log_density: log u, the uniform clutter density over normalised boxes.
        obs_rho: initial relative observation variance (Phi = rho size^2).
        learn_obs: re-estimate rho per window (M-step); otherwise Phi stays at obs_rho size^2.
        birth_score: births start only from detections whose score, mapped to (0, 1) by its rank
            in the sequence (:func:`mixdvae.baselines.practitioner.rank_confidence`), is at least this.
        lifecycle, association: birth/death rules and the Kalman proposal.
        dvae, cv: options of the DVAE prior (mixdvae) and of the constant-velocity prior (vkf).
            The DVAE's E-S is the linearised smoother (``posterior = "kalman"``: the DVAE's
            one-step predictions as the dynamics of a Kalman/RTS smoother, so a gap is filled
            from both sides) with extra_std 0.01; the windows' forward filter with extra_std 0.3
            reported raw-detection-quality boxes and extrapolated gaps (docs/sequences.md).
    """

    window: int = 10
    context: int = 5
    iterations: int = 6
    tol: float = 1e-3
    clutter_prob: float = 0.1
    clutter_log_density: float = 0.0
    obs_rho: float = 0.08 ** 2
    learn_obs: bool = True
    birth_score: float = 0.25
    lifecycle: LifecycleConfig = field(default_factory=LifecycleConfig)
    association: AssociationConfig = field(default_factory=AssociationConfig)
    dvae: DVAEPriorOptions = field(default_factory=lambda: DVAEPriorOptions(extra_std=0.01, predictive=True, posterior="kalman",
                                                                             kalman_learn_noise=True))
    cv: CVPriorOptions = field(default_factory=CVPriorOptions)

    def __post_init__(self) -> None:
        if self.window < 1:
            raise ConfigError(f"SequenceConfig.window = {self.window}: must be >= 1")
        if self.context < 0:
            raise ConfigError(f"SequenceConfig.context = {self.context}: must be >= 0")
        if self.iterations < 1:
            raise ConfigError(f"SequenceConfig.iterations = {self.iterations}: must be >= 1")
        if not 0 < self.clutter_prob < 1:
            raise ConfigError(f"SequenceConfig.clutter_prob = {self.clutter_prob}: must be in (0, 1)")
        if not self.obs_rho > 0:
            raise ConfigError(f"SequenceConfig.obs_rho = {self.obs_rho}: must be > 0")

    def with_overrides(self, data: dict, source: str) -> "SequenceConfig":
        """A copy with the fields of ``data`` (a TOML table; nested tables for the sub-configs)."""
        return config_with_overrides(self, data, source)


def frame_detections(det: MotBoxes | None, info: SeqInfo) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Detections per frame in normalised xyxy, sorted by score (highest first), and their scores
    mapped to (0, 1) by rank within the sequence.

    Shape: -> two lists of seq_length arrays, (K_t, 4) and (K_t,).
    """
    from mixdvae.baselines.practitioner import rank_confidence

    L = info.seq_length
    if det is None or len(det) == 0:
        return [np.zeros((0, 4)) for _ in range(L)], [np.zeros(0) for _ in range(L)]
    size = np.array(info.image_size * 2)
    order = np.lexsort((-det.conf, det.frame))
    frames = det.frame[order] - 1
    boxes = det.boxes[order] / size
    score = rank_confidence(det.conf)[order]
    cuts = np.searchsorted(frames, np.arange(L + 1))
    return [boxes[cuts[t]:cuts[t + 1]] for t in range(L)], [score[cuts[t]:cuts[t + 1]] for t in range(L)]


class _Proposal:
    """Step 1 over one window: the sources, their initial boxes and the hard association."""

    def __init__(self, tracks: list[Track], start: int, stop: int, dets: list[np.ndarray], scores: list[np.ndarray],
                 cfg: SequenceConfig, death_frames: int, next_key: int):
        acfg, life = cfg.association, cfg.lifecycle
        self.sources = list(tracks)
        n0 = len(self.sources)
        f = BoxFilter.stack([t.filt for t in self.sources])
        last = [t.last_detected for t in self.sources]
        hits = [t.hits if not t.confirmed else np.inf for t in self.sources]
        alive = [True] * n0
        self.until = [stop] * n0  # first frame a source no longer exists (exclusive)
        T = stop - start
        means: list[np.ndarray] = []
        self.assign: list[tuple[np.ndarray, np.ndarray]] = []
        for t in range(start, stop):
            f = predict(f, acfg)  # carried tracks: from frame start - 1; new ones start after their frame
            d = dets[t]
            rows, cols = associate(f, d, acfg, np.asarray(alive, dtype=bool))
            observed = np.zeros(len(alive), dtype=bool)
            observed[rows] = True
            obs = np.zeros((len(alive), 4))
            obs[rows] = d[cols]
            f = update(f, obs, observed, acfg)
            for n in rows:
                last[n] = t
                hits[n] += 1
            for n in range(len(alive)):
                if alive[n] and not observed[n]:
                    gap = t - last[n]
                    if (hits[n] < life.birth_hits and gap > life.tentative_gap) or gap > death_frames:
                        alive[n] = False
                        self.until[n] = t
            free = np.setdiff1d(np.arange(d.shape[0]), cols)
            free = free[scores[t][free] >= cfg.birth_score]
            if free.size:
                new = start_filter(d[free], acfg)
                f = BoxFilter.stack([f, new])
                for j, k in enumerate(free):
                    self.sources.append(Track(key=next_key, born=t, filt=new.take(slice(j, j + 1)), last_detected=t))
                    next_key += 1
                    last.append(t)
                    hits.append(1.0)
                    alive.append(True)
                    self.until.append(stop)
                rows = np.concatenate([rows, np.arange(len(alive) - free.size, len(alive))])
                cols = np.concatenate([cols, free])
            means.append(f.p.copy())
            self.assign.append((rows, cols))
        self.next_key = next_key
        self.final = f
        N = len(self.sources)
        # keep carried tracks and proposals that reached birth_hits or are still alive at the end
        self.keep = np.array([n < n0 or hits[n] >= life.birth_hits or alive[n] for n in range(N)], dtype=bool)
        self.boxes = np.full((T, N, 4), np.nan)
        for i, m in enumerate(means):
            self.boxes[i, :m.shape[0]] = m
        self.hard = np.zeros((T, N))  # one-hot association count d_tn
        self.det_index = np.full((T, N), -1)
        for i, (rows, cols) in enumerate(self.assign):
            self.hard[i, rows] = 1.0
            self.det_index[i, rows] = cols


def _prior_for(method: str, model, cfg: SequenceConfig, anchors: torch.Tensor):
    if method == "vkf":
        return ConstantVelocityPrior(anchors, cfg.cv)
    return DVAESourcePrior(model, cfg.dvae, anchor=anchors)


def _window_posterior(prop: _Proposal, src: np.ndarray, start: int, stop: int, dets: list[np.ndarray],
                      method: str, model, cfg: SequenceConfig, device, generator) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Step 2: the window VEM on the kept sources ``src``.

    Returns posterior means and variances (T, N, 4) of the window frames, d_tn (T, N) and the
    detection-weighted mean box the source explains (T, N, 4, NaN where d_tn = 0).
    """
    T, N = stop - start, src.size
    c0 = max(0, start - cfg.context)
    C = start - c0
    K = max([dets[t].shape[0] for t in range(start, stop)] + [1])
    o = np.full((C + T, K, 4), np.nan)
    for i, t in enumerate(range(start, stop)):
        o[C + i, :dets[t].shape[0]] = dets[t]
    mask = np.isfinite(o).all(-1)
    tracks = [prop.sources[n] for n in src]
    init = np.empty((C + T, N, 4))
    ctx_m = np.full((C + T, N, 4), np.nan)
    ctx_v = np.full((C + T, N, 4), np.inf)
    exist = np.zeros((C + T, N), dtype=bool)
    win = prop.boxes[:, src]  # (T, N, 4), NaN before birth
    first = np.array([win[np.flatnonzero(np.isfinite(win[:, j, 0]))[0], j] for j in range(N)]) if N else np.zeros((0, 4))
    for j, (n, tr) in enumerate(zip(src, tracks)):
        born, until = max(tr.born, start), prop.until[n]
        exist[C + born - start:C + until - start, j] = True
        init[C:, j] = np.where(np.isfinite(win[:, j]), win[:, j], first[j])
        for i, t in enumerate(range(c0, start)):
            if t in tr.boxes:
                ctx_m[i, j], ctx_v[i, j] = tr.boxes[t], tr.variances[t]
                init[i, j] = tr.boxes[t]
            else:
                init[i, j] = first[j]
    # birth state: before it exists, a source sits still at its first box (a message of the
    # observation variance), so the prior starts each newborn from rest, as the Kalman filter does
    before = ~np.isfinite(ctx_m[..., 0]) & (np.cumsum(exist, axis=0) == 0)  # (C + T, N)
    jj = np.nonzero(before)[1]
    ctx_m[before] = first[jj]
    ctx_v[before] = cfg.obs_rho * box_size(first[jj], MIN_SIZE) ** 2
    dev = dict(dtype=torch.float32, device=device)
    o_t = torch.as_tensor(o[None], **dev)
    mask_t = torch.as_tensor(mask[None], device=device)
    init_m = torch.as_tensor(init[None], **dev)
    init_g = Gauss(init_m, cfg.obs_rho * torch.as_tensor(box_size(init, MIN_SIZE)[None], **dev) ** 2)
    ctx = Gauss(torch.as_tensor(ctx_m[None], **dev), torch.as_tensor(ctx_v[None], **dev))
    obs = BoxObservationModel(box_scale(o_t, mask_t), torch.full((1, 4), cfg.obs_rho, **dev), learn=cfg.learn_obs)
    prior = _prior_for(method, model, cfg, init_m[:, 0])
    res = window_vem(o_t, mask_t, torch.as_tensor(exist[None], device=device), prior, obs, init_g, ctx,
                     cfg.clutter_prob, cfg.clutter_log_density, cfg.iterations, cfg.tol, generator)
    r = res.resp.r[0, C:].detach().cpu().double().numpy()  # (T, K, N)
    mean = res.sources.mean[0, C:].detach().cpu().double().numpy()
    var = res.sources.var[0, C:].detach().cpu().double().numpy()
    d = r.sum(1)  # (T, N)
    o_win = np.nan_to_num(o[C:], nan=0.0)  # (T, K, 4)
    with np.errstate(invalid="ignore", divide="ignore"):
        explained = np.einsum("tkn,tkd->tnd", r, o_win) / d[..., None]
    return mean, var, d, explained


def _refilter(tracks: list[Track], start: int, stop: int, d: np.ndarray, explained: np.ndarray,
              cfg: SequenceConfig) -> None:
    """Step 4: re-run each track's Kalman filter through the window on the detections it explains."""
    if not tracks:
        return
    acfg, thr = cfg.association, cfg.lifecycle.detect_threshold
    born = np.array([t.born for t in tracks])
    new = born >= start
    f = BoxFilter.stack([t.filt if not nw else start_filter(t.boxes[t.born][None], acfg) for t, nw in zip(tracks, new)])
    for i, t in enumerate(range(start, stop)):
        active = ~new | (born < t)
        pred = predict(f, acfg)
        f = BoxFilter(*(np.where(active[:, None], a, b) for a, b in zip(pred, f)))
        observed = active & (d[i] >= thr)
        f = update(f, np.nan_to_num(explained[i]), observed, acfg)
    for j, tr in enumerate(tracks):
        tr.filt = f.take(slice(j, j + 1))


def _proper_boxes(boxes: np.ndarray, min_size: float = 1.0) -> np.ndarray:
    """Boxes with x2 - x1 and y2 - y1 >= ``min_size`` pixels, same centre (an extrapolated
    posterior mean can cross its edges).  (M, 4) -> (M, 4)"""
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2.0
    half = np.maximum(np.abs(boxes[:, 2:] - boxes[:, :2]), min_size) / 2.0
    return np.concatenate([centre - half, centre + half], axis=1)


def load_sequence_prior(method: str, weights: str | Path | None, device):
    """The DVAE prior of ``method`` (None unless ``mixdvae``): ``weights`` or the shipped motion SRNN."""
    if method != "mixdvae":
        return None
    from mixdvae.dvae.weights import load_weights
    from mixdvae.tracking.track import default_weights

    model = load_weights(weights or default_weights("mixdvae", "normalised"), device)
    if model.family not in ("srnn", "deep_ar"):
        raise ConfigError(f"--weights: whole-sequence MixDVAE needs an 'srnn' or 'deep_ar' prior, got '{model.family}'")
    return model


def track_sequence(
    det: MotBoxes | None,
    info: SeqInfo,
    method: str = "mixdvae",
    config: SequenceConfig | None = None,
    weights: str | Path | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
    progress: bool = False,
    model=None,
) -> SequenceTracks:
    """Track every person of one sequence from its detections alone (module docstring).

    ``model`` may pass an already loaded DVAE (``weights`` is then ignored).
    Shape: det.boxes (M, 4) pixel xyxy -> SequenceTracks rows (M', 4) pixel xyxy with ids.
    """
    if method not in SEQUENCE_METHODS:
        raise ConfigError(f"--method: '{method}' is not one of {list(SEQUENCE_METHODS)}")
    config = config or SequenceConfig()
    if method in ("sort", "ocsort", "bytetrack"):
        from mixdvae.baselines.practitioner import track_practitioner

        return track_practitioner(det, info, method)
    device = torch.device(device)
    if method == "mixdvae" and model is None:
        model = load_sequence_prior(method, weights, device)
    t0 = time.perf_counter()  # tracking time: detections given, the prior loaded
    generator = torch.Generator(device=device)
    generator.manual_seed(int(seed))
    dets, scores = frame_detections(det, info)
    L = info.seq_length
    life = config.lifecycle
    death_frames = death_gap_frames(life, info.frame_rate)
    tracks: list[Track] = []
    finished: list[Track] = []
    next_key, next_id = 0, 1
    starts = range(0, L, config.window)
    for start in tqdm(starts, desc=f"track {info.name} ({method})", disable=not progress, unit="window"):
        stop = min(L, start + config.window)
        prop = _Proposal(tracks, start, stop, dets, scores, config, death_frames, next_key)
        next_key = prop.next_key
        src = np.flatnonzero(prop.keep)
        if method == "kalman" or src.size == 0:
            mean, d = prop.boxes[:, src], prop.hard[:, src]
            var = np.zeros_like(mean)
            explained = None
        else:
            mean, var, d, explained = _window_posterior(prop, src, start, stop, dets, method, model, config, device, generator)
        kept = [prop.sources[n] for n in src]
        for i, t in enumerate(range(start, stop)):
            for j, tr in enumerate(kept):
                if tr.dead or t < tr.born:
                    continue
                tr.boxes[t], tr.variances[t] = mean[i, j], var[i, j]
                next_id = step_lifecycle(tr, t, float(d[i, j]), life, death_frames, next_id)
        if method == "kalman":
            for j, n in enumerate(src):
                prop.sources[n].filt = prop.final.take(slice(n, n + 1))
        else:
            _refilter(kept, start, stop, d, explained if explained is not None else np.zeros(mean.shape), config)
        tracks = []
        for tr in kept:
            (finished if tr.dead else tracks).append(tr)
    finished += tracks
    frames, ids, boxes = [], [], []
    size = np.array(info.image_size * 2)
    for tr in finished:
        for t in report_frames(tr, life):
            frames.append(t + 1)
            ids.append(tr.track_id)
            boxes.append(tr.boxes[t] * size)
    seconds = time.perf_counter() - t0
    boxes = _proper_boxes(np.asarray(boxes, dtype=np.float64).reshape(-1, 4))
    cfg = {"method": method, "seed": seed, "weights": str(weights) if weights else None, **config_to_dict(config)}
    return SequenceTracks(
        frames=np.asarray(frames, dtype=np.int64), ids=np.asarray(ids, dtype=np.int64),
        boxes=boxes, conf=np.ones(len(frames)),
        method=method, sequence=info.name, num_frames=L, seconds=seconds, config=cfg,
    )
