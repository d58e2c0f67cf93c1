"""MOT-NT windows: T-frame, N-object tracking problems cut from MOTChallenge sequences.

The recipe follows the paper's MOT17-3T data (reference-implementation.md section 3) with the
changes SPEC.md section 4 asks for. Per sequence:

1. **Match** detections to ground truth on every frame: Hungarian assignment
   (``scipy.optimize.linear_sum_assignment``) on the cost 1 - IoU, pairs with IoU < 0.5 forbidden,
   so the assignment maximises the number of matches first, then their IoU. Every gt box of the
   frame takes part (distractors and ignored boxes too), so a detection of a bystander is not handed
   to a nearby pedestrian.
2. **Cut** windows [f0, f0 + T) with f0 = first gt frame, first gt frame + stride, ... while the
   window fits (f0 + T - 1 <= last gt frame; the original stopped one frame earlier).
3. **Candidates** of a window: ids that are *considered* (flag 1, pedestrian) on every frame of
   the window, have a matched detection on at least ``min_obs_ratio`` · T frames (rounded up;
   the original rounded down), and on each of the first ``first_frames`` frames.
4. Windows with fewer than N candidates are skipped; otherwise up to ``max_subsets`` distinct
   N-subsets are drawn (all of them if there are fewer; ids ascending within a subset).
5. Each subset is stored as gt (T, N, 4) and det (T, K = N, 4), pixel xyxy, NaN for a missed
   detection. **Within each frame the K detection slots are shuffled** (seeded; NaN slots too), so
   that the slot index k carries no identity, unlike the original files where detection k belonged
   to object k. ``det_gt_index[t, k]`` = n, the gt object whose detection sits in slot k (-1 for
   an empty slot), is for evaluation only: a tracker must never read it.

Randomness: sequence s draws from ``SeedSequence([seed, crc32(name_s)])`` (first child for the
simulated detector, second for subsets and shuffles), so a sequence's windows do not change when
other sequences are added, and the same seed gives the same detections at every T.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import logging
import math
import os
import zlib
from pathlib import Path
from typing import Any, Literal

import numpy as np
from scipy.optimize import linear_sum_assignment

from mixdvae.config import config_to_dict
from mixdvae.data.boxes import box_iou, normalise_boxes
from mixdvae.data.detector import SimulatedDetector, simulate_detections
from mixdvae.data.mot import MotBoxes, read_sequence
from mixdvae.errors import ConfigError, DataFormatError
from mixdvae.utils.io import read_npz, save_npz

__all__ = ["WindowSet", "match_detections", "make_windows", "save_windows", "load_windows", "MATCH_IOU"]

logger = logging.getLogger(__name__)

MATCH_IOU = 0.5
"""IoU a detection needs with a gt box to be matched to it (the usual MOTChallenge threshold)."""

_KEYS = ("gt", "det", "det_gt_index", "sequence", "ids", "image_size", "frames", "recipe")


@dataclasses.dataclass
class WindowSet:
    """W windows of T frames with N sources and K = N detection slots, pixel xyxy boxes.

    Shape:
        gt: (W, T, N, 4) float64, finite. det: (W, T, K, 4) float64, NaN for an empty slot.
        det_gt_index: (W, T, K) int64 in -1..N-1 (evaluation only). sequence: (W,) str.
        ids: (W, N) int64 gt ids. image_size: (W, 2) float64 (width, height).
        frames: (W, 2) int64, first and last frame (1-based, inclusive).
    """

    gt: np.ndarray
    det: np.ndarray
    det_gt_index: np.ndarray
    sequence: np.ndarray
    ids: np.ndarray
    image_size: np.ndarray
    frames: np.ndarray
    recipe: dict[str, Any]

    def __len__(self) -> int:
        return int(self.gt.shape[0])

    @property
    def det_mask(self) -> np.ndarray:
        """True where a detection slot holds a box.  Shape: (W, T, K) bool."""
        return ~np.isnan(self.det).any(axis=-1)

    def normalised_gt(self) -> np.ndarray:
        """gt divided by each window's image size (x by width, y by height).  Shape: (W, T, N, 4)."""
        return normalise_boxes(self.gt, self.image_size[:, None, None, :])

    def normalised_det(self) -> np.ndarray:
        """det divided by each window's image size; NaN stays NaN.  Shape: (W, T, K, 4)."""
        return normalise_boxes(self.det, self.image_size[:, None, None, :])


