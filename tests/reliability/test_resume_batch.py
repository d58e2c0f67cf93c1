"""Batch inference killed with ``kill -9`` resumes: the rerun computes exactly the chunks that were
not finished (none twice, counted in OUT.partial/log.jsonl) and writes the same results as an
uninterrupted run; the partial folder is removed at the end."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import mixdvae.utils.chunks as chunks
from mixdvae.cli.main import main
from mixdvae.utils.chunks import computed_chunks, partial_dir

from parallel._batch import CPU, arrays, mixtures_file, separate_args, windows_file


def _kill_after_chunks(args: list[str], out, chunks: int, limit_s: float = 60.0) -> set[int]:
    """Start ``mixdvae ARGS``, SIGKILL it once ``chunks`` chunk files exist; return the finished chunks."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "mixdvae", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    folder = partial_dir(out)
    try:
        deadline = time.monotonic() + limit_s
        while len(list(folder.glob("chunk-*.npz"))) < chunks:
            assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read().decode()}"
            assert time.monotonic() < deadline, "no chunk finished in time"
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert not out.exists()
    return {int(p.stem.split("-")[1]) for p in folder.glob("chunk-*.npz")}


def _log(out) -> list[int]:
    return computed_chunks(out)


@pytest.mark.parametrize("command", ["track", "separate"])
def test_killed_batch_job_resumes_without_repeating_a_chunk(tmp_path, capsys, command, monkeypatch):
    if command == "track":
        data = windows_file(tmp_path / "w.npz", count=16, length=20)
        args = lambda out: ["track", str(data), "--out", str(out), "--chunk-size", "1", *CPU]  # noqa: E731
        num_chunks = 16
    else:
        data = mixtures_file(tmp_path / "m.npz", count=8, seconds=0.5)
        args = lambda out: [*separate_args(tmp_path, data, out), "--chunk-size", "1", "--iterations", "20"]  # noqa: E731
        num_chunks = 8
    reference = tmp_path / "reference.npz"
    assert main(args(reference)) == 0, capsys.readouterr().err

    out = tmp_path / "out.npz"
    done = _kill_after_chunks(args(out), out, chunks=2)
    assert 2 <= len(done) < num_chunks
    first_run = _log(out)
    assert set(first_run) <= done  # a chunk is logged only after its file is in place

    # the same command again computes exactly the missing chunks: read the log just before it is removed
    logs: list[list[int]] = []
    original = chunks.remove_partial

    def spy(path):
        logs.append(_log(path))
        original(path)

    monkeypatch.setattr("mixdvae.utils.chunks.remove_partial", spy)
    monkeypatch.setattr("mixdvae.cli.track.remove_partial", spy)
    assert main(args(out)) == 0, capsys.readouterr().err
    (final_log,) = logs
    rerun = final_log[len(first_run):]
    assert not set(rerun) & done, "a finished chunk was computed again"
    assert sorted(rerun) == sorted(set(range(num_chunks)) - done)
    assert not partial_dir(out).exists()
    got, ref = arrays(out), arrays(reference)
    assert got.keys() == ref.keys()
    for key in got:
        np.testing.assert_array_equal(got[key], ref[key], err_msg=key)
