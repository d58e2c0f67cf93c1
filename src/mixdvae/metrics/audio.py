"""Separation metrics: scale-fitted RMSE, SI-SDR, wide-band PESQ, ESTOI (reference-implementation.md section 5.2).

All functions take numpy waveforms, estimate first and reference second. RMSE and SI-SDR are
batched over leading dimensions; PESQ and ESTOI take one pair of 1-D signals and return a
:class:`MetricValue` that carries the reason when the metric could not be computed (PESQ's "no
utterances detected", ESTOI's "not enough frames"), so that a failure is reported, never dropped.
"""

from __future__ import annotations

import math
import warnings
from typing import Any, NamedTuple, Sequence

import numpy as np

from mixdvae.errors import ConfigError, DataFormatError

__all__ = [
    "METRICS",
    "MetricValue",
    "scaled_rmse",
    "si_sdr",
    "pesq_wb",
    "estoi",
    "evaluate_separation",
    "evaluate_mixture",
    "separation_table",
]

METRICS = ("rmse", "si_sdr", "pesq", "estoi")
"""Metric names, in the order of the paper's tables."""

_EPS = float(np.finfo(np.float64).eps)


class MetricValue(NamedTuple):
    """A metric value, NaN with ``error`` set when it could not be computed."""

    value: float
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


def _pair(est: Any, ref: Any) -> tuple[np.ndarray, np.ndarray]:
    est = np.asarray(est, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    if est.shape != ref.shape:
        raise ValueError(f"estimate shape {est.shape} differs from reference shape {ref.shape}")
    return est, ref


def scaled_rmse(est: np.ndarray, ref: np.ndarray) -> np.ndarray | float:
    """RMSE after the least-squares scale: sqrt(mean((α ŝ - s)²)), α = ⟨ŝ, s⟩ / ⟨ŝ, ŝ⟩.

    An all-zero estimate gets α = 0 (RMSE = rms(s)).

    Shape:
        est, ref: (..., L). Returns (...) (a float for 1-D inputs).
    """
    est, ref = _pair(est, ref)
    energy = np.sum(est * est, axis=-1, keepdims=True)
    alpha = np.sum(est * ref, axis=-1, keepdims=True) / np.where(energy > 0, energy, 1.0)
    out = np.sqrt(np.mean(np.square(alpha * est - ref), axis=-1))
    return float(out) if out.ndim == 0 else out


def si_sdr(est: np.ndarray, ref: np.ndarray) -> np.ndarray | float:
    """Scale-invariant SDR in dB (Le Roux, Wisdom, Erdogan, Hershey 2019).

    α = (⟨ŝ, s⟩ + ε) / (⟨s, s⟩ + ε), e_target = α s, e_res = ŝ - e_target,
    SI-SDR = 10 log10((‖e_target‖² + ε) / (‖e_res‖² + ε)), with ε the float64 machine epsilon
    (the regularisers of the original code). No mean removal.

    Shape:
        est, ref: (..., L). Returns (...) (a float for 1-D inputs).
    """
    est, ref = _pair(est, ref)
    alpha = (np.sum(est * ref, axis=-1, keepdims=True) + _EPS) / (np.sum(ref * ref, axis=-1, keepdims=True) + _EPS)
    target = alpha * ref
    residual = est - target
    out = 10.0 * np.log10((np.sum(target * target, axis=-1) + _EPS) / (np.sum(residual * residual, axis=-1) + _EPS))
    return float(out) if out.ndim == 0 else out


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0]}" if text else type(err).__name__


def pesq_wb(est: np.ndarray, ref: np.ndarray, sample_rate: int = 16000) -> MetricValue:
    """Wide-band PESQ (ITU-T P.862.2) of ``est`` against ``ref``: ``pesq(sr, ref, est, mode="wb")``.

    Returns NaN with the reason when PESQ fails (no utterance detected, signal too short, a
    sample rate other than 16 kHz, an all-zero signal).

    Shape:
        est, ref: (L,).
    """
    from pesq import pesq

    est, ref = _pair(est, ref)
    if sample_rate != 16000:
        return MetricValue(math.nan, f"wide-band PESQ needs 16000 Hz, got {sample_rate}")
    for label, x in (("reference", ref), ("estimate", est)):
        if not np.any(x):
            return MetricValue(math.nan, f"{label} is silent (all zero)")
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", RuntimeWarning)  # pesq divides by a zero peak before failing
            value = float(pesq(16000, ref, est, mode="wb"))
    except (RuntimeError, ValueError) as err:  # pesq.PesqError subclasses RuntimeError
        return MetricValue(math.nan, _first_line(err))
    if not math.isfinite(value):
        return MetricValue(math.nan, f"PESQ returned {value}")
    return MetricValue(value)


