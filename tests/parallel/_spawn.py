"""Run a function on P gloo processes on loopback (what torchrun does, minus the agent).

Each rank gets the torchrun environment (RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT),
so code under test that calls :func:`mixdvae.utils.distributed.process_group` initialises the
group itself; ``fn(rank, *args)`` returns a picklable value, collected per rank.
"""

from __future__ import annotations

import os
import pickle
import socket
import tempfile
from pathlib import Path

import torch
import torch.multiprocessing as mp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _entry(rank: int, world: int, port: int, out_dir: str, fn, args) -> None:
    os.environ.update({"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank),
                       "LOCAL_WORLD_SIZE": str(world), "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port)})
    torch.set_num_threads(1)
    try:
        result = fn(rank, *args)
    except BaseException:
        import sys
        import traceback

        traceback.print_exc(file=sys.stderr)  # the other ranks only see "connection closed"
        raise
    with open(Path(out_dir) / f"rank{rank}.pkl", "wb") as fh:
        pickle.dump(result, fh)


def run_ranks(fn, world: int, *args) -> list:
    """``[fn(0, *args), ..., fn(world - 1, *args)]``, each run in its own process."""
    with tempfile.TemporaryDirectory() as tmp:
        mp.spawn(_entry, args=(world, free_port(), tmp, fn, args), nprocs=world, join=True)
        results = []
        for rank in range(world):
            with open(Path(tmp) / f"rank{rank}.pkl", "rb") as fh:
                results.append(pickle.load(fh))
        return results
