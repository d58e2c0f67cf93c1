"""``mixdvae`` error reporting: any MixDVAEError, and any error of the operating system (a path it refuses),
becomes exactly one non-empty line on stderr, exit 2."""

from __future__ import annotations

import errno
import os

import pytest

import mixdvae.cli.track as track_cli
from mixdvae.cli.main import main
from mixdvae.errors import ConfigError, DataFormatError


@pytest.mark.parametrize(
    "err,expected",
    [
        (DataFormatError("w.npz: line 3: bad\nsecond line"), "w.npz: line 3: bad"),
        (ConfigError("\n  the reason after a blank line\nmore"), "the reason after a blank line"),
        (ConfigError(""), "ConfigError"),
        (ConfigError("   "), "ConfigError"),
        # errors of the operating system: the path and the reason
        (FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), "out/plots"), f"out/plots: {os.strerror(errno.EEXIST)}"),
        (PermissionError(errno.EACCES, os.strerror(errno.EACCES), "r.npz.tmp", None, "r.npz"),
         f"r.npz.tmp -> r.npz: {os.strerror(errno.EACCES)}"),
        (OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), os.strerror(errno.ENOSPC)),
        (OSError("no errno\nsecond line"), "no errno"),
    ],
)
def test_errors_print_their_first_non_empty_line(monkeypatch, capsys, err, expected):
    def fail(args):
        raise err

    monkeypatch.setattr(track_cli, "run_track", fail)
    assert main(["track", "w.npz", "--out", "r.npz"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [f"mixdvae: error: {expected}"]

