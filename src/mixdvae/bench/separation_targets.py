"""The separation issue's targets, read off a ``mixdvae bench separation`` result, with paired statistics.

Every method of a benchmark cell separates the same mixtures, so a comparison between two methods
is a paired one: per mixture i, d_i = SI-SDR_i(MixDVAE) - SI-SDR_i(baseline), and

    mean  d = (1 / M) sum_i d_i,     standard error  se = std(d, ddof = 1) / sqrt(M),
    wins  = #{i : d_i > 0}.

A target is met or missed on the means, as the issue states it (``mean d > 0``: MixDVAE above the
baseline; ``mean d >= 4``: speech at least 4 dB above temporal NMF; ``mean d >= 0``: the
``default`` preset at least as good as ``reference``; ``mean d < 0`` against an oracle: the oracle
ahead). The standard error and the wins say how much of that a different draw of mixtures could move.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["NON_ORACLE_BASELINES", "ORACLES", "paired_difference", "separation_targets", "format_separation_targets"]

NON_ORACLE_BASELINES = ("Mixture", "DVAE-init", "Deep AR", "Vanilla NMF", "Temporal NMF")
"""Rows MixDVAE (``default``) must be above, for every source, in every cell."""

ORACLES = ("Oracle IBM", "Oracle Wiener")
"""Rows that must stay above MixDVAE (``default``)."""

_SUBJECT = "MixDVAE"
_REFERENCE = "MixDVAE (reference)"


def paired_difference(a: list[float | None], b: list[float | None]) -> dict[str, Any]:
    """Paired statistics of a - b over the mixtures where both values exist.

    Returns ``{"mean", "se", "wins", "n"}``; ``se`` is None with fewer than two pairs, and ``mean``
    None with none (a metric that failed on every mixture).
    """
    if len(a) != len(b):
        raise ValueError(f"paired_difference: {len(a)} values against {len(b)}")
    d = np.array([x - y for x, y in zip(a, b) if x is not None and y is not None
                  and math.isfinite(x) and math.isfinite(y)], dtype=np.float64)
    n = int(d.size)
    if n == 0:
        return {"mean": None, "se": None, "wins": 0, "n": 0}
    se = float(d.std(ddof=1) / math.sqrt(n)) if n > 1 else None
    return {"mean": float(d.mean()), "se": se, "wins": int((d > 0).sum()), "n": n}


def _target(cell: str, target: str, source: str, against: str, stats: dict[str, Any], passed: bool | None) -> dict[str, Any]:
    return {"cell": cell, "target": target, "source": source, "against": against, **stats, "met": passed}


def separation_targets(result: dict, metric: str = "si_sdr", margin_db: float = 4.0) -> list[dict[str, Any]]:
    """The targets of every cell of ``result`` (:func:`mixdvae.bench.separation.run_separation_bench`).

    Per cell and source: MixDVAE (``default``) above each non-oracle baseline; speech (the first
    source) ``margin_db`` above temporal NMF; ``default`` at least as good as ``reference``; each
    oracle above MixDVAE. Rows a cell lacks (``--methods``) are skipped. Each entry holds the paired
    statistics of MixDVAE minus the other row (:func:`paired_difference`) and ``met`` (None when the
    metric failed on every mixture).
    """
    out: list[dict[str, Any]] = []
    for key, cell in result["cells"].items():
        rows = {row["method"]: row for row in cell["rows"] if "per_mixture" in row}
        subject = rows.get(_SUBJECT)
        if subject is None:
            continue
        names = list(subject["per_mixture"])

        def diff(other: str, name: str) -> dict[str, Any]:
            return paired_difference(subject["per_mixture"][name][metric], rows[other]["per_mixture"][name][metric])

        def check(stats: dict[str, Any], rule) -> bool | None:
            return None if stats["mean"] is None else bool(rule(stats["mean"]))

        for name in names:
            for other in NON_ORACLE_BASELINES:
                if other in rows:
                    s = diff(other, name)
                    out.append(_target(key, "above every non-oracle baseline", name, other, s, check(s, lambda m: m > 0)))
            if name == names[0] and "Temporal NMF" in rows:
                s = diff("Temporal NMF", name)
                out.append(_target(key, f"speech >= temporal NMF + {margin_db:g} dB", name, "Temporal NMF", s,
                                   check(s, lambda m: m >= margin_db)))
            if _REFERENCE in rows:
                s = diff(_REFERENCE, name)
                out.append(_target(key, "default >= reference", name, _REFERENCE, s, check(s, lambda m: m >= 0)))
            for oracle in ORACLES:
                if oracle in rows:
                    s = diff(oracle, name)
                    out.append(_target(key, "oracles stay ahead", name, oracle, s, check(s, lambda m: m < 0)))
    return out


def format_separation_targets(targets: list[dict[str, Any]]) -> str:
    """Markdown: one line per target, MixDVAE minus the other row (mean +- standard error, wins of n),
    and whether it is met; then the count of targets met."""
    if not targets:
        return "(no targets: the MixDVAE row or per-mixture values are missing)"
    lines = ["| Set | Target | Source | Against | MixDVAE - it (dB) | Wins | Met |", "|---|---|---|---|---|---|---|"]
    for t in targets:
        if t["mean"] is None:
            value = "-"
        else:
            value = f"{t['mean']:+.2f}" + ("" if t["se"] is None else f" ± {t['se']:.2f}")
        met = {True: "yes", False: "**no**", None: "-"}[t["met"]]
        lines.append(f"| {t['cell']} | {t['target']} | {t['source']} | {t['against']} | {value} | "
                     f"{t['wins']}/{t['n']} | {met} |")
    met = sum(t["met"] is True for t in targets)
    missed = [t for t in targets if t["met"] is False]
    lines.append("")
    lines.append(f"targets met: {met} of {len(targets)}" + (
        "" if not missed else "; missed: " + "; ".join(f"{t['cell']} {t['source']} vs {t['against']}" for t in missed)))
    return "\n".join(lines)
