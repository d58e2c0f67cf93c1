"""``mixdvae bench separation``: Table 3 of the paper (paper-results.md) on our data.

Test material, never seen in training: speech from LibriSpeech test-other (7 unseen speakers), and
real flute recordings (Medley-solos-DB flute clips and the TinySOL flute note), concatenated in
sorted order into one signal so that segments of any length T exist (the clips are 3 s long, a
T = 300 segment is 4.8 s; a segment may span two clips). Mixtures: ``num`` seeded speech + flute
pairs per (T, speech-to-flute ratio), active segments only (:func:`mixdvae.data.mixtures.make_mixtures`).
Every method separates exactly the same mixtures, one chunk of T frames each, and is scored by the
same metrics; also the seconds per mixture and a speed line (100 mixtures of T = 100 at 70
iterations).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from mixdvae.bench.separation_targets import separation_targets
from mixdvae.data.audio import SAMPLE_RATE, list_audio_files, read_audio, write_audio
from mixdvae.data.mixtures import Mixtures, load_mixtures, make_mixtures, save_mixtures
from mixdvae.errors import DataFormatError
from mixdvae.metrics.audio import METRICS, evaluate_mixture, evaluate_separation
from mixdvae.separation.presets import PRESETS
from mixdvae.separation.separate import Separator

__all__ = ["SeparationBenchSpec", "ROWS", "run_separation_bench", "format_separation_table", "time_separation",
           "bench_mixtures", "real_flute_signal", "per_mixture_columns"]

log = logging.getLogger(__name__)

ROWS = (
    ("Oracle IBM", "oracle-ibm", "default"),
    ("Oracle Wiener", "oracle-wiener", "default"),
    ("DVAE-init", "dvae-init", "default"),
    ("Deep AR", "deep-ar", "default"),
    ("Vanilla NMF", "nmf", "default"),
    ("Temporal NMF", "temporal-nmf", "default"),
    ("MixDVAE (reference)", "mixdvae", "reference"),
    ("MixDVAE", "mixdvae", "default"),
)
"""(label, method, preset) of every row after the "Mixture" row."""


@dataclass(frozen=True)
class SeparationBenchSpec:
    speech_dir: Path
    flute_files: tuple[Path, ...]
    lengths: tuple[int, ...] = (50, 100, 300)
    ratios_db: tuple[float, ...] = (-5.0, 0.0)
    num: int = 20
    seed: int = 0
    methods: tuple[tuple[str, str, str], ...] = ROWS
    metrics: tuple[str, ...] = METRICS
    cache_dir: Path | None = None
    device: str = "cpu"
    iterations: int | None = None


def real_flute_signal(files: tuple[Path, ...], out: Path) -> Path:
    """Concatenate the real flute recordings (sorted) into one 16 kHz wav at ``out`` (kept if present)."""
    if out.is_file():
        return out
    if not files:
        raise DataFormatError("no real flute recordings found for the separation benchmark")
    parts = [read_audio(f) for f in sorted(files)]
    parts = [p / max(np.abs(p).max(), 1e-8) * 0.5 for p in parts]  # one level for every clip
    write_audio(out, np.concatenate(parts), SAMPLE_RATE)
    return out


def bench_mixtures(spec: SeparationBenchSpec, length: int, ratio_db: float, num: int | None = None) -> Mixtures:
    """The mixtures of one (T, ratio) cell, cached as .npz when ``cache_dir`` is set."""
    num = spec.num if num is None else num
    cache = None if spec.cache_dir is None else spec.cache_dir / f"mix_T{length}_r{ratio_db:+.0f}_n{num}_s{spec.seed}.npz"
    if cache is not None and cache.is_file():
        return load_mixtures(cache)
    work = spec.cache_dir if spec.cache_dir is not None else Path("runs") / "bench_audio"
    flute_dir = work / "real_flute"
    real_flute_signal(spec.flute_files, flute_dir / "real_flute_concatenated.wav")
    mix = make_mixtures(spec.speech_dir, flute_dir, [ratio_db], length, num, spec.seed)
    if cache is not None:
        save_mixtures(cache, mix)
    return mix


def _config(preset: str, length: int, iterations: int | None):
    cfg = dataclasses.replace(PRESETS[preset], chunk_frames=length, overlap_frames=0)
    if iterations is not None:
        cfg = dataclasses.replace(cfg, vem=dataclasses.replace(cfg.vem, iterations=iterations))
    return cfg


def per_mixture_columns(scores: dict, names: list[str], metrics: tuple[str, ...]) -> dict[str, dict[str, list]]:
    """The per-mixture values of :func:`mixdvae.metrics.audio.evaluate_separation` as one column per
    source and metric, ``{name: {metric: [value or None per mixture]}}`` (paired statistics between
    the rows of a cell, :mod:`mixdvae.bench.separation_targets`)."""
    return {n: {m: [row[n].get(m) for row in scores["per_mixture"]] for m in metrics} for n in names}


def run_separation_bench(spec: SeparationBenchSpec, progress: bool = False,
                         on_cell: Callable[[dict], None] | None = None) -> dict:
    """Every (T, ratio, method): separate, score, time.  Returns a JSON-ready dict: per cell, one row
    per method with the mean scores ("overall"), the per-mixture values ("per_mixture") and the
    seconds per mixture; and "targets", the issue's targets with paired statistics
    (:func:`mixdvae.bench.separation_targets.separation_targets`); "complete" is False until every
    cell is done. ``on_cell`` is called with the result so far after every cell (the CLI saves the
    JSON there, so an interrupted run keeps its finished cells)."""
    out: dict = {"complete": False, "cells": {}, "spec": {
        "lengths": list(spec.lengths), "ratios_db": list(spec.ratios_db), "num": spec.num, "seed": spec.seed,
        "speech": str(spec.speech_dir), "flute": [str(f) for f in spec.flute_files], "metrics": list(spec.metrics),
        "iterations": spec.iterations}}
    for T in spec.lengths:
        for ratio in spec.ratios_db:
            mix = bench_mixtures(spec, T, ratio)
            names = list(mix.source_names)
            key = f"T={T}, {ratio:+.0f} dB"
            rows = []
            mixture_scores = evaluate_mixture(mix.mixture, mix.sources, names, metrics=spec.metrics)
            rows.append({"method": "Mixture", "preset": None, "seconds_per_mixture": 0.0,
                         "overall": mixture_scores["overall"], "failures": len(mixture_scores["failures"]),
                         "per_mixture": per_mixture_columns(mixture_scores, names, spec.metrics)})
            for label, method, preset in spec.methods:
                sep = Separator(names, method, _config(preset, T, spec.iterations), device=spec.device, seed=spec.seed)
                t0 = time.perf_counter()
                res = sep.separate(mix.mixture, mix.sources if sep.needs_references else None, progress=progress)
                seconds = time.perf_counter() - t0
                scores = evaluate_separation(res.waveforms, mix.sources, names, metrics=spec.metrics)
                rows.append({"method": label, "preset": preset, "seconds_per_mixture": seconds / len(mix),
                             "overall": scores["overall"], "failures": len(scores["failures"]),
                             "per_mixture": per_mixture_columns(scores, names, spec.metrics)})
                log.info("%s %s: %s", key, label, scores["overall"])
            out["cells"][key] = {"mixtures": len(mix), "length": T, "ratio_db": ratio, "rows": rows}
            if "si_sdr" in spec.metrics:
                out["targets"] = separation_targets(out)
            if on_cell is not None:
                on_cell(out)
    out["complete"] = True
    return out


def time_separation(spec: SeparationBenchSpec, num: int = 100, length: int = 100, iterations: int = 70,
                    repeats: int = 3) -> dict:
    """Median seconds to separate ``num`` mixtures of T = ``length`` with MixDVAE (default preset) at
    ``iterations`` iterations."""
    mix = bench_mixtures(spec, length, spec.ratios_db[0], num=num)
    sep = Separator(list(mix.source_names), "mixdvae", _config("default", length, iterations), device=spec.device)
    runs = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        sep.separate(mix.mixture)
        runs.append(time.perf_counter() - t0)
    runs.sort()
    return {"mixtures": len(mix), "length": length, "iterations": iterations, "seconds_median": runs[len(runs) // 2],
            "seconds_all": runs, "target_seconds": 60.0}


_COLS = (("rmse", "RMSE↓", "{:.4f}"), ("si_sdr", "SI-SDR↑", "{:.2f}"), ("pesq", "PESQ↑", "{:.2f}"), ("estoi", "ESTOI↑", "{:.3f}"))


def format_separation_table(result: dict) -> str:
    """Markdown in the layout of paper-results.md Table 3 (plus ESTOI and seconds per mixture)."""
    lines = []
    metrics = result["spec"]["metrics"]
    cols = [c for c in _COLS if c[0] in metrics]
    first = next(iter(result["cells"].values()), None)
    if first is None:
        return "(no cells)"
    names = list(first["rows"][0]["overall"])
    header = "| Set | Method | " + " | ".join(f"{n.capitalize()} {c[1]}" for n in names for c in cols) + " | s/mixture |"
    lines.append(header)
    lines.append("|---|---|" + "---|" * (len(names) * len(cols) + 1))
    for key, cell in result["cells"].items():
        for row in cell["rows"]:
            cells = []
            for n in names:
                for metric, _, fmt in cols:
                    v = row["overall"].get(n, {}).get(metric)
                    cells.append("-" if v is None else fmt.format(v))
            label = row["method"] + (f" ({row['failures']} failed)" if row.get("failures") else "")
            lines.append(f"| {key} ({cell['mixtures']} mix) | {label} | " + " | ".join(cells)
                         + f" | {row['seconds_per_mixture']:.3f} |")
    return "\n".join(lines)


def default_flute_files(audio_dir: Path) -> tuple[Path, ...]:
    """The real flute recordings of ../shared/data/audio (Medley-solos-DB flute, TinySOL flute)."""
    files = []
    for sub in ("music/medley_solos_db/flute", "music/tinysol/flute"):
        d = audio_dir / sub
        if d.is_dir():
            files.extend(list_audio_files(d))
    return tuple(sorted(files))
