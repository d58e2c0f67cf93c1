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


def _sequence_set(root, count=3):
    """``count`` synthetic MOTChallenge sequence folders (seqinfo.ini, det/det.txt) under ``root``."""
    from mixdvae.data.mot import write_mot_results
    from mixdvae.tracking.synthetic_sequence import synthetic_sequence

    for s in range(count):
        _, det, info = synthetic_sequence(num_people=3, length=40, seed=s, clutter_per_frame=0.5)
        seq = root / f"SYN-{s:02d}"
        (seq / "det").mkdir(parents=True)
        (seq / "seqinfo.ini").write_text(
            f"[Sequence]\nname=SYN-{s:02d}\nimDir=img1\nframeRate={info.frame_rate:g}\nseqLength={info.seq_length}\n"
            f"imWidth={info.im_width}\nimHeight={info.im_height}\nimExt=.jpg\n")
        write_mot_results(seq / "det" / "det.txt", det.frame, det.id, det.boxes, det.conf)
    return root


def test_two_ranks_track_a_folder_of_sequences_like_one_process(tmp_path, capsys):
    seqs = _sequence_set(tmp_path / "train")
    args = ["track", str(seqs), "--method", "vkf", *CPU]
    assert main([*args, "--out", str(tmp_path / "one")]) == 0, capsys.readouterr().err
    res = _torchrun([*args, "--out", str(tmp_path / "two")])
    assert res.returncode == 0, res.stderr[-2000:]
    names = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "two").iterdir())
    assert names == [f"SYN-{s:02d}.txt{ext}" for s in range(3) for ext in ("", ".json")]
    for s in range(3):
        one = (tmp_path / "one" / f"SYN-{s:02d}.txt").read_text()
        assert one and one == (tmp_path / "two" / f"SYN-{s:02d}.txt").read_text()


def test_a_rerun_tracks_only_the_missing_sequences(tmp_path, capsys):
    seqs = _sequence_set(tmp_path / "train")
    out = tmp_path / "res"
    args = ["track", str(seqs), "--method", "kalman", "--out", str(out), *CPU]
    assert main(args) == 0
    first = (out / "SYN-01.txt").read_text()
    (out / "SYN-01.txt").unlink()  # as if the run had been killed before this sequence
    (out / "SYN-02.txt").write_text("kept\n")  # a finished result is not recomputed
    capsys.readouterr()
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "SYN-01" in printed and "SYN-00" not in printed and "SYN-02" not in printed
    assert (out / "SYN-01.txt").read_text() == first
    assert (out / "SYN-02.txt").read_text() == "kept\n"
