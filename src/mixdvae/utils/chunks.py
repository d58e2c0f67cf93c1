"""Resumable, shardable batch jobs: items in chunks, each finished chunk on disk at once.

A job over ``num_items`` items (windows, mixtures) is cut into chunks of ``chunk_size``
consecutive items; chunk c covers items [c·chunk_size, min(num_items, (c+1)·chunk_size)). Its
results go to ``OUT.partial/`` beside the final file ``OUT``:

- ``manifest.json``: the job's fingerprint (input hash, method, settings, seed, chunking); a
  rerun with another fingerprint starts over (or, with ``resume=True``, is refused);
- ``chunk-000012.npz``: the arrays of chunk 12, written atomically (so present = complete);
- ``log-rank{r}.jsonl``: one line ``{"chunk", "rank", "seconds"}`` per chunk rank r computed
  (rewritten atomically after the chunk's file is in place; one file per rank, so ranks never
  write the same file), which is how the tests count work done twice (:func:`computed_chunks`).

Chunks are dealt to torchrun ranks round robin (:func:`mixdvae.utils.distributed.shard`); a rank
skips the chunks already on disk. Rank 0 then collects the chunks it cannot see (another node's
disk) with ``gather_object``, returns all of them in order, and the caller writes ``OUT``
atomically and calls :func:`remove_partial`. A kill at any point loses at most the chunks in
progress; a rerun with the same arguments computes only the missing ones.

Randomness must be a function of the chunk, never of the rank or of what ran before:
:func:`chunk_seed` gives chunk c its own seed from the job's seed.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import shutil
import sys
import time
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
from tqdm.auto import tqdm

from mixdvae.errors import ConfigError
from mixdvae.utils.distributed import agree_on_rank0, barrier, broadcast_from_rank0, gather_to_rank0, rank_and_world, shard
from mixdvae.utils.io import save_npz, write_json, write_text

__all__ = ["ChunkPlan", "chunk_seed", "partial_dir", "computed_chunks", "run_chunks", "remove_partial", "file_sha256", "path_digest", "MANIFEST_FORMAT"]

log = logging.getLogger(__name__)

MANIFEST_FORMAT = "mixdvae-chunks"


@dataclass(frozen=True)
class ChunkPlan:
    """``num_items`` items in chunks of ``chunk_size``: chunk c = [c·size, min(n, (c+1)·size))."""

    num_items: int
    chunk_size: int

    def __post_init__(self) -> None:
        if isinstance(self.chunk_size, bool) or not isinstance(self.chunk_size, int) or self.chunk_size < 1:
            raise ConfigError(f"--chunk-size = {self.chunk_size!r}: must be an integer >= 1")
        if self.num_items < 0:
            raise ConfigError(f"ChunkPlan.num_items = {self.num_items!r}: must be >= 0")

    @property
    def num_chunks(self) -> int:
        """C = ceil(num_items / chunk_size)."""
        return math.ceil(self.num_items / self.chunk_size)

    def bounds(self, index: int) -> tuple[int, int]:
        """(start, stop) of chunk ``index``."""
        start = index * self.chunk_size
        return start, min(self.num_items, start + self.chunk_size)


def chunk_seed(seed: int, index: int) -> int:
    """The seed of chunk ``index`` of a job seeded with ``seed``: SeedSequence([seed, index]),
    a 63-bit integer (valid for ``torch.Generator.manual_seed``). Independent of rank and world."""
    state = np.random.SeedSequence([int(seed) & (2**64 - 1), int(index), 0x63686E6B]).generate_state(1, np.uint64)
    return int(state[0]) >> 1


def partial_dir(out: str | Path) -> Path:
    """``OUT.partial`` beside ``OUT``: where the finished chunks of a job writing ``OUT`` live."""
    out = Path(out)
    return out.with_name(out.name + ".partial")


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes (the input part of a job's fingerprint)."""
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def path_digest(path: str | Path | None) -> str | None:
    """A job input in its fingerprint: the sha256 of a file, the name of a path that is not a file
    (the run then fails with a clear message), None for no path."""
    if path is None:
        return None
    return file_sha256(path) if Path(path).is_file() else str(path)


def _chunk_path(folder: Path, index: int) -> Path:
    return folder / f"chunk-{index:06d}.npz"