def estoi(est: np.ndarray, ref: np.ndarray, sample_rate: int = 16000) -> MetricValue:
    """Extended STOI (Jensen and Taal 2016): ``pystoi.stoi(ref, est, sr, extended=True)``.

    pystoi returns 1e-5 with a warning when too few frames are left after removing silent ones;
    that, and an all-zero reference, are reported here as failures (NaN with the reason).

    Shape:
        est, ref: (L,).
    """
    from pystoi import stoi

    est, ref = _pair(est, ref)
    if not np.any(ref):
        return MetricValue(math.nan, "reference is silent (all zero)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            value = float(stoi(ref, est, sample_rate, extended=True))
        except (RuntimeError, ValueError, ZeroDivisionError) as err:
            return MetricValue(math.nan, _first_line(err))
    relevant = [w for w in caught if issubclass(w.category, RuntimeWarning) and "frames" in str(w.message).lower()]
    if relevant:
        return MetricValue(math.nan, str(relevant[0].message).splitlines()[0])
    if not math.isfinite(value):
        return MetricValue(math.nan, f"ESTOI returned {value}")
    return MetricValue(value)


def _check_metrics(metrics: Sequence[str]) -> tuple[str, ...]:
    metrics = tuple(metrics)
    unknown = [m for m in metrics if m not in METRICS]
    if unknown or not metrics:
        raise ConfigError(f"metrics = {','.join(metrics)}: choose from {','.join(METRICS)}")
    return tuple(m for m in METRICS if m in metrics)


def _json_float(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def evaluate_separation(
    estimates: np.ndarray,
    references: np.ndarray,
    names: Sequence[str],
    sample_rate: int = 16000,
    mixture: np.ndarray | None = None,
    metrics: Sequence[str] = METRICS,
    progress: bool = False,
) -> dict[str, Any]:
    """Score each estimated source against its reference, per mixture and overall.

    Returns a JSON-ready dict (no NaN anywhere; a failed value is ``None``)::

        {"overall": {"<name>": {"rmse": .., "si_sdr": .., "pesq": .., "estoi": ..}, ...},
         "per_mixture": [{"index": i, "<name>": {...}, ...}, ...],
         "failures": [{"index": i, "source": "<name>", "metric": "pesq", "error": "..."}, ...]}

    Only the requested ``metrics`` appear. "overall" is the mean over mixtures of the values that
    could be computed (``None`` if none could); every value that could not is listed in
    "failures". An estimate with NaN or inf samples fails every metric. If ``mixture`` is given,
    the dict also holds "mixture": :func:`evaluate_mixture`'s dict (the mixture scored as the
    estimate of every source).

    Shape:
        estimates, references: (M, N, L). mixture: (M, L).

    Raises:
        DataFormatError: shapes that disagree, or ``len(names) != N``. ConfigError: an unknown metric.
    """
    from tqdm import tqdm

    chosen = _check_metrics(metrics)
    estimates = np.asarray(estimates, dtype=np.float64)
    references = np.asarray(references, dtype=np.float64)
    if estimates.ndim != 3 or estimates.shape != references.shape:
        raise DataFormatError(
            f"estimates have shape {estimates.shape}, references {references.shape}: expected the same (M, N, L)"
        )
    m_count, n_count, _ = estimates.shape
    names = [str(n) for n in names]
    if len(names) != n_count:
        raise DataFormatError(f"{len(names)} source names {names} for N = {n_count} sources")
    finite = np.isfinite(estimates).all(axis=-1)  # (M, N)
    safe = np.where(finite[..., None], estimates, 0.0)
    batched: dict[str, np.ndarray] = {}
    if "rmse" in chosen:
        batched["rmse"] = scaled_rmse(safe, references)  # (M, N)
    if "si_sdr" in chosen:
        batched["si_sdr"] = si_sdr(safe, references)  # (M, N)
    per_pair = {"pesq": pesq_wb, "estoi": estoi}
    values = {m: np.full((m_count, n_count), np.nan) for m in chosen}
    failures: list[dict[str, Any]] = []
    for i in tqdm(range(m_count), desc="evaluate", unit="mixture", disable=not progress):
        for n in range(n_count):
            for metric in chosen:
                if not finite[i, n]:
                    failures.append({"index": i, "source": names[n], "metric": metric,
                                     "error": "estimate holds non-finite samples"})
                    continue
                if metric in batched:
                    v = MetricValue(float(batched[metric][i, n]))
                    if not math.isfinite(v.value):
                        v = MetricValue(math.nan, f"{metric} is {v.value}")
                else:
                    v = per_pair[metric](estimates[i, n], references[i, n], sample_rate)
                if v.error is not None:
                    failures.append({"index": i, "source": names[n], "metric": metric, "error": v.error})
                else:
                    values[metric][i, n] = v.value
    overall: dict[str, dict[str, float | None]] = {}
    for n, name in enumerate(names):
        overall[name] = {}
        for metric in chosen:
            col = values[metric][:, n]
            ok = col[np.isfinite(col)]
            overall[name][metric] = float(ok.mean()) if ok.size else None
    per_mixture = [
        {"index": i, **{name: {metric: _json_float(values[metric][i, n]) for metric in chosen}
                        for n, name in enumerate(names)}}
        for i in range(m_count)
    ]
    result: dict[str, Any] = {"overall": overall, "per_mixture": per_mixture, "failures": failures}
    if mixture is not None:
        result["mixture"] = evaluate_mixture(mixture, references, names, sample_rate, metrics=chosen, progress=progress)
    return result


def evaluate_mixture(
    mixture: np.ndarray,
    references: np.ndarray,
    names: Sequence[str],
    sample_rate: int = 16000,
    metrics: Sequence[str] = METRICS,
    progress: bool = False,
) -> dict[str, Any]:
    """The "Mixture" row: the mixture itself scored as the estimate of every source.

    Same dict layout as :func:`evaluate_separation`.

    Shape:
        mixture: (M, L). references: (M, N, L).
    """
    mixture = np.asarray(mixture, dtype=np.float64)
    references = np.asarray(references, dtype=np.float64)
    if mixture.ndim != 2 or references.ndim != 3 or mixture.shape != (references.shape[0], references.shape[2]):
        raise DataFormatError(
            f"mixture has shape {mixture.shape}, references {references.shape}: expected (M, L) and (M, N, L)"
        )
    as_estimates = np.broadcast_to(mixture[:, None, :], references.shape)  # (M, L) -> (M, N, L)
    return evaluate_separation(as_estimates, references, names, sample_rate, metrics=metrics, progress=progress)


_HEADERS = {"rmse": "RMSE", "si_sdr": "SI-SDR (dB)", "pesq": "PESQ", "estoi": "ESTOI"}
_FORMATS = {"rmse": "{:.4f}", "si_sdr": "{:.2f}", "pesq": "{:.2f}", "estoi": "{:.3f}"}


def separation_table(result: dict[str, Any], method: str = "estimate") -> str:
    """Markdown tables, one per source: the method's row and, if present, the "Mixture" row.

    ``result`` is :func:`evaluate_separation`'s dict; missing metrics print as "-", and a line
    counts the failures.
    """
    rows = [(method, result)]
    if "mixture" in result:
        rows.append(("Mixture", result["mixture"]))
    lines: list[str] = []
    for name in result["overall"]:
        if lines:
            lines.append("")
        lines.append(f"{name}:")
        lines.append("| method | " + " | ".join(_HEADERS[m] for m in METRICS) + " |")
        lines.append("|---|" + "---:|" * len(METRICS))
        for label, res in rows:
            cells = []
            for metric in METRICS:
                v = res["overall"].get(name, {}).get(metric)
                cells.append("-" if v is None else _FORMATS[metric].format(v))
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    for label, res in rows:
        if res["failures"]:
            counts: dict[str, int] = {}
            for f in res["failures"]:
                counts[f["metric"]] = counts.get(f["metric"], 0) + 1
            text = ", ".join(f"{k}: {v}" for k, v in counts.items())
            lines.append(
                f"{label}: {len(res['failures'])} value(s) could not be computed ({text}); see the JSON 'failures'"
            )
    return "\n".join(lines)
