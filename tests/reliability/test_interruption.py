"""A run killed midway (``kill -9``) leaves no file under a final name; the same command then
completes. Outputs are written to a temporary name and renamed (mixdvae.utils.io.atomic_path)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import soundfile as sf

from mixdvae.cli.main import main
from mixdvae.data.mixtures import Mixtures, save_mixtures
from separation._tiny import SR, low_high, tiny_priors


def _kill_after(args: list[str], seconds: float) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "mixdvae", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        time.sleep(seconds)
        assert proc.poll() is None, f"the run ended before it could be killed: {proc.stderr.read().decode()}"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL


def _mixtures(path, count=4, seconds=3.0):
    sources, mixture = low_high(seconds)
    length = (len(mixture) - 1) // 256 * 256
    src = np.repeat(sources[None, :, :length], count, axis=0)
    mix = Mixtures(src.sum(1), src, ["speech", "flute"], SR, length // 256 + 1,
                   np.zeros(count, np.float32), np.full((count, 2), "x"), np.zeros((count, 2), np.int64), 0)
    save_mixtures(path, mix)
    return path


def test_killed_batch_separation_leaves_no_estimates_file(tmp_path, capsys):
    a, b = tiny_priors(tmp_path)
    mixtures = _mixtures(tmp_path / "m.npz")
    out = tmp_path / "est.npz"
    common = ["separate", str(mixtures), "--out", str(out), "--weights", f"speech={a}", "--weights", f"flute={b}",
              "--device", "cpu", "--no-progress"]
    _kill_after([*common, "--iterations", "5000"], 3.0)
    assert not out.exists()
    assert main([*common, "--iterations", "2"]) == 0, capsys.readouterr().err
    with np.load(out) as est:
        assert est["estimates"].shape[:2] == (4, 2) and np.isfinite(est["estimates"]).all()


def test_killed_recording_separation_leaves_no_wav(tmp_path, capsys):
    a, b = tiny_priors(tmp_path)
    _, mixture = low_high(20.0)
    wav = tmp_path / "mix.wav"
    sf.write(wav, mixture, SR)
    out = tmp_path / "sep"
    common = ["separate", str(wav), "--out", str(out), "--weights", f"speech={a}", "--weights", f"flute={b}",
              "--device", "cpu", "--no-progress"]
    _kill_after([*common, "--iterations", "5000"], 3.0)
    assert not (out / "speech.wav").exists() and not (out / "flute.wav").exists()
    assert main([*common, "--iterations", "2"]) == 0, capsys.readouterr().err
    for name in ("speech", "flute"):
        info = sf.info(out / f"{name}.wav")
        assert info.samplerate == SR and info.frames == len(mixture)
