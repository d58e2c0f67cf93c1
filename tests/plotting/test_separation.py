"""Separation figure: a PNG with or without references, masks and the ELBO; shapes are checked."""

from __future__ import annotations

import numpy as np
import pytest

from mixdvae.data.audio import samples_to_frames
from mixdvae.errors import DataFormatError
from mixdvae.plotting.separation import log_spectrogram, plot_separation, plot_separation_results

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
SR = 16000
L = SR  # 1 s
T = samples_to_frames(L)
NAMES = ("speech", "flute")


def _signals():
    t = np.arange(L) / SR
    rng = np.random.default_rng(0)
    refs = np.stack([0.3 * np.sin(2 * np.pi * 200 * t), 0.3 * np.sin(2 * np.pi * 3000 * t)]).astype(np.float32)
    estimates = (refs + 0.01 * rng.standard_normal(refs.shape)).astype(np.float32)
    masks = rng.uniform(size=(2, T, 513)).astype(np.float32)
    masks[1] = 1 - masks[0]
    elbo = np.cumsum(rng.uniform(size=(5, 3)), axis=0)  # (I, C)
    return refs.sum(0), estimates, refs, masks, elbo


def test_log_spectrogram_is_frequency_by_time():
    mixture = _signals()[0]
    db = log_spectrogram(mixture)
    assert db.shape == (513, T) and np.isfinite(db).all()


@pytest.mark.parametrize("extras", [(), ("masks",), ("references", "masks", "elbo")])
def test_writes_a_png(tmp_path, extras):
    mixture, estimates, refs, masks, elbo = _signals()
    given = {"references": refs, "masks": masks, "elbo": elbo}
    path = tmp_path / "figs" / "sep.png"
    out = plot_separation(path, mixture, estimates, NAMES, title="test", **{k: given[k] for k in extras})
    assert out == path
    data = path.read_bytes()
    assert len(data) > 1000 and data.startswith(PNG_SIGNATURE)
    assert [p.name for p in path.parent.iterdir()] == ["sep.png"]  # written atomically, no leftovers


def test_a_silent_estimate_and_a_one_iteration_elbo(tmp_path):
    mixture, estimates, _, _, elbo = _signals()
    estimates[1] = 0.0
    out = plot_separation(tmp_path / "s.png", mixture, estimates, NAMES, elbo=elbo[:1])
    assert out.read_bytes().startswith(PNG_SIGNATURE)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("estimates-1d", r"estimates \(16000,\) for 2 sources"),
        ("estimates-3-sources", r"estimates \(3, 16000\) for 2 sources"),
        ("mixture-2d", r"mixture \(1, 16000\)"),
        ("references-1-source", r"references \(1, 16000\)"),
        ("masks-1-source", r"masks \(1, 63, 513\)"),
        ("masks-2d", r"masks \(63, 513\)"),
    ],
)
def test_mismatched_shapes_are_refused(tmp_path, change, message):
    mixture, estimates, refs, masks, _ = _signals()
    kwargs = {}
    if change == "estimates-1d":
        estimates = estimates[0]
    elif change == "estimates-3-sources":
        estimates = np.concatenate([estimates, estimates[:1]])
    elif change == "mixture-2d":
        mixture = mixture[None]
    elif change == "references-1-source":
        kwargs["references"] = refs[:1]
    elif change == "masks-1-source":
        kwargs["masks"] = masks[:1]
    elif change == "masks-2d":
        kwargs["masks"] = masks[0]
    with pytest.raises(DataFormatError, match=message):
        plot_separation(tmp_path / "s.png", mixture, estimates, NAMES, **kwargs)
    assert not (tmp_path / "s.png").exists()


def test_results_write_one_figure_per_chosen_mixture_and_the_elbo(tmp_path):
    mixture, estimates, refs, _, elbo = _signals()
    M = 3
    mixtures = np.stack([mixture * (m + 1) for m in range(M)])  # (M, L)
    est = np.stack([estimates * (m + 1) for m in range(M)])  # (M, N, L)
    ref = np.stack([refs * (m + 1) for m in range(M)])
    out = tmp_path / "plots"
    masks = np.stack([np.stack([m, 1 - m]) for m in np.random.default_rng(3).uniform(size=(M, T, 513))])  # (M, N, T, F)
    written = plot_separation_results(out, mixtures, est, ref, NAMES, [2, 0], titles=["two", "zero"], elbo=elbo,
                                      masks=masks.astype(np.float16))
    assert written == [out / "mixture_0002.png", out / "mixture_0000.png", out / "elbo.png"]
    assert all(p.read_bytes().startswith(PNG_SIGNATURE) for p in written)
    assert plot_separation_results(tmp_path / "p2", mixtures, est, ref, NAMES, [1]) == [tmp_path / "p2" / "mixture_0001.png"]


def test_results_shapes_and_titles_are_checked(tmp_path):
    mixture, estimates, refs, _, _ = _signals()
    with pytest.raises(DataFormatError, match=r"references \(1, 2, 15000\)"):
        plot_separation_results(tmp_path, mixture[None], estimates[None], refs[None, :, :15000], NAMES, [0])
    with pytest.raises(DataFormatError, match=r"masks \(1, 3, 32, 513\), expected \(1, 2, T, F\)"):
        plot_separation_results(tmp_path, mixture[None], estimates[None], refs[None], NAMES, [0],
                                masks=np.zeros((1, 3, 32, 513)))
    with pytest.raises(DataFormatError, match="2 titles for 1 mixtures"):
        plot_separation_results(tmp_path, mixture[None], estimates[None], refs[None], NAMES, [0], titles=["a", "b"])
    assert not list(tmp_path.iterdir())
