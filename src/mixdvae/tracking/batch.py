"""Track a windows file in resumable chunks, sharded over torchrun ranks (:mod:`mixdvae.utils.chunks`).

Chunk c tracks windows [c·S, (c+1)·S) with :func:`~mixdvae.tracking.track.track_windows`, seeded
with ``chunk_seed(seed, c)``, so the output depends on the seed and the chunk size only: one
process, P processes and a resumed run all write the same results.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import torch

from mixdvae.config import config_to_dict
from mixdvae.data.windows import WindowSet
from mixdvae.errors import DataFormatError
from mixdvae.tracking.presets import TrackingConfig
from mixdvae.tracking.results import TrackingResults
from mixdvae.tracking.track import track_windows
from mixdvae.utils.chunks import ChunkPlan, chunk_seed, path_digest, run_chunks

__all__ = ["window_slice", "track_windows_chunked", "tracking_job"]


def window_slice(windows: WindowSet, start: int, stop: int) -> WindowSet:
    """Windows [start, stop) of ``windows`` (the recipe is shared)."""
    arrays = {f.name: getattr(windows, f.name)[start:stop] for f in dataclasses.fields(windows) if f.name != "recipe"}
    return dataclasses.replace(windows, **arrays)


def tracking_job(windows_path: Path | None, method: str, config: TrackingConfig, weights: Path | None,
                 seed: int) -> dict:
    """The fingerprint of a tracking job: input and weights hashes, method, config, seed."""
    return {
        "command": "track",
        "input_sha256": path_digest(windows_path),
        "weights": path_digest(weights),
        "method": method, "seed": int(seed), "config": config_to_dict(config),
    }


def _pad_elbo(elbos: list[np.ndarray]) -> np.ndarray | None:
    """Concatenate (W_c, I_c) ELBO histories, each padded with its last value to the longest I."""
    width = max(e.shape[1] for e in elbos)
    if width == 0:
        return None
    return np.concatenate([np.pad(e, ((0, 0), (0, width - e.shape[1])), mode="edge") if e.shape[1]
                           else np.zeros((e.shape[0], width)) for e in elbos])


def track_windows_chunked(
    windows: WindowSet,
    out: str | Path,
    method: str = "mixdvae",
    config: TrackingConfig | None = None,
    weights: str | Path | None = None,
    device: str | torch.device = "cpu",
    seed: int = 0,
    chunk_size: int | None = None,
    resume: bool = False,
    progress: bool = False,
    job: dict | None = None,
) -> TrackingResults | None:
    """Track ``windows`` chunk by chunk, keeping finished chunks in ``OUT.partial``.

    Returns the results of all windows on rank 0 (None on other ranks); the caller writes ``out``
    and then calls :func:`mixdvae.utils.chunks.remove_partial`. ``chunk_size`` defaults to
    ``config.batch_size``. ``job`` is the fingerprint (default: from the arguments, no input hash).

    Shape: windows.det (W, T, K, 4) -> boxes (W, T, N, 4), eta (W, T, K, N), elbo (W, I)
    """
    from mixdvae.tracking.presets import DEFAULT

    config = config or DEFAULT
    if len(windows) == 0:
        raise DataFormatError("no windows to track")
    plan = ChunkPlan(len(windows), config.batch_size if chunk_size is None else chunk_size)
    job = dict(job or tracking_job(None, method, config, Path(weights) if weights else None, seed))
    job["chunk_seeds"] = "SeedSequence([seed, chunk])"

    def compute(index: int, start: int, stop: int) -> dict[str, np.ndarray]:
        res = track_windows(window_slice(windows, start, stop), method, config, weights, device,
                            chunk_seed(seed, index), progress=False)
        arrays = {"boxes": res.boxes, "eta": res.eta,
                  "elbo": res.elbo if res.elbo is not None else np.zeros((stop - start, 0))}
        return arrays

    chunks = run_chunks(out, plan, job, compute, resume=resume, progress=progress, desc=f"track ({method})")
    if chunks is None:
        return None
    cfg = {"method": method, "seed": seed, "weights": str(weights) if weights else None,
           "chunk_size": plan.chunk_size, **config_to_dict(config)}
    return TrackingResults(
        boxes=np.concatenate([c["boxes"] for c in chunks]),
        eta=np.concatenate([c["eta"] for c in chunks]),
        elbo=_pad_elbo([c["elbo"] for c in chunks]),
        method=method,
        config=json.loads(json.dumps(cfg)),
    )
