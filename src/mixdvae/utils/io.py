"""Atomic file writes: write to a temporary name in the same folder, then rename.

An interrupted run therefore never leaves a half-written file under the final name. Also the one
strict ``.npz`` reader the data files share (:func:`read_npz`), and its header-only twin
(:func:`read_npz_shapes`) and streaming reader (:func:`read_npz_into`).
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zipfile
import zlib
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from mixdvae.errors import ConfigError, DataFormatError

__all__ = ["atomic_path", "write_json", "save_npz", "write_text", "read_npz", "read_npz_shapes", "read_npz_into", "npz_keys",
           "check_output_file", "first_line"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` if the block succeeds.

    ``suffix`` keeps the extension for writers that look at it (``np.savez`` adds ``.npz``
    otherwise, matplotlib picks the format from it). On any exception the temporary file is removed
    and ``path`` is left untouched.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    suffix = final.suffix if suffix is None else suffix
    fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=f".tmp{suffix}", dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def check_output_file(path: str | os.PathLike, flag: str) -> None:
    """Refuse, before any work, an output file that could not be written at the end: ``path`` is a folder,
    or its nearest existing parent is a file or not writable. Folders still missing are made when it is
    written (:func:`atomic_path`).

    Raises:
        ConfigError: one line naming ``flag``, the path and what is wrong.
    """
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{flag} {path}: a folder, expected a file name")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise ConfigError(f"{flag} {path}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"{flag} {path}: cannot write in {parent} (permission denied)")


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as indented JSON, atomically. Non-finite floats are refused (``allow_nan=False``)."""
    return write_text(path, json.dumps(obj, indent=2, allow_nan=False, sort_keys=False) + "\n")


def save_npz(path: str | os.PathLike, **arrays: np.ndarray) -> Path:
    """``np.savez_compressed`` to ``path``, atomically."""
    with atomic_path(path, suffix=".npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)
    return Path(path)


_NPZ_ERRORS = (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile, zlib.error)


def first_line(err: BaseException) -> str:
    """The first line of an exception's message (its type name when the message is empty), for
    one-line error messages."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def read_npz(
    path: str | os.PathLike, keys: Sequence[str], optional: Sequence[str] = (), what: str = "file"
) -> dict[str, np.ndarray]:
    """The arrays ``keys`` (all required) and those of ``optional`` that exist, read eagerly from an
    .npz archive without pickles.

    Raises:
        DataFormatError: one line starting with the path: ``{what} not found``, ``not a valid .npz
            file (...)`` (also for a single .npy array), ``missing key 'k' (found: a, b)``, or
            ``cannot read the arrays (...)`` for an unreadable member.
    """
    path = Path(path)
    if not path.is_file():
        raise DataFormatError(f"{path}: {what} not found")
    try:
        data = np.load(path, allow_pickle=False)
    except _NPZ_ERRORS as err:
        raise DataFormatError(f"{path}: not a valid .npz file ({first_line(err)})") from err
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise DataFormatError(f"{path}: not a valid .npz file (a single .npy array, not an archive)")
    with data:
        found = list(data.files)
        missing = [k for k in keys if k not in found]
        if missing:
            raise DataFormatError(f"{path}: missing key '{missing[0]}' (found: {', '.join(found) or 'nothing'})")
        try:
            return {k: data[k] for k in (*keys, *[o for o in optional if o in found])}
        except _NPZ_ERRORS as err:
            raise DataFormatError(f"{path}: cannot read the arrays ({first_line(err)})") from err


_NPY_MAGIC = b"\x93NUMPY"
_BLOCK_BYTES = 1 << 24


@contextlib.contextmanager
def _npz_archive(path: Path, keys: Sequence[str], what: str) -> Iterator[zipfile.ZipFile]:
    """The .npz archive at ``path`` opened without reading any array, once it is known to hold ``keys``;
    :func:`read_npz`'s one-line errors otherwise (``{what} not found``, ``not a valid .npz file (...)``,
    ``missing key 'k' (found: a, b)``)."""
    if not path.is_file():
        raise DataFormatError(f"{path}: {what} not found")
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as err:
        if not _is_npy_file(path):  # read_npz words the error; np.load gives up on such a file's first bytes
            read_npz(path, keys, what=what)
            raise DataFormatError(f"{path}: not a valid .npz file ({first_line(err)})") from err
        raise DataFormatError(f"{path}: not a valid .npz file (a single .npy array, not an archive)") from err
    with archive:
        found = _array_names(archive)
        missing = [k for k in keys if k not in found]
        if missing:
            raise DataFormatError(f"{path}: missing key '{missing[0]}' (found: {', '.join(found) or 'nothing'})")
        yield archive


def _read_npy_header(member: Any) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran_order, dtype) from the .npy header at the start of an open archive member, which
    is left at the first byte of the data."""
    version = np.lib.format.read_magic(member)
    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran_order, dtype = read_header(member)
    return tuple(int(n) for n in shape), fortran_order, dtype


