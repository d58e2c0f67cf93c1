"""``mixdvae plot tracking``: files written and listed, one-line errors with exit code 2."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mixdvae.cli.main import main
from mixdvae.data.windows import WindowSet, save_windows
from mixdvae.tracking.results import TrackingResults, save_tracking_results

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
W, T, N = 3, 6, 2


def _windows(tmp_path: Path) -> Path:
    t = np.arange(T)[:, None]
    x1 = np.array([[50.0, 250.0]]) + 3.0 * t  # (T, N)
    gt = np.stack([x1, np.full((T, N), 40.0), x1 + 30, np.full((T, N), 120.0)], axis=-1)
    gt = np.stack([gt + 10.0 * w for w in range(W)])  # (W, T, N, 4)
    det = gt[:, :, ::-1].copy()
    det[0, 2, 0] = np.nan
    det_gt_index = np.tile([1, 0], (W, T, 1))
    det_gt_index[0, 2, 0] = -1
    ws = WindowSet(gt=gt, det=det, det_gt_index=det_gt_index, sequence=np.array(["TUD-Campus"] * W),
                   ids=np.tile([1, 2], (W, 1)), image_size=np.tile([640.0, 480.0], (W, 1)),
                   frames=np.array([[1, 6], [7, 12], [13, 18]]), recipe={"length": T, "sources": N})
    return save_windows(tmp_path / "w.npz", ws)


def _results(tmp_path: Path, windows: Path, frames: int = T, elbo: bool = True) -> Path:
    data = np.load(windows)
    eta = np.zeros((W, T, N, N))
    eta[..., 0, 1] = eta[..., 1, 0] = 1.0
    eta[0, 2, 0] = 0.0
    res = TrackingResults(boxes=data["gt"][:, :frames] + 1.0, eta=eta[:, :frames],
                          elbo=np.tile(np.arange(4.0), (W, 1)) if elbo else None, method="test", config={})
    return save_tracking_results(tmp_path / "r.npz", res)


def test_plot_tracking_writes_and_lists_files(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    windows = _windows(tmp_path)
    results = _results(tmp_path, windows)
    out = tmp_path / "plots"
    rc = main(["plot", "tracking", str(results), "--windows", str(windows), "--out", str(out), "--max-windows", "2"])
    assert rc == 0
    names = ["window_0000.png", "assignments_0000.png", "window_0001.png", "assignments_0001.png", "elbo.png"]
    assert capsys.readouterr().out.splitlines() == [str(out / n) for n in names]
    assert sorted(p.name for p in out.iterdir()) == sorted(names)
    for name in names:
        data = (out / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 5000


def test_windows_index_and_no_elbo(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    windows = _windows(tmp_path)
    results = _results(tmp_path, windows, elbo=False)
    out = tmp_path / "plots"
    rc = main(["plot", "tracking", str(results), "--windows", str(windows), "--out", str(out),
               "--windows-index", "2, 0", "--no-assignments"])
    assert rc == 0
    assert capsys.readouterr().out.splitlines() == [str(out / "window_0002.png"), str(out / "window_0000.png")]


def test_shape_mismatch_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    windows = _windows(tmp_path)
    results = _results(tmp_path, windows, frames=T - 1)
    out = tmp_path / "plots"
    rc = main(["plot", "tracking", str(results), "--windows", str(windows), "--out", str(out)])
    assert rc == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"mixdvae: error: {results}: 'boxes' has shape ({W}, {T - 1}, {N}, 4) but {windows} 'gt' has "
        f"({W}, {T}, {N}, 4) (W, T, N, 4)\n"
    )
    assert not out.exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--windows-index", "0,x"], "--windows-index: 'x' is not an integer (expected e.g. 0,3,5)"),
        (["--windows-index", "1,3"], "--windows-index: window 3 is out of range, {w} has 3 windows"),
        (["--max-windows", "-1"], "--max-windows = -1: must be >= 0"),
    ],
)
def test_bad_flags_are_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture, flags, message) -> None:
    windows = _windows(tmp_path)
    results = _results(tmp_path, windows)
    rc = main(["plot", "tracking", str(results), "--windows", str(windows), "--out", str(tmp_path / "p"), *flags])
    assert rc == 2
    assert capsys.readouterr().err == f"mixdvae: error: {message.format(w=windows)}\n"
    assert not (tmp_path / "p").exists()


def _estimates(tmp_path: Path, mix, elbo: np.ndarray | None = None, masks: np.ndarray | None = None) -> Path:
    est = mix.sources + 0.01 * np.random.default_rng(1).standard_normal(mix.sources.shape).astype(np.float32)
    est[1, 1] = np.nan  # a failed estimate is drawn, its SI-SDR "n/a"
    arrays = {"estimates": est, "source_names": np.array(mix.source_names), "method": np.array("noisy")}
    if elbo is not None:
        arrays["elbo"] = elbo
    if masks is not None:
        arrays["masks"] = masks
    path = tmp_path / "e.npz"
    np.savez(path, **arrays)
    return path


def test_plot_separation_writes_and_lists_files(tmp_path: Path, capsys: pytest.CaptureFixture, tone_mixtures) -> None:
    mpath, mix = tone_mixtures(tmp_path / "m.npz", length_frames=20, m=3)
    epath = _estimates(tmp_path, mix, elbo=np.cumsum(np.ones((5, 3), np.float32), axis=0))  # (I, chunks)
    out = tmp_path / "plots"
    assert main(["plot", "separation", str(epath), "--mixtures", str(mpath), "--out", str(out), "--max-mixtures", "2"]) == 0
    names = ["mixture_0000.png", "mixture_0001.png", "elbo.png"]
    assert capsys.readouterr().out.splitlines() == [str(out / n) for n in names]
    assert sorted(p.name for p in out.iterdir()) == sorted(names)
    assert all((out / n).read_bytes().startswith(PNG_SIGNATURE) for n in names)


def test_plot_separation_index_no_elbo_and_masks(tmp_path: Path, capsys: pytest.CaptureFixture, tone_mixtures) -> None:
    mpath, mix = tone_mixtures(tmp_path / "m.npz", length_frames=20, m=3)
    masks = np.random.default_rng(2).uniform(size=(3, 2, 20, 513)).astype(np.float16)  # as --save-masks keeps them
    epath = _estimates(tmp_path, mix, masks=masks)
    out = tmp_path / "plots"
    assert main(["plot", "separation", str(epath), "--mixtures", str(mpath), "--out", str(out), "--index", "2,1"]) == 0
    assert capsys.readouterr().out.splitlines() == [str(out / "mixture_0002.png"), str(out / "mixture_0001.png")]


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("names", "{e}: 'source_names' ['flute', 'speech'] differ from {m} 'source_names' ['speech', 'flute']"),
        ("index", "--index: mixture 3 is out of range, {m} has 3 mixtures"),
        ("index-text", "--index: 'x' is not an integer (expected e.g. 0,3,5)"),
        ("elbo", "{e}: 'elbo' has shape (5,), expected (iterations, chunks)"),
        ("masks", "{e}: 'masks' has shape (3, 1, 20, 513), expected (3, 2, T, F)"),
        ("missing", "{e}: estimates file not found"),
    ],
)
def test_plot_separation_bad_input_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture, tone_mixtures,
                                                       case: str, message: str) -> None:
    mpath, mix = tone_mixtures(tmp_path / "m.npz", length_frames=20, m=3)
    epath = _estimates(tmp_path, mix, elbo=np.zeros(5, np.float32) if case == "elbo" else None,
                       masks=np.zeros((3, 1, 20, 513), np.float16) if case == "masks" else None)
    args = ["plot", "separation", str(epath), "--mixtures", str(mpath), "--out", str(tmp_path / "plots")]
    if case == "names":
        data = dict(np.load(epath))
        np.savez(epath, **{**data, "source_names": np.array(["flute", "speech"])})
    elif case == "missing":
        epath.unlink()
    args += {"index": ["--index", "0,3"], "index-text": ["--index", "0,x"]}.get(case, [])
    assert main(args) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "mixdvae: error: " + message.format(e=epath, m=mpath) + "\n"
    assert not (tmp_path / "plots").exists()


def test_plot_separation_out_is_a_file_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                          tone_mixtures) -> None:
    mpath, mix = tone_mixtures(tmp_path / "m.npz", length_frames=20, m=2)
    epath = _estimates(tmp_path, mix)
    out = tmp_path / "plots"
    out.write_text("a file where the folder should be")
    assert main(["plot", "separation", str(epath), "--mixtures", str(mpath), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and err.startswith(f"mixdvae: error: {out}: ")
    assert out.read_text() == "a file where the folder should be"


def test_plot_separation_bench_writes_the_png(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    import json

    from plotting.test_bench import bench_result

    results = tmp_path / "bench.json"
    results.write_text(json.dumps(bench_result()))
    out = tmp_path / "figs" / "bench.png"
    assert main(["plot", "separation-bench", str(results), "--out", str(out)]) == 0
    assert capsys.readouterr().out.splitlines() == [str(out)]
    assert out.read_bytes().startswith(PNG_SIGNATURE)


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        (None, [], "{r}: results file not found"),
        ("{not json", [], "{r}: not a JSON file (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"),
        ('{"cells": {}}', [], "{r}: not the results of `mixdvae bench separation --json` (no 'cells')"),
        ("bench", ["--metric", "pesq"], "--metric pesq: {r} holds si_sdr"),
    ],
)
def test_plot_separation_bench_bad_input_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                           content: str | None, args: list[str], message: str) -> None:
    import json

    from plotting.test_bench import bench_result

    results = tmp_path / "bench.json"
    if content == "bench":
        results.write_text(json.dumps(bench_result()))
    elif content is not None:
        results.write_text(content)
    assert main(["plot", "separation-bench", str(results), "--out", str(tmp_path / "b.png"), *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == "mixdvae: error: " + message.format(r=results) + "\n"
    assert not (tmp_path / "b.png").exists()