# ------------------------------------------------------------------------------------- matching


def match_detections(gt: MotBoxes, det: MotBoxes, iou_threshold: float = MATCH_IOU) -> np.ndarray:
    """For every gt row, the det row matched to it on its frame, or -1.

    Per frame: maximise the number of pairs with IoU >= ``iou_threshold``, then their total IoU
    (Hungarian on 1 - IoU with the pairs below the threshold forbidden).

    Shape: gt (M,), det (D,) rows -> (M,) int64 indices into det.
    """
    match = np.full(len(gt), -1, dtype=np.int64)
    if len(gt) == 0 or len(det) == 0:
        return match
    g_order = np.argsort(gt.frame, kind="stable")
    d_order = np.argsort(det.frame, kind="stable")
    g_frames, d_frames = gt.frame[g_order], det.frame[d_order]
    forbidden = 1e6
    for f in np.intersect1d(g_frames, d_frames):
        gi = g_order[np.searchsorted(g_frames, f, "left"):np.searchsorted(g_frames, f, "right")]
        di = d_order[np.searchsorted(d_frames, f, "left"):np.searchsorted(d_frames, f, "right")]
        iou = box_iou(gt.boxes[gi], det.boxes[di])                        # (G, D)
        cost = np.where(iou >= iou_threshold, 1.0 - iou, forbidden)
        rows, cols = linear_sum_assignment(cost)
        ok = iou[rows, cols] >= iou_threshold
        match[gi[rows[ok]]] = di[cols[ok]]
    return match


# -------------------------------------------------------------------------------------- windows


def _draw_subsets(n_candidates: int, n: int, max_subsets: int, rng: np.random.Generator) -> list[tuple[int, ...]]:
    """Up to ``max_subsets`` distinct sorted n-subsets of range(n_candidates): all if few enough."""
    if math.comb(n_candidates, n) <= max_subsets:
        return list(itertools.combinations(range(n_candidates), n))
    seen: set[tuple[int, ...]] = set()
    chosen = []
    while len(chosen) < max_subsets:
        subset = tuple(sorted(int(i) for i in rng.choice(n_candidates, size=n, replace=False)))
        if subset not in seen:
            seen.add(subset)
            chosen.append(subset)
    return chosen


