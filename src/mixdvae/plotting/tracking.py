"""Tracking plots: tracks against ground truth, per-frame assignments, ELBO per iteration
(:func:`mixdvae.plotting.elbo.plot_elbo`).

Every function takes arrays (or the :class:`~mixdvae.data.windows.WindowSet` and
:class:`~mixdvae.tracking.results.TrackingResults` containers), builds a matplotlib ``Figure``
without pyplot's global state and writes it atomically. Boxes are pixel xyxy (x1, y1, x2, y2,
y down); the assignment posteriors are η_tkn = q(w_tk = n).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from mixdvae.errors import ConfigError
from mixdvae.plotting.elbo import plot_elbo
from mixdvae.plotting.save import save_figure

__all__ = [
    "UNASSIGNED_COLOUR",
    "source_colours",
    "detection_labels",
    "detection_colours",
    "plot_window_tracks",
    "plot_assignments",
    "plot_elbo",
    "plot_tracking_results",
]

UNASSIGNED_COLOUR = to_rgba("0.6")
"""Colour of a detection no source claims (Σ_n η_tkn < ``min_mass``: clutter or an empty slot)."""

# tab10 without its grey (kept for unassigned detections), then tab20's lighter shades.
_PALETTE = (
    "tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink",
    "tab:olive", "tab:cyan", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
)
_DPI = 110


def source_colours(n_sources: int) -> list[tuple[float, float, float, float]]:
    """RGBA colour of source n = 0 … N − 1 (the palette repeats after 15 sources)."""
    return [to_rgba(_PALETTE[n % len(_PALETTE)]) for n in range(n_sources)]


def detection_labels(eta: np.ndarray, min_mass: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Most likely source of each detection: label_tk = argmax_n η_tkn, prob_tk = max_n η_tkn.

    label_tk = −1 where the detection is claimed by no source, Σ_n η_tkn < ``min_mass`` (clutter,
    or a missing detection whose row is 0 or NaN); NaN entries count as 0.

    Shape:
        eta: (..., K, N) -> labels (..., K) int64, prob (..., K) float64.
    """
    eta = np.nan_to_num(np.asarray(eta, dtype=np.float64), nan=0.0)
    if eta.ndim < 2:
        raise ValueError(f"detection_labels: eta has shape {eta.shape}, expected (..., K, N)")
    if eta.shape[-1] == 0:
        return np.full(eta.shape[:-1], -1, dtype=np.int64), np.zeros(eta.shape[:-1])
    labels = eta.argmax(axis=-1).astype(np.int64)
    prob = eta.max(axis=-1)
    labels[eta.sum(axis=-1) < min_mass] = -1
    return labels, prob


def detection_colours(eta: np.ndarray, min_mass: float = 0.5) -> np.ndarray:
    """RGBA of each detection: the colour of source argmax_n η_tkn, grey if unassigned.

    Shape:
        eta: (..., K, N) -> (..., K, 4).
    """
    labels, _ = detection_labels(eta, min_mass)
    table = np.array(source_colours(np.shape(eta)[-1]) + [UNASSIGNED_COLOUR])  # (N + 1, 4); −1 -> last
    return table[labels]


