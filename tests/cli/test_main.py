"""``mixdvae`` error reporting: any MixDVAEError becomes exactly one non-empty line on stderr, exit 2."""

from __future__ import annotations

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
    ],
)
def test_errors_print_their_first_non_empty_line(monkeypatch, capsys, err, expected):
    def fail(args):
        raise err

    monkeypatch.setattr(track_cli, "run_track", fail)
    assert main(["track", "w.npz", "--out", "r.npz"]) == 2
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [f"mixdvae: error: {expected}"]
