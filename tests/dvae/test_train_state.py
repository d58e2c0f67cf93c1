"""The training-data fingerprint that guards resuming: the same digest as before, without a copy."""

from __future__ import annotations

import hashlib
import tracemalloc

import torch

from mixdvae.dvae.train_state import data_fingerprint


def _bytes_digest(x: torch.Tensor) -> str:
    """The digest the fingerprint has always used: sha256 of the float32 bytes in C order."""
    return hashlib.sha256(x.to(torch.float32).contiguous().numpy().tobytes()).hexdigest()


def test_fingerprint_is_the_sha256_of_the_float32_bytes():
    """Runs saved before the digest was fed in blocks still resume: the digests are unchanged, for a
    tensor spanning several blocks, a float64 one and a transposed (non-contiguous) one."""
    g = torch.Generator().manual_seed(0)
    train = torch.rand(3, 1 << 21, 1, generator=g)  # 6.3 M values: two blocks and a part
    val = torch.rand(5, 7, 4, generator=g, dtype=torch.float64)
    leakage = torch.rand(4, 9, 6, generator=g).transpose(0, 1)
    fp = data_fingerprint(train, val, leakage)
    assert fp["train_sha256"] == _bytes_digest(train)
    assert fp["val_sha256"] == _bytes_digest(val)
    assert fp["leakage_sha256"] == _bytes_digest(leakage)
    assert fp["train_shape"] == [3, 1 << 21, 1] and fp["leakage_shape"] == [9, 4, 6]
    changed = train.clone()
    changed[2, -1, 0] += 1.0
    assert data_fingerprint(changed, val)["train_sha256"] != fp["train_sha256"]


def test_fingerprint_does_not_copy_the_training_set():
    """Memory: a 64 MB training set is hashed with at most one 16 MB block in flight (a bytes copy of
    the whole set doubled a 10 GB flute training set's memory and got it killed)."""
    train = torch.ones(1 << 24)  # 64 MB
    tracemalloc.start()
    try:
        data_fingerprint(train, train[:10])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 24 * 2**20, peak
