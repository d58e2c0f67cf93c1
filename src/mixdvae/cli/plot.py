"""``mixdvae plot ...``: figures of results files.

``plot tracking``: tracks against ground truth, per-frame assignments and ELBO curves of a
tracking results file. ``plot separation``: spectrograms of mixtures, their estimates and references
(with each source's SI-SDR) and the ELBO curves of an estimates file. ``plot separation-bench``: the
results of ``mixdvae bench separation --json`` as bars per cell and method.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from mixdvae.errors import ConfigError, DataFormatError
from mixdvae.metrics.audio import METRICS
from mixdvae.utils.io import first_line

__all__ = ["add_parser", "run_plot_tracking", "run_plot_separation", "run_plot_separation_bench", "parse_indices"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("plot", help="Draw figures of results files (tracking, separation, separation benchmark).")
    plot_sub = p.add_subparsers(dest="plot_command", metavar="WHAT", parser_class=type(p))
    plot_sub.required = True

    t = plot_sub.add_parser(
        "tracking",
        help="Tracks against ground truth, assignments and ELBO of a tracking results file.",
        description="Writes window_WWWW.png (centre x, centre y, height over time and the image plane; "
        "detections coloured by their most likely source), assignments_WWWW.png and elbo.png.",
    )
    _add_figure_arguments(t, "results", "results .npz written by `mixdvae track`", "--windows",
                          "windows .npz the results were made on", "window", 6, "--windows-index")
    t.add_argument("--no-assignments", action="store_true", help="skip the assignments_WWWW.png heat maps")
    t.set_defaults(func=run_plot_tracking)

    s = plot_sub.add_parser(
        "separation",
        help="Spectrograms of mixtures, estimates and references, and the ELBO, of an estimates file.",
        description="Writes mixture_MMMM.png (the mixture, then each source's estimate beside its reference and, "
        "when the estimates file keeps them (`mixdvae separate M.npz --save-masks`), its mask; titled with each "
        "source's SI-SDR) for the chosen mixtures, and elbo.png (every chunk's ELBO per VEM iteration) when the "
        "estimates file holds an ELBO history.",
    )
    _add_figure_arguments(s, "estimates", "estimates .npz written by `mixdvae separate M.npz`", "--mixtures",
                          "mixtures .npz the estimates were made from", "mixture", 4, "--index")
    s.set_defaults(func=run_plot_separation)

    b = plot_sub.add_parser(
        "separation-bench",
        help="Bars of a metric per cell and method of a `mixdvae bench separation --json` file.",
        description="Writes one PNG: a panel per cell (T, ratio), a pair of bars per method (one per source) at "
        "the mean of the metric over the cell's mixtures, with its standard error; oracles hatched.",
    )
    b.add_argument("results", type=Path, help="JSON written by `mixdvae bench separation --json`")
    b.add_argument("--out", type=Path, required=True, help="PNG file to write")
    b.add_argument("--metric", choices=METRICS, default="si_sdr",
                   help="the metric drawn (default si_sdr)")
    b.set_defaults(func=run_plot_separation_bench)


def _add_figure_arguments(p: argparse.ArgumentParser, results: str, results_help: str, inputs: str, inputs_help: str,
                          item: str, default_max: int, index_flag: str) -> None:
    """The arguments every ``plot`` command shares: the results file, the file it was made from, --out,
    --max-{item}s and the index list."""
    p.add_argument(results, type=Path, help=results_help)
    p.add_argument(inputs, type=Path, required=True, help=inputs_help)
    p.add_argument("--out", type=Path, required=True, help="folder for the PNG files (created if needed)")
    p.add_argument(f"--max-{item}s", type=int, default=default_max, help=f"draw the first N {item}s (default {default_max})")
    p.add_argument(index_flag, type=str, default=None, metavar="I,J,...",
                   help=f"comma-separated {item} indices to draw instead of the first --max-{item}s")


def parse_indices(text: str, flag: str = "--windows-index") -> list[int]:
    """``"0,3, 5"`` -> [0, 3, 5]; ConfigError naming ``flag`` and the bad item."""
    indices = []
    for item in text.split(","):
        item = item.strip()
        try:
            indices.append(int(item))
        except ValueError as err:
            raise ConfigError(f"{flag}: '{item}' is not an integer (expected e.g. 0,3,5)") from err
    return indices


def run_plot_tracking(args: argparse.Namespace) -> int:
    from mixdvae.data.windows import load_windows
    from mixdvae.plotting.tracking import plot_tracking_results
    from mixdvae.tracking.results import check_results_match, load_tracking_results

    if args.max_windows < 0:
        raise ConfigError(f"--max-windows = {args.max_windows}: must be >= 0")
    indices = parse_indices(args.windows_index) if args.windows_index is not None else None
    results = load_tracking_results(args.results)
    windows = load_windows(args.windows)
    check_results_match(results, windows, str(args.results), str(args.windows))
    if indices is not None:
        W = windows.gt.shape[0]
        bad = [w for w in indices if not 0 <= w < W]
        if bad:
            raise ConfigError(f"--windows-index: window {bad[0]} is out of range, {args.windows} has {W} windows")
    written = plot_tracking_results(args.out, windows, results, max_windows=args.max_windows, indices=indices,
                                    assignments=not args.no_assignments)
    for path in written:
        print(path)
    return 0


def run_plot_separation(args: argparse.Namespace) -> int:
    import numpy as np

    from mixdvae.data.mixtures import check_estimates_match, load_estimates, load_mixtures
    from mixdvae.metrics.audio import si_sdr
    from mixdvae.plotting.separation import plot_separation_results
    from mixdvae.utils.io import read_npz

    if args.max_mixtures < 0:
        raise ConfigError(f"--max-mixtures = {args.max_mixtures}: must be >= 0")
    est = load_estimates(args.estimates)
    mix = load_mixtures(args.mixtures)
    e_name, m_name = str(args.estimates), str(args.mixtures)
    check_estimates_match(est, mix, e_name, m_name)
    M = len(mix)
    if args.index is not None:
        indices = parse_indices(args.index, "--index")
        bad = [m for m in indices if not 0 <= m < M]
        if bad:
            raise ConfigError(f"--index: mixture {bad[0]} is out of range, {m_name} has {M} mixtures")
    else:
        indices = list(range(min(args.max_mixtures, M)))
    extra = read_npz(args.estimates, (), optional=("elbo", "masks"), what="estimates file")
    elbo, masks = extra.get("elbo"), extra.get("masks")
    if elbo is not None and elbo.ndim != 2:
        raise DataFormatError(f"{e_name}: 'elbo' has shape {elbo.shape}, expected (iterations, chunks)")
    if masks is not None and (masks.ndim != 4 or masks.shape[:2] != est.estimates.shape[:2]):
        raise DataFormatError(f"{e_name}: 'masks' has shape {masks.shape}, expected ({M}, {len(mix.source_names)}, T, F)")
    method = est.method or args.estimates.stem
    titles = []
    for m in indices:
        with np.errstate(all="ignore"):
            scores = np.atleast_1d(si_sdr(est.estimates[m], mix.sources[m]))  # (N,)
        parts = [f"{n} {v:.1f} dB" if np.isfinite(v) else f"{n} n/a" for n, v in zip(mix.source_names, scores)]
        titles.append(f"{method}: mixture {m} ({mix.ratio_db[m]:+.0f} dB); SI-SDR " + ", ".join(parts))
    written = plot_separation_results(args.out, mix.mixture, est.estimates, mix.sources, mix.source_names, indices,
                                      titles=titles, elbo=elbo, method=method, masks=masks)
    for path in written:
        print(path)
    return 0


def run_plot_separation_bench(args: argparse.Namespace) -> int:
    import json

    from mixdvae.plotting.bench import plot_separation_bench

    if not args.results.is_file():
        raise DataFormatError(f"{args.results}: results file not found")
    try:
        result = json.loads(args.results.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DataFormatError(f"{args.results}: not a JSON file ({first_line(err)})") from err
    if isinstance(result, dict) and "spec" in result and args.metric not in result["spec"].get("metrics", [args.metric]):
        raise ConfigError(f"--metric {args.metric}: {args.results} holds {', '.join(result['spec']['metrics'])}")
    try:
        path = plot_separation_bench(args.out, result, metric=args.metric, title=args.results.name)
    except DataFormatError as err:
        raise DataFormatError(f"{args.results}: {err}") from err
    print(path)
    return 0
