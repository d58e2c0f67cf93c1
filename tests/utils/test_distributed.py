"""Rank/world helpers without a process group behave as rank 0 of 1; device handling on meta/CPU."""

from __future__ import annotations

import pytest
import torch

from mixdvae.dvae.distributed import local_slice, rank_noise_seed
from mixdvae.errors import ConfigError
from mixdvae.utils.device import resolve_device
from mixdvae.utils.distributed import (
    agree_on_rank0,
    backend_for,
    barrier,
    broadcast_from_rank0,
    gather_to_rank0,
    launched_by_torchrun,
    process_group,
    rank_and_world,
    shard,
)


def test_without_a_group_everything_is_rank_0_of_1():
    assert rank_and_world() == (0, 1)
    assert gather_to_rank0({"a": 1}) == [{"a": 1}]
    assert broadcast_from_rank0(3) == 3
    barrier()
    assert shard("abcde", 0, 1) == list("abcde")
    with pytest.raises(ConfigError, match="no"):
        agree_on_rank0(lambda: (_ for _ in ()).throw(ConfigError("no")))


def test_torchrun_environment_is_recognised():
    env = {"RANK": "0", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29500"}
    assert launched_by_torchrun(env)
    assert not launched_by_torchrun({k: v for k, v in env.items() if k != "MASTER_PORT"})


@pytest.mark.parametrize("name", ["cpu", "meta"])
def test_process_group_without_torchrun_only_hands_the_device_back(name):
    device = resolve_device(name)
    with process_group(device, env={}) as got:
        assert got == device and rank_and_world() == (0, 1)
    assert backend_for(device) == "gloo" and backend_for(torch.device("cuda", 1)) == "nccl"


def test_bad_torchrun_environment_is_a_config_error():
    env = {"RANK": "x", "WORLD_SIZE": "2", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "1"}
    with pytest.raises(ConfigError, match="torchrun environment"):
        with process_group(torch.device("cpu"), env=env):
            pass


def test_batch_slices_keep_the_device_and_need_no_data():
    xb = torch.empty(9, 5, 4, device="meta")  # shapes only: no tensor leaves its device
    parts = [local_slice(xb, r, 4) for r in range(4)]
    assert all(p.device.type == "meta" for p, _ in parts)
    assert [p.shape[0] for p, _ in parts] == [3, 2, 2, 2]
    assert sum(w for _, w in parts) == pytest.approx(4.0)  # mean weight 1: DDP's average is the full mean


def test_noise_seeds_differ_by_rank_and_epoch():
    seeds = {rank_noise_seed(1, e, r) for e in range(5) for r in range(3)}
    assert len(seeds) == 15 and max(seeds) < 2**63