def _read_chunk(path: Path) -> dict[str, np.ndarray] | None:
    """The arrays of a finished chunk, or None when it is missing or unreadable (then recomputed)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as err:
        log.warning("%s: unreadable (%s); computing this chunk again", path, err)
        return None


def _prepare(folder: Path, manifest: dict[str, Any], resume: bool) -> None:
    """Rank 0: keep ``folder`` if its manifest matches, else start it over (refuse when resuming)."""
    path = folder / "manifest.json"
    if folder.is_dir():
        try:
            old = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            old = None
        if old == manifest:
            done = len(list(folder.glob("chunk-*.npz")))
            log.info("%s: resuming, %d of %d chunks already done", folder, done, manifest["num_chunks"])
            return
        if resume:
            old_job = old.get("job", {}) if isinstance(old, dict) else {}
            new_job = manifest["job"]
            changed = sorted(k for k in set(new_job) | set(old_job) if new_job.get(k) != old_job.get(k))
            raise ConfigError(f"cannot resume {folder}: it was started with other settings "
                              f"({', '.join(changed[:4]) or 'chunking'} differ); drop --resume to start over")
        log.warning("%s: left by a job with other settings; starting over", folder)
        shutil.rmtree(folder)
    elif resume:
        log.info("--resume: no %s, starting from the first chunk", folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_json(path, manifest)


def _compute_mine(folder: Path, plan: ChunkPlan, todo: list[int], compute, computed: dict, bar, rank: int,
                  world: int) -> None:
    """Compute the chunks ``todo``: each file written atomically, then its line appended to the log.
    With world > 1 the arrays are also kept in ``computed`` for rank 0 to gather."""
    with contextlib.closing(bar):
        for c in todo:
            t0 = time.perf_counter()
            start, stop = plan.bounds(c)
            arrays = {k: np.asarray(v) for k, v in compute(c, start, stop).items()}
            save_npz(_chunk_path(folder, c), **arrays)
            log_path = folder / f"log-rank{rank}.jsonl"
            before = log_path.read_text(encoding="utf-8") if log_path.is_file() else ""
            line = json.dumps({"chunk": c, "rank": rank, "world": world, "seconds": round(time.perf_counter() - t0, 6)})
            write_text(log_path, before + line + "\n")
            if world > 1:
                computed[c] = arrays
            bar.update(1)


def computed_chunks(out: str | Path) -> list[int]:
    """Every chunk index computed so far for ``OUT`` (from all ranks' logs; repeats mean work
    done twice), in log order per rank."""
    folder = partial_dir(out)
    chunks: list[int] = []
    for path in sorted(folder.glob("log-rank*.jsonl")):
        chunks += [json.loads(line)["chunk"] for line in path.read_text(encoding="utf-8").splitlines() if line]
    return chunks


def run_chunks(
    out: str | Path,
    plan: ChunkPlan,
    job: Mapping[str, Any],
    compute: Callable[[int, int, int], dict[str, np.ndarray]],
    resume: bool = False,
    progress: bool = False,
    desc: str = "chunks",
    group: Any = None,
) -> list[dict[str, np.ndarray]] | None:
    """Compute every chunk not yet in ``OUT.partial``; return all chunks in order on rank 0.

    ``compute(index, start, stop)`` returns the arrays of items [start, stop) (numpy, picklable);
    it must depend on the chunk alone (seed it with :func:`chunk_seed`). ``job`` is the JSON
    fingerprint: a rerun with an equal one skips the finished chunks. Other ranks return None.

    Raises:
        ConfigError: ``resume=True`` and ``OUT.partial`` was started with another ``job``.
    """
    folder = partial_dir(out)
    rank, world = rank_and_world(group)
    manifest = {"format": MANIFEST_FORMAT, "num_items": plan.num_items, "chunk_size": plan.chunk_size,
                "num_chunks": plan.num_chunks, "job": json.loads(json.dumps(dict(job)))}
    agree_on_rank0(lambda: _prepare(folder, manifest, resume), group)
    mine = shard(range(plan.num_chunks), rank, world)
    computed: dict[int, dict[str, np.ndarray]] = {}
    todo = [c for c in mine if not _chunk_path(folder, c).is_file()]
    bar = tqdm(total=len(mine), initial=len(mine) - len(todo), desc=desc, unit="chunk", file=sys.stderr,
               disable=not progress or rank != 0, leave=False)
    try:
        _compute_mine(folder, plan, todo, compute, computed, bar, rank, world)
    except BaseException:
        if world == 1 and not any(folder.glob("chunk-*.npz")):
            shutil.rmtree(folder, ignore_errors=True)  # nothing finished: leave no trace
        raise
    barrier(group)
    # rank 0 asks for the chunks it cannot read (another node's disk); on one node: none
    missing = broadcast_from_rank0(
        [c for c in range(plan.num_chunks) if not _chunk_path(folder, c).is_file()] if rank == 0 else None, group)
    sent = gather_to_rank0({c: computed[c] for c in missing if c in computed}, group)
    if rank != 0:
        return None
    for part in sent or []:
        for c, arrays in part.items():
            save_npz(_chunk_path(folder, c), **arrays)
    chunks = []
    for c in range(plan.num_chunks):
        arrays = _read_chunk(_chunk_path(folder, c))
        if arrays is None:  # unreadable: compute it here
            start, stop = plan.bounds(c)
            arrays = {k: np.asarray(v) for k, v in compute(c, start, stop).items()}
            save_npz(_chunk_path(folder, c), **arrays)
        chunks.append(arrays)
    return chunks


def remove_partial(out: str | Path) -> None:
    """Delete ``OUT.partial`` once ``OUT`` is written (a no-op when it is gone)."""
    shutil.rmtree(partial_dir(out), ignore_errors=True)
