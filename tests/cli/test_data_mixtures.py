"""``mixdvae data mixtures`` end to end."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from mixdvae.cli.main import main
from mixdvae.data.mixtures import load_mixtures

SR = 16000


def make_audio_dirs(root: Path) -> tuple[Path, Path]:
    """speech/: two voiced test files; music/: one vibrato tone."""
    speech, music = root / "speech", root / "music"
    speech.mkdir()
    music.mkdir()
    t = np.arange(SR) / SR
    for i, f0 in enumerate((130.0, 190.0)):
        x = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 6)) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
        sf.write(speech / f"s{i}.flac", (0.2 * x).astype(np.float32), SR, subtype="PCM_16")
    tone = 0.05 * np.sin(2 * np.pi * 600 * t + 3 * np.sin(2 * np.pi * 5 * t))
    sf.write(music / "f.wav", tone.astype(np.float32), SR, subtype="PCM_16")
    return speech, music


def test_writes_the_file_and_one_summary_line(tmp_path, capsys):
    speech, music = make_audio_dirs(tmp_path)
    out = tmp_path / "out" / "m.npz"
    argv = ["data", "mixtures", "--speech", str(speech), "--music", str(music), "--ratio-db", "-5",
            "--ratio-db", "0", "--length", "20", "--num", "3", "--seed", "4", "--out", str(out), "--no-progress"]
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 0
    assert captured.out == f"wrote 6 mixtures (3 per ratio at -5, 0 dB) of 20 frames (4864 samples) to {out}\n"
    assert captured.err == ""
    mix = load_mixtures(out)
    assert mix.mixture.shape == (6, 4864) and mix.source_names == ["speech", "flute"] and mix.seed == 4
    np.testing.assert_array_equal(mix.ratio_db, [-5, -5, -5, 0, 0, 0])
    assert set(mix.files[:, 1]) == {"f.wav"}
    # Same seed, same file.
    out2 = tmp_path / "m2.npz"
    assert main([*argv[:-2], str(out2), "--names", "voice,flute", "--no-progress"]) == 0
    capsys.readouterr()
    again = load_mixtures(out2)
    np.testing.assert_array_equal(again.mixture, mix.mixture)
    assert again.source_names == ["voice", "flute"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"--speech": "missing"}, "missing: no such folder or manifest"),
        ({"--num": "0"}, "num = 0: must be an integer >= 1"),
        ({"--length": "400"}, "no audio file holds a segment of 102144 samples"),
        ({"--names": "a,b,c"}, "names = a,b,c: must be two distinct non-empty names"),
    ],
)
def test_errors_exit_2_with_one_line(tmp_path, capsys, change, message):
    speech, music = make_audio_dirs(tmp_path)
    opts = {"--speech": str(speech), "--music": str(music), "--ratio-db": "0", "--length": "20", "--num": "2",
            "--out": str(tmp_path / "m.npz")}
    opts.update({k: (str(tmp_path / v) if k == "--speech" else v) for k, v in change.items()})
    code = main(["data", "mixtures", *[x for kv in opts.items() for x in kv]])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert len(captured.err.splitlines()) == 1
    assert captured.err.startswith("mixdvae: error: ") and message in captured.err
    assert not (tmp_path / "m.npz").exists()
