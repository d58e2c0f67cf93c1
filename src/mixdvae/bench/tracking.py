"""``mixdvae bench tracking``: Table 2 of the paper (paper-results.md) on our data.

Sets: MOT17 train ground truth with the simulated detector, and MOT15 train with its real public
detections; T = 60, 120, 300 (stride 40, 60, 150); N = 3 sources; both protocols (standard:
hypothesis id = source index; paper: the original labelling, blind to identity switches). Methods:
MixDVAE (default and reference presets), VKF, Deep AR, Kalman + Hungarian. Also a speed line:
seconds per 128 windows of T = 60 at 70 VEM iterations, and evaluation seconds for them.
"""

from __future__ import annotations

import dataclasses
import logging
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from mixdvae.data.windows import WindowSet, load_windows, make_windows, save_windows
from mixdvae.errors import DataFormatError
from mixdvae.metrics.mot import evaluate_windows
from mixdvae.tracking.presets import PRESETS
from mixdvae.tracking.track import track_windows

__all__ = ["BenchSpec", "run_tracking_bench", "format_tracking_table", "time_tracking"]

log = logging.getLogger(__name__)

STRIDES = {60: 40, 120: 60, 300: 150}
ROWS = (("Kalman", "kalman", "default"), ("VKF", "vkf", "default"), ("Deep AR", "deep-ar", "default"),
        ("MixDVAE (reference)", "mixdvae", "reference"), ("MixDVAE", "mixdvae", "default"))


@dataclass(frozen=True)
class BenchSpec:
    mot17_dir: Path
    mot15_dir: Path
    lengths: tuple[int, ...] = (60, 120, 300)
    sources: int = 3
    seed: int = 0
    max_windows: int | None = None
    methods: tuple[tuple[str, str, str], ...] = ROWS
    protocols: tuple[str, ...] = ("standard", "paper")
    cache_dir: Path | None = None
    device: str = "cpu"


def _subset(ws: WindowSet, n: int | None, seed: int) -> WindowSet:
    if n is None or len(ws.gt) <= n:
        return ws
    idx = np.sort(np.random.default_rng(seed).choice(len(ws.gt), n, replace=False))
    arrays = {f.name: getattr(ws, f.name)[idx] for f in dataclasses.fields(ws) if f.name != "recipe"}
    return dataclasses.replace(ws, **arrays)