def read_npz_shapes(path: str | os.PathLike, keys: Sequence[str], what: str = "file") -> dict[str, tuple[int, ...]]:
    """The shapes of the arrays ``keys`` in an .npz archive, from each member's .npy header alone: the
    data is neither read nor decompressed, so a file of gigabytes answers in microseconds.

    Raises:
        DataFormatError: the one-line errors of :func:`read_npz`: ``{what} not found``, ``not a valid
            .npz file (...)``, ``missing key 'k' (found: a, b)``, ``cannot read the arrays (...)``.
    """
    path = Path(path)
    with _npz_archive(path, keys, what) as archive:
        try:
            shapes = {}
            for key in keys:
                with archive.open(key + ".npy") as member:
                    shapes[key] = _read_npy_header(member)[0]
            return shapes
        except _NPZ_ERRORS as err:
            raise DataFormatError(f"{path}: cannot read the arrays ({first_line(err)})") from err


def npz_keys(path: str | os.PathLike) -> list[str] | None:
    """The names of the arrays in the .npz archive at ``path`` (none is read), or None where ``path`` is
    not a readable .npz archive (the readers then give their own one-line errors)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return _array_names(archive)
    except (OSError, zipfile.BadZipFile):
        return None


def _array_names(archive: zipfile.ZipFile) -> list[str]:
    """The names of the arrays an open .npz archive holds (its ``NAME.npy`` members)."""
    return [name[:-len(".npy")] for name in archive.namelist() if name.endswith(".npy")]


def _is_npy_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` starts with the .npy magic string (a single array, not an .npz archive)."""
    try:
        with open(path, "rb") as fh:
            return fh.read(len(_NPY_MAGIC)) == _NPY_MAGIC
    except OSError:
        return False


def read_npz_into(path: str | os.PathLike, key: str, out: np.ndarray, what: str = "file") -> None:
    """Read the array ``key`` of an .npz archive straight into ``out`` (C-contiguous, of the array's
    shape; values cast to ``out``'s dtype), 16 MB at a time: no second copy of the array is ever held.

    Raises:
        DataFormatError: the one-line errors of :func:`read_npz`, and ``has shape (...), expected
            (...)`` when the array is not ``out``'s shape.
    """
    path = Path(path)
    flat = out.reshape(-1)
    if not np.shares_memory(flat, out):
        raise ValueError("read_npz_into: out must be C-contiguous")
    with _npz_archive(path, (key,), what) as archive:
        try:
            with archive.open(key + ".npy") as member:
                shape, fortran_order, dtype = _read_npy_header(member)
                if shape != out.shape:
                    raise DataFormatError(f"{path}: '{key}' has shape {shape}, expected {out.shape}")
                if fortran_order or dtype.hasobject:
                    raise ValueError("a Fortran-ordered or object array")
                step = max(1, _BLOCK_BYTES // dtype.itemsize)
                for start in range(0, flat.size, step):
                    count = min(step, flat.size - start)
                    data = member.read(count * dtype.itemsize)
                    if len(data) != count * dtype.itemsize:
                        raise EOFError(f"the array ends after {start + len(data) // dtype.itemsize} of {flat.size} values")
                    flat[start:start + count] = np.frombuffer(data, dtype=dtype)
        except _NPZ_ERRORS as err:
            raise DataFormatError(f"{path}: cannot read the arrays ({first_line(err)})") from err
