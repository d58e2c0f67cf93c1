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
