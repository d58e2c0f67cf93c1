"""Power-spectrogram sequence files: round trip, detection, bad files named, seeded gains."""

from __future__ import annotations

import numpy as np
import pytest

from mixdvae.data.spectra import is_spectra_file, load_spectra, random_gains_db, save_spectra, spectra_shape
from mixdvae.errors import DataFormatError


def _power(S=4, T=6, F=513, seed=0):
    return np.random.default_rng(seed).exponential(size=(S, T, F)).astype(np.float32)


def test_round_trip_keeps_power_and_meta(tmp_path):
    power = _power()
    meta = {"sources": ["a/b"], "length": 6, "gain_db": [-10.0, 0.0], "seed": 1, "num": 4}
    path = save_spectra(tmp_path / "sub" / "s.npz", power.astype(np.float64), meta)
    assert path == tmp_path / "sub" / "s.npz" and is_spectra_file(path)
    loaded, loaded_meta = load_spectra(path)
    assert loaded.dtype == np.float32 and loaded.shape == (4, 6, 513)
    np.testing.assert_array_equal(loaded, power)
    assert loaded_meta == meta
    assert [p.name for p in path.parent.iterdir()] == ["s.npz"]  # atomic write, no leftovers


def test_a_file_without_meta_loads_with_empty_meta(tmp_path):
    path = tmp_path / "p.npz"
    np.savez(path, power=_power(S=1, T=2, F=3))
    power, meta = load_spectra(path)
    assert power.shape == (1, 2, 3) and meta == {}


def test_is_spectra_file_is_false_for_anything_else(tmp_path):
    (tmp_path / "t.txt").write_text("hello\n")
    np.savez(tmp_path / "other.npz", boxes=np.zeros((2, 3, 4)))
    np.save(tmp_path / "plain.npy", _power(S=1))
    for name in ("missing.npz", "t.txt", "other.npz", "plain.npy", "."):
        assert not is_spectra_file(tmp_path / name), name


@pytest.mark.parametrize(
    ("case", "message"),
    [
        ("missing", "spectra file not found"),
        ("text", "not a valid .npz file"),
        ("npy", "not a valid .npz file (a single .npy array, not an archive)"),
        ("no-power", "missing key 'power' (found: boxes)"),
        ("nan", "'power' holds NaN or inf values"),
        ("inf", "'power' holds NaN or inf values"),
        ("negative", "'power' holds negative values"),
        ("2d", "'power' has shape (6, 513), expected (S, T >= 2, F)"),
        ("4d", "'power' has shape (1, 1, 2, 513), expected (S, T >= 2, F)"),
        ("one-frame", "'power' has shape (3, 1, 513), expected (S, T >= 2, F)"),
        ("empty", "'power' holds no sequence"),
        ("bad-meta", "'meta' is not JSON"),
    ],
)
def test_bad_files_are_refused_naming_the_file(tmp_path, case, message):
    path = tmp_path / "bad.npz"
    power = _power(S=2)
    if case == "text":
        path.write_text("power\n1 2 3\n")
    elif case == "npy":
        with open(path, "wb") as fh:  # an .npy array under an .npz name
            np.save(fh, power)
    elif case == "no-power":
        np.savez(path, boxes=np.zeros((2, 3)))
    elif case != "missing":
        extra = {}
        if case == "nan":
            power[1, 2, 3] = np.nan
        elif case == "inf":
            power[0, 0, 0] = np.inf
        elif case == "negative":
            power[0, 1, 2] = -1e-3
        elif case == "2d":
            power = power[0]
        elif case == "4d":
            power = power[None, :1, :2]
        elif case == "one-frame":
            power = _power(S=3, T=1)
        elif case == "empty":
            power = np.zeros((0, 6, 513), np.float32)
        elif case == "bad-meta":
            extra["meta"] = np.array("{not json")
        np.savez(path, power=power, **extra)
    with pytest.raises(DataFormatError) as info:
        load_spectra(path)
    assert str(info.value).startswith(f"{path}: ") and message in str(info.value)
    if case in ("nan", "inf", "negative", "bad-meta"):  # values: only a full read can tell
        assert spectra_shape(path) == power.shape
    else:  # the header-only reader refuses the file with the same line
        with pytest.raises(DataFormatError) as info:
            spectra_shape(path)
        assert str(info.value).startswith(f"{path}: ") and message in str(info.value)
        assert "\n" not in str(info.value)


def test_spectra_shape_reads_the_header_alone(tmp_path):
    """spectra_shape gives load_spectra's shape for a compressed file, and answers from the header of an
    archive whose data is cut off after it (which load_spectra refuses)."""
    import io
    import zipfile

    path = save_spectra(tmp_path / "s.npz", _power(S=5, T=7, F=9), {})
    assert spectra_shape(path) == load_spectra(path)[0].shape == (5, 7, 9)
    whole = io.BytesIO()
    np.save(whole, _power(S=300, T=50, F=513))
    cut = tmp_path / "cut.npz"
    with zipfile.ZipFile(cut, "w") as archive:
        archive.writestr("power.npy", whole.getvalue()[:200])  # the 128-byte header and a little data
    assert spectra_shape(cut) == (300, 50, 513)
    with pytest.raises(DataFormatError, match="cannot read the arrays"):
        load_spectra(cut)


def test_random_gains_are_seeded_and_in_range():
    gains = random_gains_db(500, -20.0, -5.0, seed=3)
    assert gains.shape == (500,) and gains.dtype == np.float32
    assert gains.min() >= -20.0 and gains.max() <= -5.0 and gains.std() > 2.0
    np.testing.assert_array_equal(gains, random_gains_db(500, -20.0, -5.0, seed=3))
    assert not np.array_equal(gains, random_gains_db(500, -20.0, -5.0, seed=4))
    np.testing.assert_array_equal(random_gains_db(7, 0.0, 0.0, seed=1), np.zeros(7, np.float32))


def test_values_are_checked_in_every_block_of_sequences(tmp_path):
    """The value checks run per block of 1024 sequences: a bad value in the last block is still found."""
    for value, message in ((np.nan, "holds NaN or inf values"), (-1.0, "holds negative values")):
        power = _power(S=2100, T=2, F=3)
        power[2099, 1, 2] = value
        np.savez(tmp_path / "p.npz", power=power)
        with pytest.raises(DataFormatError, match=message):
            load_spectra(tmp_path / "p.npz")
