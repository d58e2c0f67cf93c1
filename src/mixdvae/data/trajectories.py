"""The trajectories file: single-object box trajectories for pretraining, as one ``.npz``.

Keys:

- ``boxes``: (num, T, 4) float32, normalised (x1, y1, x2, y2) = (left, top, right, bottom), y down.
- ``meta``: a 0-d string array holding a JSON object, e.g. generator, seed, length, num, recipe
  (:func:`mixdvae.data.synthetic.trajectory_meta`). Optional on load (read as ``{}``).

Files are written atomically and read without pickle. :func:`load_trajectories` raises
:class:`DataFormatError` with one line naming the file for every malformed file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mixdvae.errors import DataFormatError
from mixdvae.utils.io import first_line, read_npz, save_npz

__all__ = ["TrajectorySet", "save_trajectories", "load_trajectories", "check_trajectory_boxes"]


@dataclass(frozen=True)
class TrajectorySet:
    """Trajectories read from a file.

    Shape:
        boxes: (num, T, 4) float32 normalised xyxy; meta: dict from the file's JSON ``meta``.
    """

    boxes: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def num(self) -> int:
        return int(self.boxes.shape[0])

    @property
    def length(self) -> int:
        return int(self.boxes.shape[1])


def check_trajectory_boxes(boxes: np.ndarray, where: str, error: type[Exception] = DataFormatError) -> np.ndarray:
    """Check a (num, T, 4) array of trajectories and return it as float32.

    Raises ``error`` (one line starting with ``where``) for a non-numeric dtype, a shape other than
    (num, T, 4), zero trajectories, T < 3, or a non-finite value (naming the first trajectory,
    frame and coordinate that holds one).
    """
    boxes = np.asarray(boxes)
    if boxes.dtype.kind not in "fiu":
        raise error(f"{where}: boxes have dtype {boxes.dtype}, expected floats")
    if boxes.ndim != 3 or boxes.shape[-1] != 4:
        raise error(f"{where}: boxes have shape {tuple(boxes.shape)}, expected (num, T, 4)")
    num, length, _ = boxes.shape
    if num == 0:
        raise error(f"{where}: holds zero trajectories")
    if length < 3:
        raise error(f"{where}: trajectories have T = {length} frames, expected T >= 3")
    boxes = boxes.astype(np.float32)
    bad = ~np.isfinite(boxes)
    if bad.any():
        i, t, c = (int(v) for v in np.argwhere(bad)[0])
        raise error(
            f"{where}: trajectory {i}, frame {t}, coordinate {c} is {boxes[i, t, c]} "
            f"({int(bad.sum())} non-finite values in all), expected finite boxes"
        )
    return boxes


def save_trajectories(path: str | os.PathLike, boxes: np.ndarray, meta: dict[str, Any]) -> Path:
    """Write ``boxes`` and ``meta`` (a JSON-serialisable dict) to ``path`` atomically.

    Raises:
        ValueError: ``boxes`` fail :func:`check_trajectory_boxes` or ``meta`` is not JSON-serialisable.

    Shape:
        boxes: (num, T, 4), stored as float32.
    """
    boxes = check_trajectory_boxes(boxes, f"{path}: refusing to write", error=ValueError)
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: meta must be a dict, got {type(meta).__name__}")
    try:
        meta_json = json.dumps(meta, allow_nan=False, sort_keys=True)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: meta is not JSON-serialisable ({first_line(err)})") from err
    return save_npz(path, boxes=boxes, meta=np.array(meta_json))


def load_trajectories(path: str | os.PathLike) -> TrajectorySet:
    """Read a trajectories file written by :func:`save_trajectories`.

    Raises:
        DataFormatError: ``"{path}: ..."`` if the file is missing, not an .npz archive, lacks key
            ``boxes``, fails :func:`check_trajectory_boxes`, or holds a ``meta`` that is not a JSON
            object.

    Shape:
        -> boxes (num, T, 4) float32.
    """
    p = Path(path)
    arrays = read_npz(p, ("boxes",), optional=("meta",), what="trajectories file")
    boxes, meta_raw = arrays["boxes"], arrays.get("meta")
    boxes = check_trajectory_boxes(boxes, str(p))
    meta: dict[str, Any] = {}
    if meta_raw is not None:
        if meta_raw.ndim != 0 or meta_raw.dtype.kind != "U":
            raise DataFormatError(f"{p}: key 'meta' should hold one JSON string, got {meta_raw.dtype} {meta_raw.shape}")
        try:
            meta = json.loads(str(meta_raw[()]))
        except json.JSONDecodeError as err:
            raise DataFormatError(f"{p}: key 'meta' is not valid JSON ({first_line(err)})") from err
        if not isinstance(meta, dict):
            raise DataFormatError(f"{p}: key 'meta' should be a JSON object, got {type(meta).__name__}")
    return TrajectorySet(boxes=boxes, meta=meta)
