"""SORT, OC-SORT and ByteTrack from the ``trackers`` package (roboflow, Apache-2.0) on our detections.

The adapter feeds one ``supervision.Detections`` per frame (pixel xyxy, a confidence, class 0)
to ``trackers.SORTTracker``, ``OCSORTTracker`` or ``ByteTrackTracker`` with the package's default
parameters and the sequence's frame rate, and reports every detection the tracker gives an id
(``tracker_id >= 0``) with that id: these trackers output the detection boxes themselves.

**Confidences.** Their thresholds (SORT's activation 0.25, ByteTrack's high/low split 0.6 and
activation 0.7, OC-SORT's 0.6) assume scores in [0, 1]; MOT15's public ACF scores run from about
-1 to 140. Scores are therefore mapped to [0, 1] per sequence by min-max scaling,
(c - min c) / (max c - min c) (:func:`minmax_confidence`; the simulated MOT17 detector's scores,
already in [0, 1), barely change). Chosen on MOT17 (simulated detector), IDF1 / HOTA: SORT 61.8 /
47.0, OC-SORT 57.0 / 40.1, ByteTrack 60.7 / 46.4 with min-max, against 59.4 / 45.3, 36.0 / 25.7,
45.7 / 35.6 with the rank map of :func:`rank_confidence` (which our own ``birth_score`` uses).

``trackers`` is imported only when one of these methods is asked for; without it the error is one
line: ``pip install 'mixdvae[sequences]'``.
"""

from __future__ import annotations

import importlib
import time

import numpy as np

from mixdvae.data.mot import MotBoxes, SeqInfo
from mixdvae.errors import ConfigError, MixDVAEError
from mixdvae.tracking.sequence_results import SequenceTracks

__all__ = ["PRACTITIONER_METHODS", "minmax_confidence", "rank_confidence", "track_practitioner"]

PRACTITIONER_METHODS = {"sort": "SORTTracker", "ocsort": "OCSORTTracker", "bytetrack": "ByteTrackTracker"}


def _import(name: str):
    try:
        return importlib.import_module(name)
    except ImportError as err:
        raise MixDVAEError(f"methods sort/ocsort/bytetrack need the package '{name}': pip install 'mixdvae[sequences]'") from err


def rank_confidence(conf: np.ndarray) -> np.ndarray:
    """c_i -> (rank(c_i) - 1/2) / M with tied scores all given the highest rank of their group:
    scores in (0, 1), order kept (a detector that gives most detections the same score does not
    push them below a threshold).

    Shape: (M,) -> (M,)
    """
    conf = np.asarray(conf, dtype=np.float64)
    if conf.size == 0:
        return conf.copy()
    from scipy.stats import rankdata

    return (rankdata(conf, method="max") - 0.5) / conf.size


def minmax_confidence(conf: np.ndarray) -> np.ndarray:
    """c_i -> (c_i - min c) / (max c - min c), all ones when every score is equal.

    Shape: (M,) -> (M,)
    """
    conf = np.asarray(conf, dtype=np.float64)
    if conf.size == 0:
        return conf.copy()
    span = conf.max() - conf.min()
    return np.ones_like(conf) if span <= 0 else (conf - conf.min()) / span


def track_practitioner(det: MotBoxes | None, info: SeqInfo, method: str, **params) -> SequenceTracks:
    """Run SORT, OC-SORT or ByteTrack (``method``) over the sequence; ``params`` go to the tracker.

    Shape: det.boxes (M, 4) pixel xyxy -> rows (M', 4) pixel xyxy with ids >= 1.
    """
    if method not in PRACTITIONER_METHODS:
        raise ConfigError(f"--method: '{method}' is not one of {sorted(PRACTITIONER_METHODS)}")
    trackers = _import("trackers")
    sv = _import("supervision")
    t0 = time.perf_counter()
    tracker = getattr(trackers, PRACTITIONER_METHODS[method])(frame_rate=float(info.frame_rate), **params)
    L = info.seq_length
    if det is None or len(det) == 0:
        frame, boxes, conf = np.zeros(0, dtype=np.int64), np.zeros((0, 4)), np.zeros(0)
    else:
        frame, boxes, conf = det.frame, det.boxes, minmax_confidence(det.conf)
    order = np.argsort(frame, kind="stable")
    frame, boxes, conf = frame[order], boxes[order], conf[order]
    cuts = np.searchsorted(frame, np.arange(1, L + 2))
    out_f, out_id, out_b = [], [], []
    for t in range(L):
        sl = slice(cuts[t], cuts[t + 1])
        n = sl.stop - sl.start
        if n:
            d = sv.Detections(xyxy=boxes[sl].astype(np.float32), confidence=conf[sl].astype(np.float32),
                              class_id=np.zeros(n, dtype=int))
        else:
            d = sv.Detections.empty()
        res = tracker.update(d)
        ids = np.asarray(res.tracker_id if res.tracker_id is not None else np.zeros(0), dtype=np.int64)
        ok = ids >= 0
        if ok.any():
            out_f.append(np.full(int(ok.sum()), t + 1))
            out_id.append(ids[ok])
            out_b.append(np.asarray(res.xyxy, dtype=np.float64)[ok])
    frames = np.concatenate(out_f) if out_f else np.zeros(0, dtype=np.int64)
    ids = np.concatenate(out_id) if out_id else np.zeros(0, dtype=np.int64)
    boxes_out = np.concatenate(out_b) if out_b else np.zeros((0, 4))
    if ids.size and ids.min() < 1:
        ids = ids - ids.min() + 1  # MOTChallenge ids start at 1
    return SequenceTracks(
        frames=frames.astype(np.int64), ids=ids, boxes=boxes_out, conf=np.ones(frames.shape[0]), method=method,
        sequence=info.name, num_frames=L, seconds=time.perf_counter() - t0,
        config={"method": method, "package": "trackers", "params": {k: repr(v) for k, v in params.items()},
                "confidence": "min-max within the sequence"},
    )