def _sequence_windows(gt: MotBoxes, det: MotBoxes, seq_length: int, length: int, sources: int, stride: int,
                      min_obs_ratio: float, first_frames: int, max_subsets: int,
                      rng: np.random.Generator) -> tuple[list[np.ndarray], ...]:
    """The windows of one sequence as lists of per-window arrays (gt, det, det_gt_index, ids, frames)."""
    out: tuple[list[np.ndarray], ...] = ([], [], [], [], [])
    if len(gt) == 0:
        return out
    match = match_detections(gt, det)                                       # (M,)
    considered = gt.considered
    ids = np.unique(gt.id[considered])                                      # (I,) ascending
    # dense per-frame tables of the considered ids; row f is frame f (row 0 unused)
    present = np.zeros((seq_length + 1, ids.size), dtype=bool)              # (L+1, I)
    gt_box = np.full((seq_length + 1, ids.size, 4), np.nan)                 # (L+1, I, 4)
    det_box = np.full((seq_length + 1, ids.size, 4), np.nan)                # (L+1, I, 4)
    rows = np.flatnonzero(considered)
    col = np.searchsorted(ids, gt.id[rows])
    present[gt.frame[rows], col] = True
    gt_box[gt.frame[rows], col] = gt.boxes[rows]
    hit = match[rows] >= 0
    det_box[gt.frame[rows[hit]], col[hit]] = det.boxes[match[rows[hit]]]
    observed = present & ~np.isnan(det_box).any(axis=-1)                   # (L+1, I)

    need = math.ceil(min_obs_ratio * length - 1e-9)
    first, last = int(gt.frame.min()), int(gt.frame.max())
    for f0 in range(first, last - length + 2, stride):
        span = slice(f0, f0 + length)
        cand = (present[span].all(axis=0) & (observed[span].sum(axis=0) >= need)
                & observed[f0:f0 + first_frames].all(axis=0))
        cand_idx = np.flatnonzero(cand)
        if cand_idx.size < sources:
            continue
        for subset in _draw_subsets(cand_idx.size, sources, max_subsets, rng):
            sel = cand_idx[list(subset)]                                    # (N,)
            window_det = det_box[span][:, sel]                              # (T, N, 4) slot n = object n
            # (T, K): slot k of frame t holds the detection of object perm[t, k]
            perm = rng.permuted(np.tile(np.arange(sources), (length, 1)), axis=1)
            slots = np.take_along_axis(window_det, perm[:, :, None], axis=1)  # (T, K, 4)
            index = np.where(np.isnan(slots).any(axis=-1), -1, perm)         # (T, K)
            out[0].append(gt_box[span][:, sel])
            out[1].append(slots)
            out[2].append(index.astype(np.int64))
            out[3].append(ids[sel].astype(np.int64))
            out[4].append(np.array([f0, f0 + length - 1], dtype=np.int64))
    return out