def _centres(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """xyxy -> centre ((x1 + x2) / 2, (y1 + y2) / 2).  (..., 4) -> (...), (...)."""
    return (boxes[..., 0] + boxes[..., 2]) / 2, (boxes[..., 1] + boxes[..., 3]) / 2


def _save(fig: Figure, path: str | os.PathLike) -> Path:
    return save_figure(fig, path, dpi=_DPI)


def _label_ends(ax, ends: list[tuple[float, float, str]]) -> None:
    """Write each label right of its track's end, pushed apart to at least one text line."""
    if not ends:
        return
    lo, hi = ax.get_ylim()
    gap = 0.045 * (hi - lo)
    ends = sorted(ends, key=lambda e: e[1])
    placed: list[float] = []
    for _, y, _ in ends:
        placed.append(y if not placed else max(y, placed[-1] + gap))
    shift = max(0.0, placed[-1] - hi + gap / 2)  # keep the top label inside the axes
    x_lo, x_hi = ax.get_xlim()
    nudge = 0.008 * (x_hi - x_lo)
    for (x, y, label), y_text in zip(ends, placed):
        ax.annotate(label, (x, y), xytext=(x + nudge, y_text - shift), fontsize=7, va="center", ha="left",
                    color="0.15", annotation_clip=False)
    ax.set_xlim(right=max(x for x, _, _ in ends) + 0.14 * (x_hi - x_lo))


def _label_starts(ax, starts: list[tuple[float, float, str]]) -> None:
    """Write each label above-left of its track's start; a label that would cover an earlier one
    moves up (towards smaller y) by one text line, with a thin leader line to its point."""
    if not starts:
        return
    x_lo, x_hi = ax.get_xlim()
    y_lo, y_hi = sorted(ax.get_ylim())
    line, width = 0.045 * (y_hi - y_lo), 0.22 * (x_hi - x_lo)  # rough size of one label, data units
    placed: list[tuple[float, float]] = []
    for x, y, label in sorted(starts, key=lambda s: -s[1]):
        y_text = y - 0.02 * (y_hi - y_lo)
        while any(abs(x - px) < width and abs(y_text - py) < line for px, py in placed):
            y_text -= line
        placed.append((x, y_text))
        moved = y - y_text > 1.5 * line
        ax.annotate(label, (x, y), xytext=(x - 0.01 * (x_hi - x_lo), y_text), fontsize=7, ha="right",
                    va="bottom", color="0.15", annotation_clip=False, zorder=5,
                    bbox={"boxstyle": "round,pad=0.1", "facecolor": "white", "alpha": 0.7, "edgecolor": "none"},
                    arrowprops={"arrowstyle": "-", "color": "0.5", "linewidth": 0.6} if moved else None)


def _zoom_image_plane(ax, *points: tuple[np.ndarray, np.ndarray]) -> None:
    """Equal-aspect view around every finite (x, y) point, with a margin."""
    xs = np.concatenate([np.ravel(x) for x, _ in points])
    ys = np.concatenate([np.ravel(y) for _, y in points])
    ok = np.isfinite(xs) & np.isfinite(ys)
    if not ok.any():
        return
    x0, x1, y0, y1 = xs[ok].min(), xs[ok].max(), ys[ok].min(), ys[ok].max()
    pad = 0.08 * max(x1 - x0, y1 - y0, 20.0)
    ax.update_datalim([(x0 - pad, y0 - pad), (x1 + pad, y1 + pad)])
    ax.autoscale_view()
    ax.set_aspect("equal", adjustable="datalim")  # widens the shorter side to fill the panel


def _check_window(gt, boxes, det, eta) -> tuple[np.ndarray, ...]:
    """Float arrays for one window; ValueError quoting the shapes if they do not fit together."""
    gt, boxes, det, eta = (np.asarray(a, dtype=np.float64) for a in (gt, boxes, det, eta))
    ok = (
        gt.ndim == 3 and boxes.ndim == 3 and det.ndim == 3 and eta.ndim == 3
        and gt.shape[-1] == boxes.shape[-1] == det.shape[-1] == 4
        and gt.shape[0] == boxes.shape[0] == det.shape[0] == eta.shape[0]
        and eta.shape[1:] == (det.shape[1], boxes.shape[1])
    )
    if not ok:
        raise ValueError(
            f"plot_window_tracks: gt {gt.shape}, boxes {boxes.shape}, det {det.shape}, eta {eta.shape}; "
            "expected (T, N_gt, 4), (T, N, 4), (T, K, 4), (T, K, N)"
        )
    return gt, boxes, det, eta


def plot_window_tracks(
    path: str | os.PathLike,
    gt: np.ndarray,
    boxes: np.ndarray,
    det: np.ndarray,
    eta: np.ndarray,
    title: str = "",
    image_size: Sequence[float] | None = None,
    first_frame: int = 0,
    gt_labels: Sequence[str] | None = None,
    min_mass: float = 0.5,
) -> Path:
    """PNG of one window: estimated tracks, ground truth and detections coloured by their source.

    Panels: box centre x = (x1 + x2) / 2, centre y = (y1 + y2) / 2 and height y2 − y1 against the
    frame, and the image plane (centre paths, y down as in images, zoomed on the tracks; the
    border of ``image_size`` = (width, height) drawn when given). Source n's estimate is a solid
    line in its colour; ground truth objects are dashed black lines tagged with ``gt_labels``
    (default ``#j``); detection (t, k) is a dot in the colour of argmax_n η_tkn, grey when
    Σ_n η_tkn < ``min_mass`` (see :func:`detection_labels`). Missing detections (NaN rows) and NaN
    boxes leave gaps. Frames are numbered from ``first_frame``.

    Shape:
        gt: (T, N_gt, 4); boxes: (T, N, 4); det: (T, K, 4); eta: (T, K, N).

    Raises:
        ValueError: shapes that do not fit together.
    """
    gt, boxes, det, eta = _check_window(gt, boxes, det, eta)
    T, N_gt, _ = gt.shape
    N = boxes.shape[1]
    if gt_labels is None:
        gt_labels = [f"#{j}" for j in range(N_gt)]
    if len(gt_labels) != N_gt:
        raise ValueError(f"plot_window_tracks: {len(gt_labels)} gt_labels for {N_gt} ground-truth objects")
    frames = first_frame + np.arange(T)
    colours = source_colours(N)
    det_rgba = detection_colours(eta, min_mass)  # (T, K, 4)
    seen = np.isfinite(det).all(axis=-1)  # (T, K)
    det_frames = np.broadcast_to(frames[:, None], seen.shape)[seen]

    series = {  # name -> (gt (T, N_gt), est (T, N), det (T, K))
        "centre x (px)": tuple(_centres(a)[0] for a in (gt, boxes, det)),
        "centre y (px, down)": tuple(_centres(a)[1] for a in (gt, boxes, det)),
        "box height (px)": tuple(a[..., 3] - a[..., 1] for a in (gt, boxes, det)),
    }
    fig = Figure(figsize=(12.0, 8.0), layout="constrained")
    axes = fig.subplots(2, 2)
    time_axes = (axes[0, 0], axes[0, 1], axes[1, 0])
    for ax, (name, (g, e, d)) in zip(time_axes, series.items()):
        ends = []  # (frame, value, label) of the last finite point of each gt track
        for j in range(N_gt):
            ax.plot(frames, g[:, j], color="black", linestyle="--", linewidth=1.1, alpha=0.8, zorder=2)
            last = np.flatnonzero(np.isfinite(g[:, j]))
            if last.size:
                ends.append((frames[last[-1]], g[last[-1], j], gt_labels[j]))
        for n in range(N):
            ax.plot(frames, e[:, n], color=colours[n], linewidth=1.8, zorder=3)
        ax.scatter(det_frames, d[seen], c=det_rgba[seen], s=12, linewidths=0, zorder=4)
        _label_ends(ax, ends)
        ax.set_xlabel("frame")
        ax.set_ylabel(name)
        ax.grid(alpha=0.25)

    ax = axes[1, 1]
    gx, gy = _centres(gt)
    ex, ey = _centres(boxes)
    dx, dy = _centres(det)
    if image_size is not None:
        width, height = (float(v) for v in image_size)
        # add_artist: the border does not enter the data limits, so the view stays on the tracks
        ax.add_artist(Rectangle((0, 0), width, height, fill=False, edgecolor="0.6", linewidth=0.8))
    starts = []  # (x, y, label) of the first finite point of each gt track
    for j in range(N_gt):
        ax.plot(gx[:, j], gy[:, j], color="black", linestyle="--", linewidth=1.1, alpha=0.8, zorder=2)
        first = np.flatnonzero(np.isfinite(gx[:, j]) & np.isfinite(gy[:, j]))
        if first.size:
            starts.append((gx[first[0], j], gy[first[0], j], gt_labels[j]))
    for n in range(N):
        ax.plot(ex[:, n], ey[:, n], color=colours[n], linewidth=1.8, zorder=3)
        ax.plot(ex[:1, n], ey[:1, n], "o", color=colours[n], markersize=5, zorder=3)
    ax.scatter(dx[seen], dy[seen], c=det_rgba[seen], s=10, linewidths=0, zorder=4)
    _zoom_image_plane(ax, (gx, gy), (ex, ey), (dx, dy))
    _label_starts(ax, starts)
    ax.invert_yaxis()
    ax.set_xlabel("centre x (px)")
    ax.set_ylabel("centre y (px, down)")
    ax.set_title("image plane (○ = first frame)", fontsize=9)
    ax.grid(alpha=0.25)

    handles = [
        Line2D([], [], color=colours[n], linewidth=1.8, marker="o", markersize=4, label=f"source {n}")
        for n in range(N)
    ]
    handles += [
        Line2D([], [], color="black", linestyle="--", linewidth=1.1, label="ground truth"),
        Line2D([], [], color=UNASSIGNED_COLOUR, linestyle="", marker="o", markersize=4,
               label=f"unassigned detection (Σₙη < {min_mass:g})"),
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=min(len(handles), 6), fontsize=8,
               title="line: estimated track; dot: detection, coloured by argmax source", title_fontsize=8)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_assignments(
    path: str | os.PathLike,
    eta: np.ndarray,
    det_gt_index: np.ndarray | None = None,
    title: str = "",
    first_frame: int = 0,
    min_mass: float = 0.5,
) -> Path:
    """PNG heat map of one window's assignments: cell (t, k) in the colour of argmax_n η_tkn.

    The opacity is max_n η_tkn; cells with Σ_n η_tkn < ``min_mass`` (clutter, empty slots) stay
    white. With ``det_gt_index`` (the ground-truth object of each slot, −1 for none; evaluation
    only) a second panel shows it in the same layout, so that a source following one object reads
    as one colour of the top panel over one shade of the bottom panel.

    Shape:
        eta: (T, K, N); det_gt_index: (T, K).
    """
    eta = np.asarray(eta, dtype=np.float64)
    if eta.ndim != 3:
        raise ValueError(f"plot_assignments: eta has shape {eta.shape}, expected (T, K, N)")
    T, K, N = eta.shape
    if det_gt_index is not None:
        det_gt_index = np.asarray(det_gt_index)
        if det_gt_index.shape != (T, K):
            raise ValueError(f"plot_assignments: det_gt_index has shape {det_gt_index.shape}, expected ({T}, {K})")
    labels, prob = detection_labels(eta, min_mass)
    rgba = detection_colours(eta, min_mass)  # (T, K, 4)
    rgba[..., 3] = np.where(labels >= 0, np.clip(prob, 0.0, 1.0), 0.0)
    extent = (first_frame - 0.5, first_frame + T - 0.5, K - 0.5, -0.5)
    rows = 1 if det_gt_index is None else 2
    fig = Figure(figsize=(min(4.0 + 0.12 * T, 16.0), 1.6 + rows * (0.9 + 0.28 * K)), layout="constrained")
    axes = fig.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    axes[0].imshow(rgba.transpose(1, 0, 2), aspect="auto", interpolation="nearest", extent=extent)
    axes[0].set_ylabel("detection slot k")
    axes[0].set_title("argmax source (opacity = max probability)", fontsize=9)
    handles = [Patch(color=c, label=f"source {n}") for n, c in enumerate(source_colours(N))]
    handles.append(Patch(facecolor="white", edgecolor="0.5", label=f"none (Σₙη < {min_mass:g})"))
    axes[0].legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    if det_gt_index is not None:
        n_gt = int(det_gt_index.max(initial=-1)) + 1
        shades = [to_rgba(str(v)) for v in np.linspace(0.1, 0.75, max(n_gt, 1))]
        table = np.array(shades + [to_rgba("white")])  # −1 -> white
        axes[1].imshow(table[det_gt_index].transpose(1, 0, 2), aspect="auto", interpolation="nearest",
                       extent=extent)
        axes[1].set_ylabel("detection slot k")
        axes[1].set_title("ground-truth object of each detection", fontsize=9)
        gt_handles = [Patch(color=shades[j], label=f"gt #{j}") for j in range(n_gt)]
        gt_handles.append(Patch(facecolor="white", edgecolor="0.5", label="missed"))
        axes[1].legend(handles=gt_handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    for ax in axes:
        ax.set_yticks(range(K))
    axes[-1].set_xlabel("frame")
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_tracking_results(
    out_dir: str | os.PathLike,
    windows,
    results,
    max_windows: int = 6,
    indices: Sequence[int] | None = None,
    assignments: bool = True,
) -> list[Path]:
    """Write ``window_{w:04d}.png`` (and ``assignments_{w:04d}.png``) and ``elbo.png`` to ``out_dir``.

    ``windows`` is a :class:`~mixdvae.data.windows.WindowSet`, ``results`` the
    :class:`~mixdvae.tracking.results.TrackingResults` made on it. The windows drawn are
    ``indices`` if given, else the first ``max_windows``; ``elbo.png`` covers every window and is
    written only when ``results.elbo`` holds values. Returns the paths written, in that order.

    Raises:
        ConfigError: ``max_windows`` < 0 or an index outside 0 … W − 1.
        ValueError: results and windows of different shapes.
    """
    W, T, N, _ = windows.gt.shape
    if results.boxes.shape != windows.gt.shape or results.eta.shape[:3] != windows.det.shape[:3]:
        raise ValueError(
            f"plot_tracking_results: results boxes {results.boxes.shape} / eta {results.eta.shape} do not "
            f"match windows gt {windows.gt.shape} / det {windows.det.shape}"
        )
    if indices is None:
        if isinstance(max_windows, bool) or not isinstance(max_windows, (int, np.integer)) or max_windows < 0:
            raise ConfigError(f"max_windows = {max_windows!r}: must be an integer >= 0")
        indices = range(min(max_windows, W))
    indices = [int(w) for w in indices]
    bad = [w for w in indices if not 0 <= w < W]
    if bad:
        raise ConfigError(f"window index {bad[0]} is out of range: the file has {W} windows (0 … {W - 1})")
    out_dir = Path(out_dir)
    method = results.method or "tracking"
    written: list[Path] = []
    for w in indices:
        f0, f1 = (int(v) for v in windows.frames[w])
        title = f"{method}: window {w}, {windows.sequence[w]} frames {f0}–{f1}"
        gt_labels = [f"#{j} (id {int(i)})" for j, i in enumerate(windows.ids[w])]
        written.append(plot_window_tracks(
            out_dir / f"window_{w:04d}.png", windows.gt[w], results.boxes[w], windows.det[w], results.eta[w],
            title=title, image_size=windows.image_size[w], first_frame=f0, gt_labels=gt_labels,
        ))
        if assignments:
            written.append(plot_assignments(
                out_dir / f"assignments_{w:04d}.png", results.eta[w], windows.det_gt_index[w],
                title=title, first_frame=f0,
            ))
    labels = [f"window {w}: {windows.sequence[w]} from frame {int(windows.frames[w, 0])}" for w in range(W)]
    elbo_path = plot_elbo(out_dir / "elbo.png", results.elbo, labels=labels, title=f"{method}: ELBO of {W} windows",
                          unit="window")
    if elbo_path is not None:
        written.append(elbo_path)
    return written
