"""Figure of a separation benchmark (``mixdvae bench separation --json B.json``): one panel per cell (T, ratio),
one pair of bars per method (each source's mean of a metric, with its standard error over the mixtures).
Takes the results dictionary, never models; written atomically."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from mixdvae.errors import DataFormatError
from mixdvae.plotting.save import save_figure

__all__ = ["mean_and_standard_error", "plot_separation_bench"]

_LABELS = {"rmse": "RMSE (lower is better)", "si_sdr": "SI-SDR (dB)", "pesq": "PESQ", "estoi": "ESTOI"}


def mean_and_standard_error(values: list[float | None]) -> tuple[float, float, int]:
    """Mean m = (1/K) sum_k x_k and standard error sqrt(sum_k (x_k - m)^2 / (K (K - 1))) over the K values that
    are not None or NaN (failures are left out, as the benchmark's means leave them out); (nan, nan, 0) if none."""
    x = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    if x.size == 0:
        return math.nan, math.nan, 0
    se = float(x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else 0.0
    return float(x.mean()), se, int(x.size)


def plot_separation_bench(path: str | os.PathLike, result: dict[str, Any], metric: str = "si_sdr",
                          title: str = "") -> Path:
    """PNG: a panel per cell of ``result["cells"]`` (rows: lengths T, columns: ratios), a horizontal pair of
    bars per method (one per source) at the mean of ``metric`` over the cell's mixtures, with +- one standard
    error; oracle rows are hatched. ``title`` names the results (default: the command).

    Raises:
        DataFormatError: ``result`` is not a separation benchmark's results (no cells, rows without
            per-mixture values) or does not hold ``metric``.
    """
    cells = result.get("cells") if isinstance(result, dict) else None
    if not isinstance(cells, dict) or not cells:
        raise DataFormatError("not the results of `mixdvae bench separation --json` (no 'cells')")
    try:
        lengths = sorted({int(c["length"]) for c in cells.values()})
        ratios = sorted({float(c["ratio_db"]) for c in cells.values()})
        names = list(next(iter(cells.values()))["rows"][0]["per_mixture"])
    except (KeyError, IndexError, TypeError, ValueError) as err:
        raise DataFormatError(f"not the results of `mixdvae bench separation --json` (a cell lacks {err})") from err
    fig = Figure(figsize=(6.0 * len(ratios), 0.6 + 0.42 * max(len(c["rows"]) for c in cells.values()) * len(lengths)
                          + 0.8 * len(lengths)), layout="constrained")
    axes = fig.subplots(len(lengths), len(ratios), squeeze=False)
    colours = [f"C{n}" for n in range(len(names))]
    height = 0.8 / len(names)
    for ax in axes.flat:
        ax.axis("off")
    for key, cell in cells.items():
        ax = axes[lengths.index(int(cell["length"])), ratios.index(float(cell["ratio_db"]))]
        ax.axis("on")
        methods = [row["method"] for row in cell["rows"]][::-1]  # first row on top
        for i, row in enumerate(cell["rows"][::-1]):
            per = row.get("per_mixture", {})
            for n, name in enumerate(names):
                values = per.get(name, {}).get(metric)
                if values is None:
                    raise DataFormatError(f"cell '{key}', row '{row['method']}': no per-mixture '{metric}' for '{name}'")
                mean, se, _ = mean_and_standard_error(values)
                y = i - (n - (len(names) - 1) / 2) * height  # the first source on top
                ax.barh(y, mean, height=height * 0.9, xerr=se, color=colours[n], capsize=2,
                        hatch="//" if row["method"].lower().startswith("oracle") else None,
                        label=name if i == 0 else None, error_kw={"lw": 0.8})
        ax.set_yticks(range(len(methods)), methods, fontsize=8)
        ax.axvline(0.0, color="0.3", lw=0.6)
        ax.grid(axis="x", alpha=0.3)
        ax.set_xlabel(_LABELS.get(metric, metric), fontsize=9)
        ax.set_title(f"{key} ({cell.get('mixtures', '?')} mixtures)", fontsize=10)
    axes.flat[0].legend(fontsize=8, loc="lower right")
    fig.suptitle(f"{title or 'mixdvae bench separation'}: {_LABELS.get(metric, metric)}, mean ± standard error")
    return save_figure(fig, path, dpi=100)
