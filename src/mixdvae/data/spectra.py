"""Power-spectrogram sequence files: the pretraining data of the audio priors.

Format (``.npz``, written atomically): ``power`` (S, T, F) float32, |STFT|^2 of single-source
segments of T frames (F = 513 bins: 1024-sample sine window, hop 256, 16 kHz), finite and
non-negative; ``meta``: a JSON object (sources, length, normalisation, gains, seed, counts).
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from mixdvae.errors import DataFormatError
from mixdvae.utils.io import read_npz, read_npz_into, read_npz_shapes, save_npz

__all__ = ["save_spectra", "load_spectra", "load_spectra_into", "spectra_shape", "is_spectra_file", "random_gains_db", "add_noise_floor"]

_READ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, TypeError)  # TypeError: a .npy file (no archive)


def save_spectra(path: str | os.PathLike, power: np.ndarray, meta: dict[str, Any]) -> Path:
    """Write ``power`` (S, T, F) and ``meta`` atomically."""
    return save_npz(path, power=np.ascontiguousarray(power, dtype=np.float32), meta=np.array(json.dumps(meta)))


def is_spectra_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` is an .npz archive holding a ``power`` array (False for anything else)."""
    try:
        with np.load(path, allow_pickle=False) as archive:
            return isinstance(archive, np.lib.npyio.NpzFile) and "power" in archive.files
    except (*_READ_ERRORS, AttributeError):
        return False


def load_spectra(path: str | os.PathLike) -> tuple[np.ndarray, dict[str, Any]]:
    """Read a file written by :func:`save_spectra`.

    Raises:
        DataFormatError: ``"{path}: ..."`` for a missing or unreadable file, a missing ``power``
            key, a wrong shape, no sequences, or negative / non-finite values.
    Shape: -> (S, T, F) float32
    """
    p = Path(path)
    arrays = read_npz(p, ("power",), optional=("meta",), what="spectra file")
    power = arrays["power"]
    _check_spectra_shape(p, power.shape)
    _check_spectra_values(p, power)
    return power.astype(np.float32, copy=False), _spectra_meta(p, arrays.get("meta"))


def load_spectra_into(path: str | os.PathLike, out: np.ndarray) -> dict[str, Any]:
    """Read a spectra file's ``power`` straight into ``out`` (float32, C-contiguous, of the file's shape
    :func:`spectra_shape`), a block at a time, with :func:`load_spectra`'s checks; return its meta.
    Memory: nothing beyond ``out`` (load_spectra holds the array it returns, then the caller copies it).

    Raises:
        DataFormatError: as :func:`load_spectra`, and for a file that no longer has ``out``'s shape.
    Shape: out (S, T, F) float32
    """
    p = Path(path)
    _check_spectra_shape(p, out.shape)  # and read_npz_into checks that the file's array has out's shape
    read_npz_into(p, "power", out, what="spectra file")
    _check_spectra_values(p, out)
    return _spectra_meta(p, read_npz(p, (), optional=("meta",), what="spectra file").get("meta"))


def _check_spectra_values(path: Path, power: np.ndarray) -> None:
    """Finite and non-negative, or a one-line DataFormatError. Checked per block of 1024 sequences: a
    mask of the whole array would add a quarter of its size in memory."""
    blocks = [power[i:i + 1024] for i in range(0, power.shape[0], 1024)]
    if not all(np.isfinite(block).all() for block in blocks):
        raise DataFormatError(f"{path}: 'power' holds NaN or inf values")
    if any((block < 0).any() for block in blocks):
        raise DataFormatError(f"{path}: 'power' holds negative values (a power spectrum is >= 0)")


def _spectra_meta(path: Path, meta_raw: np.ndarray | None) -> dict[str, Any]:
    """The JSON object of a spectra file's ``meta`` ({} without one)."""
    if meta_raw is None:
        return {}
    try:
        return json.loads(str(meta_raw))
    except json.JSONDecodeError as err:
        raise DataFormatError(f"{path}: 'meta' is not JSON ({err})") from err


def spectra_shape(path: str | os.PathLike) -> tuple[int, int, int]:
    """The shape (S, T, F) of a spectra file's ``power``, from the archive's header alone (the values
    are not read, so neither are they checked: :func:`load_spectra` does that).

    Raises:
        DataFormatError: as :func:`load_spectra` for a missing or unreadable file, a missing ``power``
            key, a wrong shape or no sequences.
    """
    p = Path(path)
    shape = read_npz_shapes(p, ("power",), what="spectra file")["power"]
    _check_spectra_shape(p, shape)
    return shape  # type: ignore[return-value]


def _check_spectra_shape(path: Path, shape: tuple[int, ...]) -> None:
    """(S >= 1, T >= 2, F >= 1), or a one-line DataFormatError."""
    if len(shape) != 3 or shape[1] < 2 or shape[2] < 1:
        raise DataFormatError(f"{path}: 'power' has shape {tuple(shape)}, expected (S, T >= 2, F)")
    if shape[0] == 0:
        raise DataFormatError(f"{path}: 'power' holds no sequence")


def random_gains_db(num: int, low_db: float, high_db: float, seed: int) -> np.ndarray:
    """Per-sequence gains g ~ U[low_db, high_db] dB (seeded), applied to powers as 10^(g / 10):
    a source inside a mixture is quieter than the mixture's peak by an unknown amount, so the
    prior should not learn one absolute level.  -> (num,) float32"""
    rng = np.random.default_rng(seed)
    return rng.uniform(low_db, high_db, size=num).astype(np.float32)


def add_noise_floor(power: np.ndarray, noise_db: float, seed: int) -> np.ndarray:
    """|S + E|^2 ~ |S|^2 + sigma^2 e with e ~ Exponential(1) (the power of circular complex white
    noise, cross terms dropped), sigma^2 = 10^(noise_db / 10) x the sequence's mean power.

    Shape: (S, T, F) -> (S, T, F)"""
    rng = np.random.default_rng(seed + 1)
    sigma2 = 10.0 ** (noise_db / 10.0) * power.mean(axis=(1, 2), keepdims=True)  # (S, 1, 1)
    return (power + sigma2 * rng.exponential(1.0, size=power.shape)).astype(np.float32)
