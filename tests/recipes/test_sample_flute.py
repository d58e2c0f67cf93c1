"""recipes/sample_flute.py on synthetic recorded notes: pitch names, resampled pitch, and held-out notes kept out."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

_PATH = Path(__file__).resolve().parents[2] / "recipes" / "sample_flute.py"
sys.path.insert(0, str(_PATH.parent))
_spec = importlib.util.spec_from_file_location("sample_flute", _PATH)
sample_flute = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(sample_flute)

RATE = 44_100


def _hz(pitch: float) -> float:
    return 440.0 * 2.0 ** ((pitch - 69) / 12)


def _peak_hz(y: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return float(np.fft.rfftfreq(len(y), 1 / rate)[np.argmax(spectrum)])


@pytest.mark.parametrize("name, pitch", [("C4", 60), ("E4", 64), ("A4", 69), ("A5", 81), ("C7", 96)])
def test_midi_pitch_reads_scientific_pitch_notation(name, pitch):
    assert sample_flute.midi_pitch(name) == pitch


@pytest.mark.parametrize("shift", [-4.5, -1.0, 0.0, 2.0, 4.0])
def test_play_note_moves_the_pitch_by_the_shift_and_lasts_the_note_plus_its_release(shift):
    t = np.arange(8 * RATE) / RATE
    recording = np.sin(2 * np.pi * 440.0 * t)
    for seed in range(4):  # tongued and slurred notes alike
        y = sample_flute.play_note(np.random.default_rng(seed), recording, shift, 1.0, RATE)
        assert 1.05 * RATE <= len(y) <= 1.2 * RATE + 1
        assert _peak_hz(y, RATE) == pytest.approx(440.0 * 2 ** (shift / 12), abs=2.0)
        assert abs(y[-1]) < 1e-3 and np.abs(y).max() <= 1.0 + 1e-9  # the release ends at silence


def test_training_clips_never_play_the_held_out_notes(tmp_path):
    """Training notes are pure sines, the held-out one (E5) a square wave: its odd harmonics mark where it is
    played. Training clips carry no overtones; held-out clips carry them and stay within 3 semitones of E5."""
    t = np.arange(6 * RATE) / RATE
    folder = tmp_path / "notes"
    folder.mkdir()
    for name in ("C4", "A4", "C5", "E5", "A5", "C6", "A6", "C7"):
        f0 = _hz(sample_flute.midi_pitch(name))
        wave = np.sign(np.sin(2 * np.pi * f0 * t)) if name == "E5" else np.sin(2 * np.pi * f0 * t)
        sf.write(folder / f"{name}.wav", 0.5 * wave, RATE)
    out = tmp_path / "out"
    assert sample_flute.main(["--samples", str(folder), "--out", str(out), "--num", "4", "--num-valid", "3",
                              "--holdout", "E5", "--seed", "5"]) == 0

    def overtone_share(path: Path) -> float:
        """The share of power above the highest fundamental a training clip can play (C7, 2093 Hz)."""
        y, rate = sf.read(path)
        assert rate == 16_000 and np.isfinite(y).all() and np.abs(y).max() > 0.05
        spectrum = np.abs(np.fft.rfft(y)) ** 2
        return spectrum[np.fft.rfftfreq(len(y), 1 / rate) > 1.06 * _hz(96)].sum() / spectrum.sum()

    train = sorted((out / "train").glob("*.flac"))
    valid = sorted((out / "valid").glob("*.flac"))
    assert len(train) == 4 and len(valid) == 3
    assert max(overtone_share(p) for p in train) < 1e-3
    assert min(overtone_share(p) for p in valid) > 0.02
    for path in valid:
        y, rate = sf.read(path)
        assert _hz(76 - 3) * 0.97 <= _peak_hz(y, rate) <= _hz(76 + 3) * 1.03


def test_a_folder_without_notes_is_a_one_line_error(tmp_path, capsys):
    assert sample_flute.main(["--samples", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "fewer than two recorded notes" in capsys.readouterr().err
