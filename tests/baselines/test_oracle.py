"""Oracle masks: they sum to one, the IBM keeps the dominant source, the oracle Wiener mask splits
disjoint sources exactly, ties and silence."""

from __future__ import annotations

import pytest
import torch

from mixdvae.baselines.nmf import apply_masks
from mixdvae.baselines.oracle import ideal_binary_mask, oracle_wiener_mask
from mixdvae.errors import DataFormatError


def random_sources(seed: int, shape=(2, 3, 10, 17)) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    re = torch.randn(shape, generator=g, dtype=torch.float64)
    im = torch.randn(shape, generator=g, dtype=torch.float64)
    return torch.complex(re, im)


def disjoint_sources(seed: int) -> torch.Tensor:
    """Two sources (B=2, N=2, T=6, F=8): source 0 only in the low 4 bins, source 1 only in the high ones."""
    s = random_sources(seed, (2, 2, 6, 8))
    s[:, 0, :, 4:] = 0
    s[:, 1, :, :4] = 0
    return s


def test_masks_sum_to_one_and_have_source_shape():
    s = random_sources(0)
    for mask in (ideal_binary_mask(s), oracle_wiener_mask(s)):
        assert mask.shape == s.shape and mask.dtype == torch.float64
        torch.testing.assert_close(mask.sum(dim=1), torch.ones(2, 10, 17, dtype=torch.float64))
        assert bool((mask >= 0).all())


def test_ideal_binary_mask_selects_the_loudest_source():
    s = random_sources(1)
    ibm = ideal_binary_mask(s)
    assert set(ibm.unique().tolist()) <= {0.0, 1.0}
    winner = s.abs().argmax(dim=1)  # (B, T, F); random data: no ties
    torch.testing.assert_close(ibm.argmax(dim=1), winner)
    # applied to the mixture, each estimate is the mixture where its source dominates, 0 elsewhere
    mix = s.sum(dim=1)
    estimates = apply_masks(mix, ibm)
    dominant = ibm.bool()
    torch.testing.assert_close(estimates[dominant], mix.unsqueeze(1).expand_as(s)[dominant])
    assert float(estimates[~dominant].abs().max()) == 0.0
    # where the other sources are silent the estimate is the source itself
    sparse = random_sources(2, (1, 3, 8, 9))
    g = torch.Generator().manual_seed(3)
    owner = torch.randint(0, 3, (1, 8, 9), generator=g)
    sparse = sparse * torch.nn.functional.one_hot(owner, 3).movedim(-1, 1)
    torch.testing.assert_close(apply_masks(sparse.sum(dim=1), ideal_binary_mask(sparse)), sparse)


def test_ideal_binary_mask_ties_go_to_the_lowest_index():
    s = torch.zeros(1, 3, 1, 3, dtype=torch.complex64)
    s[0, :, 0, 0] = torch.tensor([1.0, 1j, -1.0])  # equal powers
    s[0, :, 0, 1] = torch.tensor([0.5, 2.0, 2.0])  # tie between 1 and 2
    # bin 2: all silent
    ibm = ideal_binary_mask(s)
    assert ibm.dtype == torch.float32
    assert ibm[0, :, 0, 0].tolist() == [1.0, 0.0, 0.0]
    assert ibm[0, :, 0, 1].tolist() == [0.0, 1.0, 0.0]
    assert ibm[0, :, 0, 2].tolist() == [1.0, 0.0, 0.0]


def test_oracle_wiener_mask_formula_and_exact_recovery_of_disjoint_sources():
    s = random_sources(4)
    power = s.abs().square()
    torch.testing.assert_close(oracle_wiener_mask(s), power / power.sum(dim=1, keepdim=True))
    disjoint = disjoint_sources(5)
    estimates = apply_masks(disjoint.sum(dim=1), oracle_wiener_mask(disjoint))
    assert torch.equal(estimates, disjoint)
    silent = torch.zeros(1, 4, 2, 3, dtype=torch.complex128)
    torch.testing.assert_close(oracle_wiener_mask(silent), torch.full((1, 4, 2, 3), 0.25, dtype=torch.float64))


def test_bad_source_stfts_raise_data_format_errors():
    nan = random_sources(6)
    nan[0, 0, 0, 0] = complex(float("nan"), 0.0)
    integer = torch.ones(1, 2, 3, 4, dtype=torch.int64)
    for bad, words in ((random_sources(6)[0], "(B, N, T, F)"), (nan, "NaN"), (integer, "dtype")):
        for oracle in (ideal_binary_mask, oracle_wiener_mask):
            with pytest.raises(DataFormatError) as info:
                oracle(bad)
            assert words in str(info.value) and "\n" not in str(info.value)
