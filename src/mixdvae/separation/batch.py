"""Separate a mixtures file in resumable chunks, sharded over torchrun ranks (:mod:`mixdvae.utils.chunks`).

Chunk c separates mixtures [c·S, (c+1)·S) with :meth:`Separator.separate` seeded with
``chunk_seed(seed, c)``: one process, P processes and a resumed run write the same estimates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from mixdvae.config import config_to_dict
from mixdvae.data.mixtures import Mixtures
from mixdvae.errors import DataFormatError
from mixdvae.separation.separate import Separator
from mixdvae.utils.chunks import ChunkPlan, chunk_seed, path_digest, run_chunks

__all__ = ["ChunkedSeparation", "separate_mixtures_chunked", "separation_job", "DEFAULT_CHUNK_MIXTURES"]

DEFAULT_CHUNK_MIXTURES = 8
"""Mixtures per chunk when ``--chunk-size`` is not given."""


@dataclass(frozen=True)
class ChunkedSeparation:
    """Estimates of M mixtures. Shape: waveforms (M, N, L) float32; elbo (I, M·C) or None; masks
    (M, N, T, F) float16 (the assignment posteriors, stitched over chunks) or None when not kept;
    ``seconds``: the compute time summed over chunks (not the wall time of a sharded run)."""

    waveforms: np.ndarray
    elbo: np.ndarray | None
    seconds: float
    masks: np.ndarray | None = None


def separation_job(input_path: Path | None, separator: Separator, weights: Sequence[Path] | None,
                   nmf_bases: Path | None, seed: int) -> dict:
    """The fingerprint of a separation job: input and weights hashes, method, config, seed."""
    return {
        "command": "separate", "input_sha256": path_digest(input_path),
        "weights": [path_digest(w) for w in weights] if weights else None, "nmf_bases": path_digest(nmf_bases),
        "names": list(separator.names), "method": separator.method, "seed": int(seed),
        "config": config_to_dict(separator.config),
    }


def separate_mixtures_chunked(
    separator: Separator,
    mixtures: Mixtures,
    out: str | Path,
    seed: int = 0,
    chunk_size: int | None = None,
    resume: bool = False,
    progress: bool = False,
    job: dict | None = None,
    keep_masks: bool = False,
) -> ChunkedSeparation | None:
    """Separate every mixture, keeping finished chunks in ``OUT.partial``; all estimates on rank 0,
    None on the other ranks. The caller writes ``out`` and calls
    :func:`mixdvae.utils.chunks.remove_partial`. ``keep_masks``: also return the masks (a resumed run
    must have been started with the same setting).

    Shape: mixtures.mixture (M, L), mixtures.sources (M, N, L) -> waveforms (M, N, L), masks (M, N, T, F)
    """
    if len(mixtures) == 0:
        raise DataFormatError("no mixtures to separate")
    plan = ChunkPlan(len(mixtures), DEFAULT_CHUNK_MIXTURES if chunk_size is None else chunk_size)
    job = dict(job or separation_job(None, separator, None, None, seed))
    job["chunk_seeds"] = "SeedSequence([seed, chunk])"
    if keep_masks:
        job["keep_masks"] = True

    def compute(index: int, start: int, stop: int) -> dict[str, np.ndarray]:
        res = separator.separate(mixtures.mixture[start:stop], mixtures.sources[start:stop],
                                 seed=chunk_seed(seed, index))
        arrays = {"waveforms": res.waveforms, "seconds": np.asarray(res.seconds)}
        if res.elbo is not None:
            arrays["elbo"] = res.elbo
        if keep_masks:
            arrays["masks"] = res.masks.cpu().numpy().astype(np.float16)
        return arrays

    chunks = run_chunks(out, plan, job, compute, resume=resume, progress=progress, desc=separator.method)
    if chunks is None:
        return None
    elbo = None
    if all("elbo" in c for c in chunks):
        iters = min(c["elbo"].shape[0] for c in chunks)
        elbo = np.concatenate([c["elbo"][:iters] for c in chunks], axis=1)  # (I, sum of chunk columns)
    return ChunkedSeparation(
        waveforms=np.concatenate([c["waveforms"] for c in chunks]).astype(np.float32),
        elbo=elbo,
        seconds=float(sum(float(c["seconds"]) for c in chunks)),
        masks=np.concatenate([c["masks"] for c in chunks]) if keep_masks else None,
    )
