"""``torchrun --nproc-per-node 2 -m mixdvae track|separate``: 2 gloo processes on loopback share the
chunks and rank 0 writes the same file as one process (same per-chunk seeds)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np

from mixdvae.cli.main import main
from mixdvae.utils.chunks import partial_dir

from parallel._batch import CPU, arrays, mixtures_file, separate_args, windows_file
from parallel._spawn import free_port


def _torchrun(args: list[str], nproc: int = 2) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(nproc),
           "--master-addr", "127.0.0.1", "--master-port", str(free_port()), "-m", "mixdvae", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)


def _assert_same(a, b):
    assert a.keys() == b.keys()
    for key in a:
        if a[key].dtype.kind == "f":
            np.testing.assert_allclose(a[key], b[key], rtol=1e-6, atol=1e-8, err_msg=key)
        else:
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)


def test_two_ranks_track_and_separate_like_one_process(tmp_path, capsys):
    windows = windows_file(tmp_path / "w.npz", count=10)
    mixtures = mixtures_file(tmp_path / "m.npz", count=5)
    track = ["track", str(windows), "--chunk-size", "3", *CPU]
    assert main([*track, "--out", str(tmp_path / "one.npz")]) == 0, capsys.readouterr().err
    sep_one = separate_args(tmp_path, mixtures, tmp_path / "sep_one.npz") + ["--chunk-size", "2"]
    assert main(sep_one) == 0, capsys.readouterr().err

    # one torchrun launch per command: 2 processes, 4 (resp. 3) chunks dealt round robin
    run = _torchrun([*track, "--out", str(tmp_path / "two.npz")])
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.count("wrote ") == 1  # only rank 0 reports and writes
    _assert_same(arrays(tmp_path / "one.npz"), arrays(tmp_path / "two.npz"))
    assert not partial_dir(tmp_path / "two.npz").exists()

    run = _torchrun(separate_args(tmp_path, mixtures, tmp_path / "sep_two.npz") + ["--chunk-size", "2"])
    assert run.returncode == 0, run.stderr[-2000:]
    _assert_same(arrays(tmp_path / "sep_one.npz"), arrays(tmp_path / "sep_two.npz"))
