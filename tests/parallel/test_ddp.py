"""Data-parallel pretraining on 2 gloo processes: the gradient of split batches is the full-batch
gradient, ranks stay in sync, only rank 0 writes, and a resumed P = 2 run ends where an
uninterrupted one does."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import pytest
import torch
from torch import nn

from mixdvae.dvae.distributed import DataParallelLoss, local_slice
from mixdvae.utils.distributed import process_group

from parallel._spawn import run_ranks


class _Terms(NamedTuple):
    loss: torch.Tensor
    recon: torch.Tensor
    kl: torch.Tensor


class _MeanSquares(nn.Module):
    """A deterministic stand-in for a DVAE: loss = mean over (b, t, d) of (W x - x)^2."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 3)

    def loss(self, x, kl_weight=1.0, ss_prob=0.0, generator=None, forecast_weight=0.0, x_in=None):
        err = ((self.lin(x if x_in is None else x_in) - x) ** 2).mean()
        return _Terms((1.0 + forecast_weight) * err, err, err * 0)  # the forecast term must reach every rank


def _model():
    torch.manual_seed(0)
    return _MeanSquares().double()


def _batch(n):
    return torch.randn(n, 5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(n))


def _leaky(n, leaky):
    """The networks' input under leakage training (a corrupted view of the batch), or None."""
    noise = torch.randn(n, 5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(100 + n))
    return _batch(n) + 0.5 * noise if leaky else None


def _gradients_on_ranks(rank, sizes):
    with process_group(torch.device("cpu")):
        out = []
        for n, weight, leaky in zip(sizes, FORECAST_WEIGHTS, LEAKY):
            model = _model()
            parallel = DataParallelLoss(model, torch.device("cpu"), forecast_weight=weight)
            backward, (value, _, _) = parallel(_batch(n), 1.0, 0.0, None, _leaky(n, leaky))
            backward.backward()
            out.append((value, [p.grad.clone() for p in model.parameters()]))
        return out


def test_local_slices_cover_the_batch_with_weights_that_average_to_one():
    xb = torch.arange(7.0)[:, None, None]
    parts = [local_slice(xb, r, 2) for r in range(2)]
    assert torch.equal(torch.cat([p for p, _ in parts]), xb)
    assert sum(w for _, w in parts) / 2 == pytest.approx(1.0)
    assert local_slice(xb[:1], 1, 2)[1] == 0.0  # an empty slice joins the all-reduce with weight 0


SIZES = (8, 7, 1, 7)  # even, odd (n_r = 4 and 3), and smaller than the world
FORECAST_WEIGHTS = (0.0, 0.5, 0.0, 0.0)  # TrainConfig.forecast_weight passed through DDP
LEAKY = (False, False, False, True)  # leakage training: each rank reads its slice of x_in
RUNS = (("straight", 3, 3), ("resumed", 2, 3))


def _data():
    from mixdvae.data.synthetic import generate_trajectories

    return (torch.from_numpy(generate_trajectories(30, 8, seed=1)).float(),
            torch.from_numpy(generate_trajectories(6, 8, seed=2)).float())


def _both_on_ranks(rank, root):
    with process_group(torch.device("cpu")):  # one group for both (the inner contexts reuse it)
        return _gradients_on_ranks(rank, SIZES), _train_on_ranks(rank, root, _data(), RUNS)


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    """One launch of 2 gloo processes (startup dominates): gradients, then training runs."""
    root = tmp_path_factory.mktemp("ddp")
    grads, trained = zip(*run_ranks(_both_on_ranks, 2, root))
    return grads, trained, root


def test_two_ranks_with_half_batches_give_the_full_batch_gradient(two_ranks):
    per_rank = two_ranks[0]
    for i, (n, weight, leaky) in enumerate(zip(SIZES, FORECAST_WEIGHTS, LEAKY)):
        model = _model()
        terms = model.loss(_batch(n), forecast_weight=weight, x_in=_leaky(n, leaky))
        terms.loss.backward()
        for rank in range(2):
            value, grads = per_rank[rank][i]
            assert value == pytest.approx(float(terms.loss.detach()), rel=1e-12)
            for g, p in zip(grads, model.parameters()):
                torch.testing.assert_close(g, p.grad, rtol=1e-10, atol=1e-12)


def _train_on_ranks(rank, root, data, epochs_then_resume):
    from mixdvae.dvae.config import DVAEConfig
    from mixdvae.dvae.factory import build_dvae
    from mixdvae.dvae.train import TrainConfig, train_dvae

    train_x, val_x = data
    arch = DVAEConfig(family="srnn", x_dim=4, z_dim=2, rnn_dim=4, dense_x=(4,), dense_g=(4,), g_dim=4,
                      dense_enc=(4,), dense_prior=(4,), dense_dec=(4,))
    out = {}
    with process_group(torch.device("cpu")):
        for name, first, total in epochs_then_resume:
            cfg = TrainConfig(batch_size=10, epochs=first, lr=1e-2, seed=5, kl_warmup_epochs=2)
            model = build_dvae(arch, "cpu", seed=5)
            train_dvae(model, train_x, val_x, cfg, root / name, progress=False)
            if total > first:
                model = build_dvae(arch, "cpu", seed=5)
                train_dvae(model, train_x, val_x, dataclasses.replace(cfg, epochs=total), root / name,
                           resume=True, progress=False)
            out[name] = {k: v.clone() for k, v in model.state_dict().items()}
    return out


def test_two_rank_training_stays_in_sync_and_resumes_exactly(two_ranks):
    _, ranks, tmp_path = two_ranks
    for name in ("straight", "resumed"):
        for key, value in ranks[0][name].items():  # DDP keeps the replicas identical
            assert torch.equal(value, ranks[1][name][key]), f"{name}: rank 1 differs in {key}"
    for key, value in ranks[0]["straight"].items():  # stopping after 2 epochs and resuming changes nothing
        assert torch.equal(value, ranks[0]["resumed"][key]), key
    files = sorted(p.name for p in (tmp_path / "straight").iterdir())
    assert files == ["best.json", "best.safetensors", "last.json", "last.safetensors", "last_state.json",
                     "last_state.safetensors", "log.jsonl", "loss.png"]
    assert len((tmp_path / "straight" / "log.jsonl").read_text().splitlines()) == 3  # one writer, one line per epoch
    assert not list(tmp_path.rglob(".*.tmp*"))


def test_a_process_group_of_one_trains_exactly_like_no_group(tmp_path, monkeypatch):
    from mixdvae.utils.distributed import rank_and_world
    from parallel._spawn import free_port

    env = {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(free_port())}
    for key, value in env.items():
        monkeypatch.setenv(key, value)  # torchrun --nproc-per-node 1
    grouped = _train_on_ranks(0, tmp_path / "a", _data(), (("p1", 2, 2),))
    assert rank_and_world() == (0, 1)  # the group is gone again
    for key in env:
        monkeypatch.delenv(key)
    plain = _train_on_ranks(0, tmp_path / "b", _data(), (("p1", 2, 2),))
    for key, value in plain["p1"].items():
        assert torch.equal(value, grouped["p1"][key]), key
