"""``mixdvae plot ...``: figures of results files.

``plot tracking``: tracks against ground truth, per-frame assignments and ELBO curves of a
tracking results file. Further sub-commands (``plot separation``) are added to ``add_parser``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mixdvae.errors import ConfigError, DataFormatError

__all__ = ["add_parser", "run_plot_tracking", "parse_indices"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plot", help="Draw figures of results files (tracking).")
    plot_sub = p.add_subparsers(dest="plot_command", metavar="WHAT", parser_class=type(p))
    plot_sub.required = True

    t = plot_sub.add_parser(
        "tracking",
        help="Tracks against ground truth, assignments and ELBO of a tracking results file.",
        description="Writes window_WWWW.png (centre x, centre y, height over time and the image plane; "
        "detections coloured by their most likely source), assignments_WWWW.png and elbo.png.",
    )
    t.add_argument("results", type=Path, help="results .npz written by `mixdvae track`")
    t.add_argument("--windows", type=Path, required=True, help="windows .npz the results were made on")
    t.add_argument("--out", type=Path, required=True, help="folder for the PNG files (created if needed)")
    t.add_argument("--max-windows", type=int, default=6, help="draw the first N windows (default 6)")
    t.add_argument("--windows-index", type=str, default=None, metavar="I,J,...",
                   help="comma-separated window indices to draw instead of the first --max-windows")
    t.add_argument("--no-assignments", action="store_true", help="skip the assignments_WWWW.png heat maps")
    t.set_defaults(func=run_plot_tracking)


def parse_indices(text: str) -> list[int]:
    """``"0,3, 5"`` -> [0, 3, 5]; ConfigError naming the bad item."""
    indices = []
    for item in text.split(","):
        item = item.strip()
        try:
            indices.append(int(item))
        except ValueError as err:
            raise ConfigError(f"--windows-index: '{item}' is not an integer (expected e.g. 0,3,5)") from err
    return indices


def run_plot_tracking(args: argparse.Namespace) -> int:
    from mixdvae.data.windows import load_windows
    from mixdvae.plotting.tracking import plot_tracking_results
    from mixdvae.tracking.results import load_tracking_results

    if args.max_windows < 0:
        raise ConfigError(f"--max-windows = {args.max_windows}: must be >= 0")
    indices = parse_indices(args.windows_index) if args.windows_index is not None else None
    results = load_tracking_results(args.results)
    windows = load_windows(args.windows)
    r_name, w_name = str(args.results), str(args.windows)
    if results.boxes.shape != windows.gt.shape:
        raise DataFormatError(
            f"{r_name}: 'boxes' has shape {results.boxes.shape} but {w_name} 'gt' has "
            f"{windows.gt.shape} (W, T, N, 4)"
        )
    if results.eta.shape[:3] != windows.det.shape[:3]:
        raise DataFormatError(
            f"{r_name}: 'eta' has shape {results.eta.shape} but {w_name} 'det' has "
            f"{windows.det.shape}: (W, T, K) must agree"
        )
    if indices is not None:
        W = windows.gt.shape[0]
        bad = [w for w in indices if not 0 <= w < W]
        if bad:
            raise ConfigError(f"--windows-index: window {bad[0]} is out of range, {w_name} has {W} windows")
    written = plot_tracking_results(args.out, windows, results, max_windows=args.max_windows, indices=indices,
                                    assignments=not args.no_assignments)
    for path in written:
        print(path)
    return 0
