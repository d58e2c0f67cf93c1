"""Tracks of a whole sequence over time: box centre x and y against the frame, one colour per id.

Takes a :class:`~mixdvae.tracking.sequence_results.SequenceTracks` (never a model), builds a
matplotlib ``Figure`` without pyplot's global state and writes it atomically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from mixdvae.data.mot import SeqInfo
from mixdvae.plotting.save import save_figure
from mixdvae.plotting.tracking import source_colours
from mixdvae.tracking.sequence_results import SequenceTracks

__all__ = ["plot_sequence_tracks"]


def plot_sequence_tracks(tracks: SequenceTracks, info: SeqInfo, out: str | Path) -> Path:
    """Two panels, centre x and centre y (pixels, y down) of every reported box against its frame.

    Shape: tracks.boxes (M, 4) pixel xyxy.
    """
    fig = Figure(figsize=(10, 6), constrained_layout=True)
    ax_x, ax_y = fig.subplots(2, 1, sharex=True)
    ids = np.unique(tracks.ids)
    colours = source_colours(max(len(ids), 1))
    centre = (tracks.boxes[:, :2] + tracks.boxes[:, 2:]) / 2.0
    for i, track_id in enumerate(ids):
        sel = tracks.ids == track_id
        order = np.argsort(tracks.frames[sel])
        f = tracks.frames[sel][order]
        for ax, c in ((ax_x, centre[sel, 0][order]), (ax_y, centre[sel, 1][order])):
            ax.plot(f, c, ".-", ms=2, lw=0.8, color=colours[i])
    ax_x.set_ylabel("box centre x (px)")
    ax_x.set_ylim(0, info.im_width)
    ax_y.set_ylabel("box centre y (px)")
    ax_y.set_ylim(info.im_height, 0)
    ax_y.set_xlabel("frame")
    ax_y.set_xlim(1, max(info.seq_length, 2))
    ax_x.set_title(f"{info.name}: {tracks.method}, {len(ids)} tracks, {tracks.frames.shape[0]} boxes")
    return save_figure(fig, out, dpi=110)
