"""Resumable chunked jobs: an interrupted job resumes without computing a chunk twice and ends
with the result of an uninterrupted one; other settings start over or are refused."""

from __future__ import annotations

import numpy as np
import pytest

from mixdvae.errors import ConfigError
from mixdvae.utils.chunks import ChunkPlan, chunk_seed, computed_chunks, partial_dir, remove_partial, run_chunks
from mixdvae.utils.distributed import shard


class _Killed(Exception):
    """Stands in for a kill in the middle of a chunk."""


def _job(calls, die_at=None):
    def compute(index, start, stop):
        if index == die_at:
            raise _Killed
        calls.append(index)
        rng = np.random.default_rng(chunk_seed(7, index))
        return {"x": np.arange(start, stop) + rng.standard_normal(stop - start)}
    return compute


def _logged(out):
    return computed_chunks(out)


def test_plan_covers_the_items_once():
    plan = ChunkPlan(10, 4)
    assert plan.num_chunks == 3
    assert [plan.bounds(c) for c in range(3)] == [(0, 4), (4, 8), (8, 10)]
    with pytest.raises(ConfigError, match="--chunk-size = 0"):
        ChunkPlan(10, 0)


def test_shards_partition_the_chunks_and_balance_them():
    for world in (1, 2, 3, 5):
        parts = [shard(range(11), r, world) for r in range(world)]
        assert sorted(sum(parts, [])) == list(range(11))
        assert max(map(len, parts)) - min(map(len, parts)) <= 1
    with pytest.raises(ConfigError):
        shard(range(3), 2, 2)


def test_chunk_seeds_differ_by_chunk_and_seed_and_fit_a_torch_generator():
    seeds = {chunk_seed(s, c) for s in range(3) for c in range(50)}
    assert len(seeds) == 150 and all(0 <= s < 2**63 for s in seeds)
    assert chunk_seed(1, 0) != chunk_seed(0, 1)  # not seed + index


def test_interrupted_job_resumes_without_recomputing_and_matches_an_uninterrupted_one(tmp_path):
    plan, job = ChunkPlan(23, 5), {"method": "x", "seed": 7}
    whole_calls: list[int] = []
    whole = run_chunks(tmp_path / "whole.npz", plan, job, _job(whole_calls))
    assert whole_calls == [0, 1, 2, 3, 4]

    out = tmp_path / "out.npz"
    first: list[int] = []
    with pytest.raises(_Killed):
        run_chunks(out, plan, job, _job(first, die_at=3))
    assert first == [0, 1, 2] and _logged(out) == [0, 1, 2]
    assert sorted(p.name for p in partial_dir(out).glob("chunk-*")) == [f"chunk-00000{c}.npz" for c in range(3)]
    second: list[int] = []
    resumed = run_chunks(out, plan, job, _job(second), resume=True)
    assert second == [3, 4]  # nothing computed twice
    assert _logged(out) == [0, 1, 2, 3, 4]
    for a, b in zip(whole, resumed):
        np.testing.assert_array_equal(a["x"], b["x"])
    remove_partial(out)
    assert not partial_dir(out).exists()


def test_other_settings_start_over_or_are_refused_with_resume(tmp_path):
    out, plan = tmp_path / "out.npz", ChunkPlan(6, 2)
    with pytest.raises(_Killed):
        run_chunks(out, plan, {"seed": 1}, _job([], die_at=2))
    with pytest.raises(ConfigError, match=r"cannot resume .*out.npz.partial: it was started with other settings \(seed"):
        run_chunks(out, plan, {"seed": 2}, _job([]), resume=True)
    calls: list[int] = []
    run_chunks(out, plan, {"seed": 2}, _job(calls))  # a plain rerun with other settings starts over
    assert calls == [0, 1, 2]
    with pytest.raises(ConfigError):  # another chunk size is another job too
        run_chunks(out, ChunkPlan(6, 3), {"seed": 2}, _job([]), resume=True)


def test_a_job_failing_before_any_chunk_leaves_no_partial_folder(tmp_path):
    out = tmp_path / "out.npz"
    with pytest.raises(_Killed):
        run_chunks(out, ChunkPlan(4, 2), {}, _job([], die_at=0))
    assert not partial_dir(out).exists()


def test_an_unreadable_chunk_is_computed_again(tmp_path):
    out, plan = tmp_path / "out.npz", ChunkPlan(4, 2)
    with pytest.raises(_Killed):
        run_chunks(out, plan, {}, _job([], die_at=1))
    (partial_dir(out) / "chunk-000000.npz").write_bytes(b"not a zip")
    calls: list[int] = []
    chunks = run_chunks(out, plan, {}, _job(calls))
    assert sorted(calls) == [0, 1] and len(chunks) == 2