def bench_windows(spec: BenchSpec, set_name: str, length: int) -> WindowSet | None:
    """The windows of one set and length (cached as .npz); None when the set has none."""
    root, detector = (spec.mot17_dir, "simulated") if set_name == "MOT17" else (spec.mot15_dir, "file")
    cache = None if spec.cache_dir is None else spec.cache_dir / f"{set_name}_T{length}_N{spec.sources}_s{spec.seed}.npz"
    if cache is not None and cache.is_file():
        ws = load_windows(cache)
    else:
        if not root.is_dir():
            raise DataFormatError(f"{root}: MOTChallenge folder not found")
        seqs = sorted(p for p in root.iterdir() if (p / "seqinfo.ini").is_file())
        ws = make_windows(seqs, length, spec.sources, STRIDES.get(length, length // 2), spec.seed, detector)
        if len(ws.gt) == 0:
            return None
        if cache is not None:
            save_windows(cache, ws)
    return _subset(ws, spec.max_windows, spec.seed)


def _percent_row(overall: dict, total: int) -> dict:
    row = dict(overall)
    for key in ("IDS", "FP", "FN"):
        row[f"%{key}"] = 100.0 * overall[key] / max(total, 1)
    return row


def run_tracking_bench(spec: BenchSpec, progress: bool = False, on_cell: Callable[[dict], None] | None = None) -> dict:
    """Run every (set, length, method) and score it in every protocol.  Returns a JSON-ready dict;
    ``on_cell`` is called with the result so far after every (set, length) (the CLI saves the JSON
    there, so an interrupted run keeps the cells it finished)."""
    out: dict = {"sets": {}, "spec": {"lengths": list(spec.lengths), "sources": spec.sources, "seed": spec.seed,
                                      "max_windows": spec.max_windows,
                                      "detectors": {"MOT17": "simulated (mixdvae.data.detector defaults)",
                                                    "MOT15": "public det.txt"}}}
    for set_name in ("MOT17", "MOT15"):
        out["sets"][set_name] = {}
        for T in spec.lengths:
            ws = bench_windows(spec, set_name, T)
            key = f"T={T}"
            if ws is None:
                out["sets"][set_name][key] = {"windows": 0, "note": f"no windows of length {T} in {set_name}"}
                log.info("%s T=%d: no windows", set_name, T)
                continue
            entry = {"windows": int(len(ws.gt)), "rows": []}
            total = int(np.prod(ws.gt.shape[:3]))
            for label, method, preset in spec.methods:
                t0 = time.perf_counter()
                res = track_windows(ws, method, PRESETS[preset], device=spec.device, seed=spec.seed, progress=progress)
                seconds = time.perf_counter() - t0
                row = {"method": label, "preset": preset, "seconds": seconds}
                for protocol in spec.protocols:
                    sc = evaluate_windows(res.boxes, ws.gt, eta=res.eta, det_gt_index=ws.det_gt_index, protocol=protocol)
                    row[protocol] = _percent_row(sc.overall, total)
                entry["rows"].append(row)
                log.info("%s %s %s: %s", set_name, key, label, row.get("standard"))
            out["sets"][set_name][key] = entry
            if on_cell is not None:
                on_cell(out)
    return out


def time_tracking(ws: WindowSet, repeats: int = 3, iterations: int = 70, device: str = "cpu") -> dict:
    """Median seconds to track 128 windows with MixDVAE at ``iterations`` fixed iterations, and
    to evaluate them; also the same for VKF and Kalman."""
    ws = _subset(ws, 128, 0)
    timing: dict = {"windows": int(len(ws.gt)), "length": int(ws.gt.shape[1]), "iterations": iterations}
    fixed = dataclasses.replace(PRESETS["default"], vem=dataclasses.replace(PRESETS["default"].vem, iterations=iterations, tol=None))
    for label, method in (("mixdvae", "mixdvae"), ("vkf", "vkf"), ("kalman", "kalman")):
        runs, evals = [], []
        for _ in range(repeats):
            t0 = time.perf_counter()
            res = track_windows(ws, method, fixed, device=device)
            runs.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            evaluate_windows(res.boxes, ws.gt, eta=res.eta, det_gt_index=ws.det_gt_index, protocol="standard")
            evals.append(time.perf_counter() - t0)
        timing[label] = {"track_seconds_median": statistics.median(runs), "eval_seconds_median": statistics.median(evals),
                         "track_seconds_all": runs}
    timing["reference_code_seconds"] = 53.5
    timing["speedup_vs_reference_code"] = 53.5 / timing["mixdvae"]["track_seconds_median"]
    return timing


def _fmt(v, digits=1) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    return str(v)


def format_tracking_table(result: dict, protocol: str) -> str:
    """Markdown in the layout of paper-results.md Table 2, one block per set."""
    lines = []
    for set_name, per_length in result["sets"].items():
        lines.append(f"\n### {set_name} ({result['spec']['detectors'][set_name]}), {protocol} protocol\n")
        lines.append("| Set | Method | MOTA↑ | MOTP↑ | IDF1↑ | #IDS↓ | %IDS↓ | MT↑ | ML↓ | #FP↓ | %FP↓ | #FN↓ | %FN↓ |")
        lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for key, entry in per_length.items():
            if not entry.get("rows"):
                lines.append(f"| {key} | ({entry.get('note', 'no windows')}) |" + " |" * 11)
                continue
            for row in entry["rows"]:
                r = row[protocol]
                lines.append(
                    f"| {key} ({entry['windows']} w) | {row['method']} | {_fmt(r['MOTA'])} | {_fmt(r['MOTP'])} | {_fmt(r['IDF1'])} "
                    f"| {r['IDS']} | {_fmt(r['%IDS'])} | {r['MT']} | {r['ML']} | {r['FP']} | {_fmt(r['%FP'])} | {r['FN']} | {_fmt(r['%FN'])} |"
                )
    return "\n".join(lines)
