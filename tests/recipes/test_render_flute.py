"""recipes/render_flute.py without FluidSynth: the MIDI bytes it writes and the melodies' registers."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

_PATH = Path(__file__).resolve().parents[2] / "recipes" / "render_flute.py"
_spec = importlib.util.spec_from_file_location("render_flute", _PATH)
render_flute = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(render_flute)


@pytest.mark.parametrize("value, expected", [(0, "00"), (0x40, "40"), (0x7F, "7f"), (0x80, "8100"), (0x2000, "c000"),
                                             (0x3FFF, "ff7f"), (0x4000, "818000"), (0x0FFFFFFF, "ffffff7f")])
def test_variable_length_quantity_matches_the_midi_specification(value, expected):
    assert render_flute.variable_length_quantity(value).hex() == expected


def _read_track(data: bytes):
    """An independent reader of the format-0 files written: (tick, status, data1, data2) events."""
    assert data[:4] == b"MThd" and int.from_bytes(data[4:8], "big") == 6
    assert int.from_bytes(data[8:10], "big") == 0 and int.from_bytes(data[10:12], "big") == 1
    assert data[14:18] == b"MTrk" and int.from_bytes(data[18:22], "big") == len(data) - 22
    i, tick, events = 22, 0, []
    while i < len(data):
        delta = 0
        while True:
            byte = data[i]
            i += 1
            delta = (delta << 7) | (byte & 0x7F)
            if byte < 0x80:
                break
        tick += delta
        status = data[i]
        if status == 0xFF:
            assert data[i:i + 3] == b"\xff\x2f\x00" and i + 3 == len(data)  # end of track, last
            break
        size = 2 if status & 0xF0 == 0xC0 else 3
        events.append((tick, status, *data[i + 1:i + size]))
        i += size
    return events


def test_midi_file_holds_the_notes_at_960_ticks_per_second():
    notes = [(0.0, 0.5, 60, 80), (0.5, 1.25, 62, 90), (2.0, 4.5, 96, 100)]
    events = _read_track(render_flute.midi_file(73, notes))
    assert events[0] == (0, 0xC0, 73)
    ons = [(t, p, v) for t, s, p, v in events[1:] if s == 0x90]
    offs = [(t, p) for t, s, p, v in events[1:] if s == 0x80]
    assert ons == [(0, 60, 80), (480, 62, 90), (1920, 96, 100)]
    assert offs == [(480, 60), (1200, 62), (4320, 96)]
    # at a shared tick the note-off comes first, so a legato note is never cut by its predecessor
    at_480 = [s for t, s, *_ in events if t == 480]
    assert at_480 == [0x80, 0x90]


def test_melodies_cover_the_whole_range_and_hold_notes():
    """Over 300 seeds the flute's melodies reach its lowest and highest notes, stay inside its range,
    and some notes are held 1.5 s or more (the shared renders never hold one over 1.2 s)."""
    _, low, high, _ = render_flute.PROGRAMS[73]
    lows, highs, held = [], [], 0
    for seed in range(300):
        notes, info = render_flute.melody(np.random.default_rng(seed), low, high)
        pitches = [p for _, _, p, _ in notes]
        assert low <= min(pitches) and max(pitches) <= high
        assert info["pitch_min"] == min(pitches) and info["n_notes"] == len(notes)
        assert all(0 < off - on <= 4.0 and 30 <= v <= 120 for on, off, _, v in notes)
        lows.append(min(pitches))
        highs.append(max(pitches))
        held += any(off - on >= 1.5 for on, off, _, _ in notes)
    assert min(lows) <= low + 1 and max(highs) >= high - 1
    assert np.mean(np.array(lows) <= low + 2) > 0.05 and held > 30