def _check_recipe(length: int, sources: int, stride: int, detector: str, min_obs_ratio: float,
                  first_frames: int, max_subsets: int) -> None:
    for name, value in (("length", length), ("sources", sources), ("stride", stride), ("max_subsets", max_subsets)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ConfigError(f"make_windows: {name} = {value!r}, expected an integer >= 1")
    if detector not in ("file", "simulated"):
        raise ConfigError(f"make_windows: detector = {detector!r}, expected 'file' or 'simulated'")
    if not (0.0 <= min_obs_ratio <= 1.0):
        raise ConfigError(f"make_windows: min_obs_ratio = {min_obs_ratio!r}, expected a number in [0, 1]")
    if isinstance(first_frames, bool) or not isinstance(first_frames, (int, np.integer)) \
            or not (0 <= first_frames <= length):
        raise ConfigError(f"make_windows: first_frames = {first_frames!r}, expected an integer in [0, {length}]")


def make_windows(seq_dirs: list[Path], length: int, sources: int, stride: int, seed: int,
                 detector: Literal["file", "simulated"] = "file", min_obs_ratio: float = 0.65,
                 first_frames: int = 1, max_subsets: int = 20,
                 detector_config: SimulatedDetector | None = None, progress: bool = False) -> WindowSet:
    """Cut MOT-NT windows from MOTChallenge sequence folders (module docstring for the recipe).

    Args:
        seq_dirs: sequence folders (seqinfo.ini, gt/gt.txt, and det/det.txt for ``"file"``).
        length: T, frames per window. sources: N, objects per window. stride: frames between starts.
        seed: seeds the simulated detector, the subsets and the slot shuffles.
        detector: ``"file"`` reads det/det.txt; ``"simulated"`` makes detections from gt with
            :func:`~mixdvae.data.detector.simulate_detections` (``detector_config``).
        min_obs_ratio: fraction of the T frames on which a kept id has a matched detection.
        first_frames: a kept id has a matched detection on each of the first ``first_frames``
            frames. The original required 5, because its VEM initialised source n from the
            frame-0 detection n and Φ from first-frame box sizes. Our windows shuffle the slots, so
            an initialisation can only rely on "N real detections on frame 1"; 1 guarantees that,
            and more would only bias the windows toward people who are easy to detect at the start
            (and drop more windows at short T).
        max_subsets: most N-subsets drawn per window.

    Returns:
        A WindowSet; W = 0 when no window qualifies (e.g. T longer than every track).

    Raises:
        ConfigError: a parameter out of range. DataFormatError: a sequence without gt/gt.txt, or
        without det/det.txt for ``detector="file"``, or a malformed file.
    """
    _check_recipe(length, sources, stride, detector, min_obs_ratio, first_frames, max_subsets)
    config = (detector_config or SimulatedDetector()) if detector == "simulated" else None
    parts: tuple[list[np.ndarray], ...] = ([], [], [], [], [])
    names: list[str] = []
    sizes: list[tuple[float, float]] = []
    dirs = [Path(d) for d in seq_dirs]
    iterator: Any = dirs
    if progress:
        from tqdm.auto import tqdm
        iterator = tqdm(dirs, desc="windows", unit="seq")
    for seq_dir in iterator:
        seq = read_sequence(seq_dir)
        if seq.gt is None:
            raise DataFormatError(f"{seq_dir}: no gt/gt.txt; windows need ground truth")
        det_rng, win_rng = (np.random.default_rng(s) for s in
                            np.random.SeedSequence([int(seed), zlib.crc32(seq.info.name.encode())]).spawn(2))
        if detector == "file":
            if seq.det is None:
                raise DataFormatError(f"{seq_dir}: no det/det.txt (use the simulated detector)")
            det = seq.det
        else:
            det = simulate_detections(seq.gt, seq.info, config, det_rng)
        found = _sequence_windows(seq.gt, det, seq.info.seq_length, length, sources, stride, min_obs_ratio,
                                  first_frames, max_subsets, win_rng)
        for acc, new in zip(parts, found):
            acc.extend(new)
        names += [seq.info.name] * len(found[0])
        sizes += [seq.info.image_size] * len(found[0])
        logger.debug("%s: %d windows", seq.info.name, len(found[0]))

    w = len(names)
    if w == 0:  # the caller decides how loud this is (the CLI exits 2 with one line)
        logger.debug("no windows of length %d with %d sources in %d sequence(s)", length, sources, len(dirs))
    recipe = {
        "length": int(length), "sources": int(sources), "stride": int(stride), "seed": int(seed),
        "detector": detector, "min_obs_ratio": float(min_obs_ratio), "first_frames": int(first_frames),
        "max_subsets": int(max_subsets), "match_iou": MATCH_IOU,
        "detector_config": None if config is None else config_to_dict(config),
        "source_dirs": [str(d) for d in dirs],
    }

    def stack(items: list[np.ndarray], shape: tuple[int, ...], dtype: Any) -> np.ndarray:
        return np.stack(items).astype(dtype) if items else np.zeros((0, *shape), dtype=dtype)

    return WindowSet(
        gt=stack(parts[0], (length, sources, 4), np.float64),
        det=stack(parts[1], (length, sources, 4), np.float64),
        det_gt_index=stack(parts[2], (length, sources), np.int64),
        sequence=np.array(names, dtype=str) if names else np.zeros(0, dtype="<U1"),
        ids=stack(parts[3], (sources,), np.int64),
        image_size=np.array(sizes, dtype=np.float64).reshape(w, 2),
        frames=stack(parts[4], (2,), np.int64),
        recipe=recipe,
    )


# -------------------------------------------------------------------------------------- file I/O


def _validate(where: str, arrays: dict[str, np.ndarray], allow_empty: bool) -> None:
    """Raise DataFormatError (one line, naming ``where``) unless the arrays form a WindowSet."""
    gt = arrays["gt"]
    if gt.ndim != 4 or gt.shape[-1] != 4:
        raise DataFormatError(f"{where}: gt has shape {gt.shape}, expected (W, T, N, 4)")
    w, t, n, _ = gt.shape
    if w == 0 and not allow_empty:
        raise DataFormatError(f"{where}: holds no windows")
    expected = {
        "det": ((w, t, n, 4), "(W, T, K, 4)"),
        "det_gt_index": ((w, t, n), "(W, T, K)"),
        "sequence": ((w,), "(W,)"),
        "ids": ((w, n), "(W, N)"),
        "image_size": ((w, 2), "(W, 2)"),
        "frames": ((w, 2), "(W, 2)"),
    }
    for key, (shape, text) in expected.items():
        if arrays[key].shape != shape:
            raise DataFormatError(f"{where}: {key} has shape {arrays[key].shape}, expected {text} = {shape} "
                                  f"from gt {gt.shape}")
    kinds = {"gt": "fi", "det": "f", "image_size": "fi", "det_gt_index": "i", "ids": "i", "frames": "i",
             "sequence": "U"}
    names = {"f": "floats", "i": "integers", "U": "strings"}
    for key, allowed in kinds.items():
        if arrays[key].dtype.kind not in allowed:
            raise DataFormatError(f"{where}: {key} has dtype {arrays[key].dtype}, expected {names[allowed[0]]}")
    bad = ~np.isfinite(gt).reshape(w, -1).all(axis=1)
    if bad.any():
        raise DataFormatError(f"{where}: gt holds non-finite values (window {int(np.flatnonzero(bad)[0])})")
    if not (np.isfinite(arrays["image_size"]).all() and (arrays["image_size"] > 0).all()):
        raise DataFormatError(f"{where}: image_size holds values that are not finite and > 0")
    det = arrays["det"]
    # (W, T, K): a box with an inf, or NaN mixed with numbers (a missing detection is all NaN)
    partial = ~np.isfinite(det).all(axis=-1) & ~np.isnan(det).all(axis=-1)
    if partial.any():
        w_, t_, k_ = (int(i) for i in np.argwhere(partial)[0])
        raise DataFormatError(f"{where}: det holds a box that is neither finite nor all NaN (window {w_}, frame {t_}, "
                              f"detection {k_}: {det[w_, t_, k_].tolist()})")
    index, empty = arrays["det_gt_index"], np.isnan(det).any(axis=-1)
    if ((index < -1) | (index >= n)).any():
        raise DataFormatError(f"{where}: det_gt_index holds values outside -1..{n - 1}")
    if ((index == -1) != empty).any():
        raise DataFormatError(f"{where}: det_gt_index is -1 exactly where det is NaN, not so here")


def save_windows(path: str | os.PathLike, ws: WindowSet) -> Path:
    """Write ``ws`` to an .npz (keys = WindowSet fields; recipe as a JSON string), atomically."""
    arrays = {
        "gt": np.asarray(ws.gt, dtype=np.float64), "det": np.asarray(ws.det, dtype=np.float64),
        "det_gt_index": np.asarray(ws.det_gt_index, dtype=np.int64), "sequence": np.asarray(ws.sequence, dtype=str),
        "ids": np.asarray(ws.ids, dtype=np.int64), "image_size": np.asarray(ws.image_size, dtype=np.float64),
        "frames": np.asarray(ws.frames, dtype=np.int64),
    }
    _validate(f"save_windows({path})", arrays, allow_empty=True)
    return save_npz(path, **arrays, recipe=np.array(json.dumps(ws.recipe, allow_nan=False)))


def load_windows(path: str | os.PathLike) -> WindowSet:
    """Read and validate a windows .npz written by :func:`save_windows`.

    Raises:
        DataFormatError: one line naming the file: not found, not an .npz, a missing key, shapes
            that disagree, no windows (W = 0), non-finite gt, det_gt_index inconsistent with det.
    """
    path = Path(path)
    arrays = read_npz(path, _KEYS, what="windows file")
    _validate(str(path), arrays, allow_empty=False)
    try:
        recipe = json.loads(str(arrays["recipe"]))
    except json.JSONDecodeError as err:
        raise DataFormatError(f"{path}: recipe is not valid JSON ({err})") from err
    if not isinstance(recipe, dict):
        raise DataFormatError(f"{path}: recipe is not a JSON object")
    return WindowSet(
        gt=arrays["gt"].astype(np.float64), det=arrays["det"].astype(np.float64),
        det_gt_index=arrays["det_gt_index"].astype(np.int64), sequence=arrays["sequence"],
        ids=arrays["ids"].astype(np.int64), image_size=arrays["image_size"].astype(np.float64),
        frames=arrays["frames"].astype(np.int64), recipe=recipe,
    )
