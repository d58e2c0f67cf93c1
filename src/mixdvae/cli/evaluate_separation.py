"""``mixdvae evaluate separation``: score separated sources against a mixtures file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mixdvae.data.mixtures import check_estimates_match, load_estimates, load_mixtures
from mixdvae.errors import ConfigError
from mixdvae.metrics.audio import METRICS, evaluate_separation, separation_table
from mixdvae.utils.io import write_json

__all__ = ["add_parser", "run_evaluate_separation"]


def _metrics(text: str) -> tuple[str, ...]:
    names = tuple(m.strip() for m in text.split(",") if m.strip())
    unknown = [m for m in names if m not in METRICS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown metric in '{text}': choose from {','.join(METRICS)}")
    return names


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "separation",
        help="Score separated sources (RMSE, SI-SDR, PESQ, ESTOI) against their mixtures file.",
        description="Scale-fitted RMSE, SI-SDR, wide-band PESQ and ESTOI of each estimated source, and of "
        "the mixture itself as a reference row (reference-implementation.md section 5.2). Values that "
        "cannot be computed (e.g. PESQ finds no utterance) are counted as failures, not averaged.",
    )
    p.add_argument("estimates", type=Path,
                   help="estimates .npz: 'estimates' (M, N, L), 'source_names' (N,), optional 'method'")
    p.add_argument("--mixtures", type=Path, required=True, help="mixtures .npz the estimates were made from")
    p.add_argument("--json", type=Path, help="also write overall, per-mixture scores and failures here")
    p.add_argument("--metrics", type=_metrics, default=METRICS,
                   help=f"comma-separated subset of {','.join(METRICS)} (default: all)")
    p.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: when stderr is a terminal)",
    )
    p.set_defaults(func=run_evaluate_separation)


def run_evaluate_separation(args: argparse.Namespace) -> int:
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    est = load_estimates(args.estimates)
    mix = load_mixtures(args.mixtures)
    e_name, m_name = str(args.estimates), str(args.mixtures)
    check_estimates_match(est, mix, e_name, m_name)
    if mix.sample_rate != 16000 and "pesq" in args.metrics:
        raise ConfigError(
            f"{m_name}: sample rate {mix.sample_rate} Hz; wide-band PESQ needs 16000 (drop it with --metrics)"
        )
    result = evaluate_separation(
        est.estimates, mix.sources, mix.source_names, mix.sample_rate,
        mixture=mix.mixture, metrics=args.metrics, progress=progress,
    )
    method = est.method or args.estimates.stem
    print(separation_table(result, method=method))
    if args.json is not None:
        meta = {"method": method, "estimates": e_name, "mixtures": m_name, "metrics": list(args.metrics),
                "num_mixtures": len(mix), "sample_rate": mix.sample_rate}
        write_json(args.json, {"meta": meta, **result})
    return 0
