"""On a CUDA machine: check the GPU path and record tracking and separation throughput.

Usage:
    python benchmarks/gpu_check.py [--windows 4096] [--length 300] [--sources 3] [--chunk-size 4096]
                                   [--mixtures 64] [--processes 1] [--repeats 3] [--batch-sizes 256,4096]
                                   [--json OUT.json]

Steps: (1) one tracking chunk and one separation on ``cuda`` and on the CPU: both must run (a
tensor left on the wrong device raises) and give finite results; their differences are printed,
and the mean box difference must stay under 10 px (CUDA and CPU generators draw different samples
of z, so the results are close, not equal);
(2) ``mixdvae bench speed`` on ``cuda`` with 4,096 windows of T = 300 (N = 3) in one chunk, which
is one VEM batch (on an H200 about 9 s, docs/scale.md), and the separation case, each process on
its own GPU (``--processes 2`` needs 2 GPUs); prints the table and writes JSON; (3) the same windows tracked by Kalman + Hungarian, VKF and MixDVAE at VEM batch sizes 256 and
4,096 (``--batch-sizes``; docs/scale.md). Without CUDA it exits 2 with one line and does nothing.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--windows", type=int, default=4096)
    p.add_argument("--length", type=int, default=300)
    p.add_argument("--sources", type=int, default=3)
    p.add_argument("--chunk-size", type=int, default=4096, help="windows per chunk, each one VEM batch")
    p.add_argument("--mixtures", type=int, default=64)
    p.add_argument("--processes", default="1")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch-sizes", default="256,4096",
                   help="VEM batch sizes of the per-method timing (step 3); empty to skip it")
    p.add_argument("--json", default=None)
    return p


def time_batch_sizes(windows: int, length: int, sources: int, batch_sizes: list[int]) -> list[dict]:
    """Step 3: seconds of ``track_windows`` on cuda for Kalman + Hungarian (MixDVAE's
    initialisation, on the CPU), VKF and MixDVAE at each VEM batch size (one run after a warm-up)."""
    import dataclasses

    from mixdvae.tracking.presets import get_preset
    from mixdvae.tracking.synthetic import synthetic_windows
    from mixdvae.tracking.track import track_windows

    ws = synthetic_windows(windows, length, sources, seed=0)
    warm = synthetic_windows(8, length, sources, seed=1)
    rows = []
    for batch in batch_sizes:
        config = dataclasses.replace(get_preset("default"), batch_size=batch)
        for method in ("kalman", "vkf", "mixdvae"):
            track_windows(warm, method, config, None, "cuda", 0)
            t0 = time.perf_counter()
            track_windows(ws, method, config, None, "cuda", 0)
            torch.cuda.synchronize()
            seconds = time.perf_counter() - t0
            rows.append({"batch_size": batch, "method": method, "seconds": seconds, "windows_per_s": windows / seconds})
            print(f"{windows} windows of T = {length}, VEM batch {batch}: {method} {seconds:.2f} s "
                  f"({windows / seconds:.0f} windows/s)", flush=True)
    return rows


def check_devices_agree() -> dict:
    """The same small jobs on cpu and cuda; returns the largest differences."""
    from mixdvae.separation.separate import Separator
    from mixdvae.tracking.presets import get_preset
    from mixdvae.tracking.synthetic import synthetic_windows
    from mixdvae.tracking.track import track_windows

    ws = synthetic_windows(16, 60, 3, seed=0)
    config = get_preset("default")
    boxes = {d: track_windows(ws, "mixdvae", config, None, d, 0).boxes for d in ("cpu", "cuda")}
    t = np.arange(99 * 256) / 16000.0
    mix = (0.3 * np.sin(2 * np.pi * 220 * t) + 0.3 * np.sin(2 * np.pi * 2500 * t)).astype(np.float32)[None]
    wav = {d: Separator(device=d).separate(mix).waveforms for d in ("cpu", "cuda")}
    finite = all(np.isfinite(a).all() for a in (*boxes.values(), *wav.values()))
    return {"finite": bool(finite), "tracking_mean_abs_px": float(np.abs(boxes["cpu"] - boxes["cuda"]).mean()),
            "separation_max_abs": float(np.abs(wav["cpu"] - wav["cuda"]).max())}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device on this machine (torch.cuda.is_available() is False); nothing to check",
              file=sys.stderr)
        return 2
    from mixdvae.bench.speed import SpeedSpec, format_speed_table, run_speed_bench
    from mixdvae.utils.io import write_json

    t0 = time.perf_counter()
    agree = check_devices_agree()
    print(f"cpu vs cuda: tracking boxes differ by {agree['tracking_mean_abs_px']:.3g} px on average, "
          f"separated waveforms by {agree['separation_max_abs']:.2e} ({time.perf_counter() - t0:.1f} s)")
    spec = SpeedSpec(processes=tuple(int(p) for p in args.processes.split(",")), windows=args.windows,
                     chunk_size=args.chunk_size, tracking_cases=((args.length, args.sources),),
                     mixtures=args.mixtures, mixture_chunk=max(1, args.mixtures // 4), repeats=args.repeats,
                     device="cuda", cases=("tracking", "separation") if args.mixtures else ("tracking",))
    result = run_speed_bench(spec)
    result["devices_agree"] = agree
    result["gpu"] = torch.cuda.get_device_name(0)
    print(f"{result['gpu']}:")
    print(format_speed_table(result))
    batch_sizes = [int(b) for b in args.batch_sizes.split(",") if b.strip()]
    if batch_sizes:
        result["batch_sizes"] = time_batch_sizes(args.windows, args.length, args.sources, batch_sizes)
    if args.json:
        write_json(args.json, result)
        print(f"wrote {args.json}", file=sys.stderr)
    ok = agree["finite"] and agree["tracking_mean_abs_px"] < 10.0
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
