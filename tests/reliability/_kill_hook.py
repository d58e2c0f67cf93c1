"""Run ``mixdvae ARGS`` with every file write watched, and optionally ``kill -9`` it mid-write.

Usage: ``python _kill_hook.py REPORT [PATTERN N] -- ARGS...``

Every file opened for writing (``open``/``io.open`` in a write mode, ``safetensors.torch.save_file``,
``soundfile.write``) is appended to REPORT, one path a line. With PATTERN (an fnmatch pattern on the
file name; the temporary name of an atomic write, ``.NAME.XXXX.tmp.ext``, contains the final name, so
``*log.jsonl*`` matches both) and N, the N-th matching write writes half of its bytes, flushes, appends
``KILLED <path>`` to REPORT and sends itself SIGKILL: a crash in the middle of writing that file.
The hooks are installed before mixdvae is imported, so module-level ``from x import save_file``
bindings see them.
"""

from __future__ import annotations

import builtins
import fnmatch
import io
import os
import signal
import sys

REPORT = sys.argv[1]
_sep = sys.argv.index("--")
PATTERN, NTH = (sys.argv[2], int(sys.argv[3])) if _sep == 4 else (None, 0)
ARGS = sys.argv[_sep + 1:]
_seen = 0
_real_open = builtins.open


def _log(line: str) -> None:
    with _real_open(REPORT, "a", encoding="utf-8") as fh:
        fh.write(line + "\n")


def _is_target(path: str) -> bool:
    """Record ``path``; True when this write is the one to die in."""
    global _seen
    _log(os.path.abspath(path))
    if PATTERN is None or not fnmatch.fnmatch(os.path.basename(path), PATTERN):
        return False
    _seen += 1
    return _seen == NTH


def _die(path: str, data: bytes) -> None:
    """Write the first half of ``data`` to ``path`` and be killed (for writers outside Python)."""
    with _real_open(path, "wb") as fh:
        fh.write(data[: max(1, len(data) // 2)])
        fh.flush()
        os.fsync(fh.fileno())
    _log(f"KILLED {os.path.abspath(path)}")
    os.kill(os.getpid(), signal.SIGKILL)


class _HalfFile:
    """A file whose first write stores half its data (after what the mode keeps: ``a`` appends),
    then the process dies."""

    def __init__(self, fh, path: str):
        self._fh, self._path = fh, path

    def write(self, data):
        self._fh.write(data[: max(1, len(data) // 2)])
        self._fh.flush()
        os.fsync(self._fh.fileno())
        _log(f"KILLED {os.path.abspath(self._path)}")
        os.kill(os.getpid(), signal.SIGKILL)

    def __getattr__(self, name):
        return getattr(self._fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._fh.close()


def _open(file, mode="r", *args, **kwargs):
    fh = _real_open(file, mode, *args, **kwargs)
    if isinstance(file, (str, os.PathLike)) and any(c in mode for c in "wax+") and _is_target(os.fspath(file)):
        return _HalfFile(fh, os.fspath(file))
    return fh


builtins.open = _open
io.open = _open

import safetensors.torch  # noqa: E402
import soundfile  # noqa: E402

_real_save_file, _real_sf_write = safetensors.torch.save_file, soundfile.write


def _save_file(tensors, filename, metadata=None):
    if _is_target(os.fspath(filename)):
        _die(os.fspath(filename), safetensors.torch.save(tensors, metadata=metadata))
    return _real_save_file(tensors, filename, metadata=metadata)


def _sf_write(file, data, samplerate, *args, **kwargs):
    if isinstance(file, (str, os.PathLike)) and _is_target(os.fspath(file)):
        buffer = io.BytesIO()
        kwargs.setdefault("format", "WAV")
        _real_sf_write(buffer, data, samplerate, *args, **kwargs)
        _die(os.fspath(file), buffer.getvalue())
    return _real_sf_write(file, data, samplerate, *args, **kwargs)


safetensors.torch.save_file = _save_file
soundfile.write = _sf_write

from mixdvae.cli.main import main  # noqa: E402

sys.exit(main(ARGS))
