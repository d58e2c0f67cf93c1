"""save_figure: the format asked for, at the path given, and nothing left behind when the write fails."""

from __future__ import annotations

import pytest
from matplotlib.figure import Figure

from mixdvae.plotting.save import save_figure


def test_writes_the_format_asked_for(tmp_path):
    fig = Figure()
    fig.subplots().plot([0, 1], [1, 0])
    assert save_figure(fig, tmp_path / "a" / "f.png", dpi=50) == tmp_path / "a" / "f.png"
    assert (tmp_path / "a" / "f.png").read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    save_figure(fig, tmp_path / "f.pdf", dpi=50, fmt="pdf")
    assert (tmp_path / "f.pdf").read_bytes().startswith(b"%PDF")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "f.pdf"]


def test_a_failed_write_leaves_nothing(tmp_path, monkeypatch):
    fig = Figure()

    def fail(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(fig, "savefig", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        save_figure(fig, tmp_path / "f.png", dpi=50)
    assert list(tmp_path.iterdir()) == []
