"""torch.distributed helpers: which process am I, which items are mine, gather them on rank 0.

Everything here queries the default process group (``torch.distributed.is_initialized()``) or
takes one; nothing is cached in module state. Without a process group (a plain ``mixdvae ...``)
every helper behaves as rank 0 of a world of 1, so the same code path serves both.

Launch (single node, P processes)::

    torchrun --nproc-per-node P -m mixdvae track W.npz --out R.npz

``torchrun`` sets ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``;
:func:`process_group` reads them, initialises the group (``nccl`` on CUDA, ``gloo`` otherwise) and
gives each process its device (``cuda:LOCAL_RANK`` when ``--device cuda`` has no index).

The generic hook for any batch job is :func:`shard` (the items of one rank) and
:func:`gather_to_rank0` (one picklable object per rank, in rank order, on rank 0).
"""

from __future__ import annotations

import contextlib
import datetime
import os
from typing import Any, Iterator, Mapping, Sequence, TypeVar

import torch
import torch.distributed as dist

from mixdvae.errors import ConfigError, MixDVAEError
from mixdvae.utils.io import first_line

__all__ = [
    "launched_by_torchrun",
    "rank_and_world",
    "is_rank0",
    "shard",
    "gather_to_rank0",
    "broadcast_from_rank0",
    "barrier",
    "backend_for",
    "process_group",
    "agree_on_rank0",
]

T = TypeVar("T")

_ENV = ("RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")


def launched_by_torchrun(env: Mapping[str, str] | None = None) -> bool:
    """True when ``env`` (default: ``os.environ``) holds what torchrun sets: RANK, WORLD_SIZE,
    MASTER_ADDR and MASTER_PORT (``--nproc-per-node 1`` too: a world of 1 is still a group)."""
    env = os.environ if env is None else env
    return all(k in env for k in _ENV)


def rank_and_world(group: Any = None) -> tuple[int, int]:
    """(rank, world size) in ``group`` (default: the default group); (0, 1) without one."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(group), dist.get_world_size(group)
    return 0, 1


def is_rank0(group: Any = None) -> bool:
    """True on the process that writes outputs (rank 0, or the only process)."""
    return rank_and_world(group)[0] == 0


def shard(items: Sequence[T], rank: int, world: int) -> list[T]:
    """The items of ``rank`` among ``world`` processes: every world-th item from ``rank``
    (round robin, so equal-cost items balance to within one).

    >>> shard(list(range(7)), 1, 3)
    [1, 4]
    """
    if not (isinstance(world, int) and world >= 1 and isinstance(rank, int) and 0 <= rank < world):
        raise ConfigError(f"shard: rank {rank!r} is not in 0..world-1 for world {world!r}")
    return list(items[rank::world])


def gather_to_rank0(obj: Any, group: Any = None) -> list[Any] | None:
    """One picklable ``obj`` per rank, in rank order, on rank 0 (``None`` on the others).

    Without a process group: ``[obj]``. Uses ``torch.distributed.gather_object`` (gloo, or nccl
    with the current CUDA device set by :func:`process_group`).
    """
    rank, world = rank_and_world(group)
    if world == 1:
        return [obj]
    out: list[Any] | None = [None] * world if rank == 0 else None
    dist.gather_object(obj, out, dst=0, group=group)
    return out


def broadcast_from_rank0(obj: Any, group: Any = None) -> Any:
    """Rank 0's ``obj`` on every rank (``obj`` itself without a process group)."""
    rank, world = rank_and_world(group)
    if world == 1:
        return obj
    box = [obj if rank == 0 else None]
    dist.broadcast_object_list(box, src=0, group=group)
    return box[0]


def barrier(group: Any = None) -> None:
    """Wait for every rank (nothing without a process group)."""
    if rank_and_world(group)[1] > 1:
        dist.barrier(group)


def agree_on_rank0(fn, group: Any = None) -> Any:
    """Run ``fn()`` on rank 0 only and hand its result to every rank; a :class:`MixDVAEError` it
    raises is raised again on every rank (as a :class:`ConfigError` with the same first line), so no
    rank is left waiting in a collective when rank 0 refuses the job."""
    rank, world = rank_and_world(group)
    if world == 1:
        return fn()
    payload: tuple[str, Any]
    if rank == 0:
        try:
            payload = ("ok", fn())
        except MixDVAEError as err:
            payload = ("error", err)
    else:
        payload = ("ok", None)
    payload = broadcast_from_rank0(payload, group)
    if payload[0] == "error":
        err = payload[1]
        if rank == 0:
            raise err
        raise ConfigError(first_line(err))
    return payload[1]


def backend_for(device: torch.device) -> str:
    """``nccl`` for CUDA devices, ``gloo`` for everything else."""
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


@contextlib.contextmanager
def process_group(device: torch.device, env: Mapping[str, str] | None = None,
                  timeout_s: float = 1800.0) -> Iterator[torch.device]:
    """Initialise the default process group when launched by torchrun, yield this rank's device,
    destroy the group afterwards. Without torchrun (or when a group already exists) it only yields.

    ``device`` ``cuda`` (no index) becomes ``cuda:LOCAL_RANK`` and is made current; an explicit
    ``cuda:N`` is kept (one GPU per process is then the user's job).
    """
    env = os.environ if env is None else env
    device = torch.device(device)
    if not launched_by_torchrun(env) or (dist.is_available() and dist.is_initialized()):
        yield device
        return
    if not dist.is_available():  # pragma: no cover - every torch wheel we support has it
        raise ConfigError("torch.distributed is not available in this torch build; run without torchrun")
    try:
        rank, world = int(env["RANK"]), int(env["WORLD_SIZE"])
        local_rank = int(env.get("LOCAL_RANK", rank))
        port = int(env["MASTER_PORT"])
    except ValueError as err:
        raise ConfigError(f"torchrun environment: RANK/WORLD_SIZE/LOCAL_RANK/MASTER_PORT are not integers ({err})") from err
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank % max(1, torch.cuda.device_count()))
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend=backend_for(device), init_method=f"tcp://{env['MASTER_ADDR']}:{port}",
                            rank=rank, world_size=world, timeout=datetime.timedelta(seconds=timeout_s),
                            device_id=device if device.type == "cuda" else None)
    try:
        yield device
    finally:
        dist.destroy_process_group()
