"""``mixdvae track|separate`` in chunks: the chunk size does not change a deterministic method's
results, OUT.partial is gone after success, and bad chunking flags exit 2 with one line."""

from __future__ import annotations

import numpy as np

from mixdvae.cli.main import main
from mixdvae.utils.chunks import partial_dir

from parallel._batch import CPU, arrays, windows_file


def test_kalman_results_do_not_depend_on_the_chunk_size(tmp_path, capsys):
    windows = windows_file(tmp_path / "w.npz", count=7)
    outs = []
    for size in ("1", "3", "7"):
        out = tmp_path / f"k{size}.npz"
        assert main(["track", str(windows), "--out", str(out), "--method", "kalman", "--chunk-size", size, *CPU]) == 0
        assert not partial_dir(out).exists()
        outs.append(arrays(out, drop=("config",)))
    for other in outs[1:]:
        for key in outs[0]:
            np.testing.assert_array_equal(outs[0][key], other[key], err_msg=key)
    assert "tracked 7 windows" in capsys.readouterr().out


def test_bad_chunk_size_and_refused_resume_exit_2(tmp_path, capsys):
    windows = windows_file(tmp_path / "w.npz", count=4)
    out = tmp_path / "r.npz"
    assert main(["track", str(windows), "--out", str(out), "--chunk-size", "0", *CPU]) == 2
    assert capsys.readouterr().err.strip() == "mixdvae: error: --chunk-size = 0: must be an integer >= 1"
    folder = partial_dir(out)
    folder.mkdir()
    (folder / "manifest.json").write_text('{"format": "mixdvae-chunks", "job": {"seed": 5}}')
    assert main(["track", str(windows), "--out", str(out), "--method", "kalman", "--resume", *CPU]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"mixdvae: error: cannot resume {folder}: it was started with other")
    assert main(["track", str(windows), "--out", str(out), "--method", "kalman", *CPU]) == 0  # without --resume: anew
    assert out.is_file() and not folder.exists()


def test_track_and_separate_in_chunks_on_the_accelerator(tmp_path, accelerator):
    """``--device`` on the accelerator, end to end through the chunked CLI: the files match the CPU's
    (tracking within 5 px, as z is drawn from the device's generator; separation within 0.3 dB)."""
    from mixdvae.demo import asset

    windows = windows_file(tmp_path / "w.npz", count=6, length=30)
    boxes = {}
    for device in ("cpu", accelerator):
        out = tmp_path / f"track_{device}.npz"
        assert main(["track", str(windows), "--out", str(out), "--chunk-size", "4", "--device", device,
                     "--no-progress"]) == 0
        boxes[device] = arrays(out)["boxes"]
    assert np.isfinite(boxes[accelerator]).all() and np.abs(boxes[accelerator] - boxes["cpu"]).mean() < 5.0
    from mixdvae.data.mixtures import load_mixtures
    from mixdvae.metrics.audio import si_sdr

    demo = load_mixtures(asset("speech_flute_demo.npz"))
    scores = {}
    for device in ("cpu", accelerator):
        est = tmp_path / f"sep_{device}.npz"
        assert main(["separate", str(asset("speech_flute_demo.npz")), "--out", str(est), "--chunk-size", "1",
                     "--device", device, "--no-progress"]) == 0
        scores[device] = np.asarray(si_sdr(arrays(est)["estimates"], demo.sources))  # (B, N) dB
    assert np.isfinite(scores[accelerator]).all() and np.abs(scores[accelerator] - scores["cpu"]).max() < 0.3, scores


def test_batch_size_flag_does_not_change_results_and_bad_values_exit_2(tmp_path, capsys):
    """``--batch-size`` (windows per VEM batch, e.g. thousands on a GPU) only regroups windows (each
    window stops on its own ELBO): VKF's boxes are the same whatever it is; 0 is refused with one line."""
    windows = windows_file(tmp_path / "w.npz", count=7)
    outs = []
    for size in ("2", "7"):
        out = tmp_path / f"v{size}.npz"
        assert main(["track", str(windows), "--out", str(out), "--method", "vkf", "--batch-size", size, *CPU]) == 0
        outs.append(arrays(out, drop=("config", "seconds")))
    np.testing.assert_allclose(outs[0]["boxes"], outs[1]["boxes"], rtol=1e-5)
    capsys.readouterr()
    assert main(["track", str(windows), "--out", str(tmp_path / "x.npz"), "--batch-size", "0", *CPU]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "batch_size = 0" in err[0] and "--batch-size" in err[0], err
    assert main(["separate", str(windows), "--out", str(tmp_path / "e.npz"), "--batch-size", "-1", *CPU]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "batch_size = -1" in err[0], err
