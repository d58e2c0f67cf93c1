"""Tracking results file: what ``mixdvae track`` writes and ``mixdvae evaluate tracking`` reads.

One ``.npz`` holding, for W windows of T frames, N sources and K detection slots:

- ``boxes`` (W, T, N, 4) float: estimated source boxes, pixel xyxy (x1, y1, x2, y2, y down); must
  be finite;
- ``eta`` (W, T, K, N) float: assignment posteriors q(w_tk = n); rows of missing detections may
  be NaN or 0;
- ``elbo`` (W, I) float, optional: ELBO per VEM iteration;
- ``method`` 0-d str (e.g. ``"mixdvae"``, ``"vkf"``) and ``config`` 0-d str (a JSON object).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from mixdvae.errors import DataFormatError
from mixdvae.utils.io import read_npz, save_npz

if TYPE_CHECKING:
    from mixdvae.data.windows import WindowSet

__all__ = ["TrackingResults", "check_results_match", "load_tracking_results", "save_tracking_results"]


@dataclass(frozen=True)
class TrackingResults:
    """Estimated boxes and assignment posteriors of W windows.

    Shape:
        boxes: (W, T, N, 4); eta: (W, T, K, N); elbo: (W, I) or None
    """

    boxes: np.ndarray
    eta: np.ndarray
    elbo: np.ndarray | None = None
    method: str = ""
    config: dict = field(default_factory=dict)


def save_tracking_results(path: str | Path, results: TrackingResults) -> Path:
    """Write ``results`` atomically (``config`` may be a dict or a JSON string)."""
    config = results.config if isinstance(results.config, str) else json.dumps(results.config)
    arrays = {
        "boxes": np.asarray(results.boxes, dtype=np.float64),
        "eta": np.asarray(results.eta, dtype=np.float64),
        "method": np.array(str(results.method)),
        "config": np.array(config),
    }
    if results.elbo is not None:
        arrays["elbo"] = np.asarray(results.elbo, dtype=np.float64)
    return save_npz(path, **arrays)


def _string(name: str, arrays, key: str) -> str:
    value = arrays[key]
    if value.ndim != 0 or value.dtype.kind != "U":
        raise DataFormatError(f"{name}: '{key}' must be a 0-d string, got {value.dtype} {value.shape}")
    return str(value)


def load_tracking_results(path: str | Path) -> TrackingResults:
    """Read and check a results file; every problem is a one-line :class:`DataFormatError`."""
    path = Path(path)
    name = str(path)
    arrays = read_npz(path, ("boxes", "eta", "method", "config"), optional=("elbo",), what="results file")
    boxes, eta = arrays["boxes"], arrays["eta"]
    if boxes.ndim != 4 or boxes.shape[3] != 4 or boxes.dtype.kind != "f":
        raise DataFormatError(f"{name}: 'boxes' must be float (W, T, N, 4), got {boxes.dtype} {boxes.shape}")
    W, T, N, _ = boxes.shape
    if eta.ndim != 4 or eta.shape[:2] != (W, T) or eta.shape[3] != N or eta.dtype.kind != "f":
        raise DataFormatError(
            f"{name}: 'eta' must be float (W, T, K, N) = ({W}, {T}, K, {N}), got {eta.dtype} {eta.shape}"
        )
    bad = ~np.isfinite(boxes).all(axis=-1)  # (W, T, N)
    if bad.any():
        w, t, n = np.argwhere(bad)[0]
        raise DataFormatError(
            f"{name}: 'boxes' of window {w} are not finite (frame {t}, source {n}: {boxes[w, t, n].tolist()})"
        )
    if np.isinf(eta).any() or (eta < -1e-6).any() or (eta > 1 + 1e-6).any():
        raise DataFormatError(f"{name}: 'eta' must hold probabilities in [0, 1] or NaN")
    elbo = arrays.get("elbo")
    if elbo is not None and (elbo.ndim != 2 or elbo.shape[0] != W or elbo.dtype.kind != "f"):
        raise DataFormatError(
            f"{name}: 'elbo' must be float (W, I) with W = {W}, got {elbo.dtype} {elbo.shape}"
        )
    method = _string(name, arrays, "method")
    config_text = _string(name, arrays, "config")
    try:
        config = json.loads(config_text)
    except json.JSONDecodeError as err:
        raise DataFormatError(f"{name}: 'config' is not JSON ({err.msg} at char {err.pos})") from err
    if not isinstance(config, dict):
        raise DataFormatError(f"{name}: 'config' must be a JSON object, got {type(config).__name__}")
    return TrackingResults(boxes=boxes, eta=eta, elbo=elbo, method=method, config=config)


def check_results_match(results: TrackingResults, windows: WindowSet, results_name: str, windows_name: str) -> None:
    """The results were made from these windows: boxes (W, T, N, 4) as the ground truth 'gt', and
    assignments (W, T, K, .) over the same detection slots as 'det'.

    Raises:
        DataFormatError: one line naming both files and what differs.
    """
    if results.boxes.shape != windows.gt.shape:
        raise DataFormatError(
            f"{results_name}: 'boxes' has shape {results.boxes.shape} but {windows_name} 'gt' has "
            f"{windows.gt.shape} (W, T, N, 4)"
        )
    if results.eta.shape[:3] != windows.det.shape[:3]:
        raise DataFormatError(
            f"{results_name}: 'eta' has shape {results.eta.shape} but {windows_name} 'det' has "
            f"{windows.det.shape}: (W, T, K) must agree"
        )
