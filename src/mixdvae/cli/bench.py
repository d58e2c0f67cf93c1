"""``mixdvae bench ...``: paper-layout benchmark tables, printed as markdown and saved as JSON."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mixdvae.utils.device import resolve_device
from mixdvae.utils.io import write_json

__all__ = ["add_parser"]

_SHARED = Path("..") / "shared" / "data"


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="Benchmarks: the paper's tables (tracking, separation), whole sequences, speed.")
    bench_sub = p.add_subparsers(dest="bench_command", metavar="WHAT", parser_class=type(p))
    bench_sub.required = True
    t = bench_sub.add_parser("tracking", help="Table 2: MixDVAE, VKF, Deep AR, Kalman on MOT17 and MOT15 windows.")
    t.add_argument("--json", type=Path, default=None, help="save the full results here (rewritten after every set and length)")
    t.add_argument("--mot17-dir", type=Path, default=_SHARED / "MOT17" / "train")
    t.add_argument("--mot15-dir", type=Path, default=_SHARED / "MOT15" / "train")
    t.add_argument("--lengths", default="60,120,300", help="comma-separated window lengths")
    t.add_argument("--max-windows", type=int, default=None, help="subsample each set to this many windows")
    t.add_argument("--cache-dir", type=Path, default=Path("runs") / "bench_windows")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--no-speed", action="store_true", help="skip the speed line")
    t.add_argument("--device", default="auto")
    t.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)
    t.set_defaults(func=run_bench_tracking)

    s = bench_sub.add_parser("separation", help="Table 3: MixDVAE and the audio baselines on speech + real flute mixtures.")
    s.add_argument("--json", type=Path, default=None, help="save the full results here (rewritten after every cell)")
    s.add_argument("--audio-dir", type=Path, default=_SHARED / "audio")
    s.add_argument("--lengths", default="50,100,300", help="comma-separated sequence lengths T in STFT frames")
    s.add_argument("--ratios", default="-5,0", help="comma-separated speech-to-flute ratios in dB")
    s.add_argument("--num", type=int, default=20, help="mixtures per (T, ratio) cell (default: 20)")
    s.add_argument("--methods", default=None, help="comma-separated methods to run (default: all rows)")
    s.add_argument("--metrics", default="rmse,si_sdr,pesq,estoi")
    s.add_argument("--iterations", type=int, default=None, help="VEM iterations (default: each preset's)")
    s.add_argument("--cache-dir", type=Path, default=Path("runs") / "bench_audio")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--no-speed", action="store_true", help="skip the speed line (100 mixtures, T = 100, 70 iterations)")
    s.add_argument("--device", default="auto")
    s.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None)
    s.set_defaults(func=run_bench_separation)

    v = bench_sub.add_parser("speed", help="Throughput (windows/s, mixtures/s) versus the number of processes.")
    v.add_argument("--json", type=Path, default=None, help="save the full results here")
    v.add_argument("--processes", default="1,2", help="comma-separated process counts (default: 1,2)")
    v.add_argument("--windows", type=int, default=32, help="windows per tracking case (default: 32)")
    v.add_argument("--chunk-size", type=int, default=8, help="windows per chunk (default: 8)")
    v.add_argument("--cases", default="60x3,60x10,300x3,300x10", help="tracking cases TxN (default: all four)")
    v.add_argument("--mixtures", type=int, default=8, help="mixtures in the separation case; 0 skips it (default: 8)")
    v.add_argument("--mixture-frames", type=int, default=100, help="STFT frames per mixture (default: 100)")
    v.add_argument("--iterations", type=int, default=None, help="a fixed number of VEM iterations, no early stop (default: each preset's, with its stopping rule)")
    v.add_argument("--repeats", type=int, default=3,
                   help="rounds, each launching every process count once; medians are reported (default: 3)")
    v.add_argument("--threads", default="1", help="torch threads per process, or auto for cores // P (default: 1)")
    v.add_argument("--device", default="cpu", help="cpu, cuda or auto (default: cpu); on CUDA rank r uses cuda:r")
    v.set_defaults(func=run_bench_speed)

    from mixdvae.cli.bench_sequences import add_sequences_parser  # whole MOTChallenge sequences

    add_sequences_parser(bench_sub)


def run_bench_tracking(args: argparse.Namespace) -> int:
    from mixdvae.bench.tracking import BenchSpec, bench_windows, format_tracking_table, run_tracking_bench, time_tracking
    from mixdvae.errors import ConfigError

    device = str(resolve_device(args.device))
    try:
        lengths = tuple(int(x) for x in str(args.lengths).split(",") if x.strip())
    except ValueError as err:
        raise ConfigError(f"--lengths '{args.lengths}': expected comma-separated integers, e.g. 60,120,300") from err
    if not lengths or min(lengths) < 1:
        raise ConfigError(f"--lengths '{args.lengths}': expected window lengths >= 1")
    if args.max_windows is not None and args.max_windows < 1:
        raise ConfigError(f"--max-windows = {args.max_windows}: must be >= 1")
    spec = BenchSpec(args.mot17_dir, args.mot15_dir, lengths, 3, args.seed, args.max_windows, cache_dir=args.cache_dir, device=device)
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    # the JSON is rewritten after every (set, length), so an interrupted run keeps what it finished
    result = run_tracking_bench(spec, progress, on_cell=None if not args.json else (lambda r: write_json(args.json, r)))
    for protocol in spec.protocols:
        print(format_tracking_table(result, protocol))
    if not args.no_speed:
        ws = bench_windows(dataclass_replace(spec, max_windows=None), "MOT17", 60)
        result["speed"] = time_tracking(ws, device=device)
        s = result["speed"]
        print(f"\nspeed: {s['windows']} windows x T = {s['length']} x {s['iterations']} iterations: MixDVAE "
              f"{s['mixdvae']['track_seconds_median']:.2f} s (median of 3; the original code: about 53.5 s, "
              f"{s['speedup_vs_reference_code']:.0f}x), VKF {s['vkf']['track_seconds_median']:.2f} s, "
              f"Kalman {s['kalman']['track_seconds_median']:.2f} s; evaluation {s['mixdvae']['eval_seconds_median']:.3f} s")
    if args.json:
        write_json(args.json, result)
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


def run_bench_separation(args: argparse.Namespace) -> int:
    from mixdvae.bench.separation import (
        ROWS, SeparationBenchSpec, default_flute_files, format_separation_table, run_separation_bench, time_separation,
    )
    from mixdvae.errors import ConfigError, DataFormatError

    device = str(resolve_device(args.device))
    try:
        lengths = tuple(int(x) for x in str(args.lengths).split(",") if x.strip())
        ratios = tuple(float(x) for x in str(args.ratios).split(",") if x.strip())
    except ValueError as err:
        raise ConfigError(f"--lengths / --ratios: {err}") from err
    rows = ROWS
    if args.methods:
        wanted = [m.strip() for m in args.methods.split(",") if m.strip()]
        known = {m for _, m, _ in ROWS} | {label for label, _, _ in ROWS}
        bad = [m for m in wanted if m not in known]
        if bad:
            raise ConfigError(f"--methods: unknown {bad} (choose from {sorted({m for _, m, _ in ROWS})})")
        rows = tuple(r for r in ROWS if r[1] in wanted or r[0] in wanted)
    speech = args.audio_dir / "speech" / "librispeech" / "test-other"
    if not speech.is_dir():
        raise DataFormatError(f"{speech}: speech test folder not found (--audio-dir)")
    spec = SeparationBenchSpec(speech, default_flute_files(args.audio_dir), lengths, ratios, args.num, args.seed, rows,
                               tuple(m.strip() for m in args.metrics.split(",") if m.strip()), args.cache_dir, device,
                               args.iterations)
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    # the JSON is rewritten after every cell, so an interrupted run keeps the cells it finished
    save = None if not args.json else (lambda partial: write_json(args.json, partial))
    result = run_separation_bench(spec, progress, on_cell=save)
    print(format_separation_table(result))
    if "targets" in result:
        from mixdvae.bench.separation_targets import format_separation_targets

        print("\nTargets (SI-SDR; MixDVAE = the default preset; paired over the same mixtures):\n")
        print(format_separation_targets(result["targets"]))
    if not args.no_speed:
        s = time_separation(spec)
        result["speed"] = s
        print(f"\nspeed: {s['mixtures']} mixtures x T = {s['length']} x {s['iterations']} iterations: MixDVAE "
              f"{s['seconds_median']:.2f} s (median of {len(s['seconds_all'])}; target < 60 s)")
    if args.json:
        write_json(args.json, result)
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


def run_bench_speed(args: argparse.Namespace) -> int:
    from mixdvae.bench.speed import SpeedSpec, format_speed_table, run_speed_bench
    from mixdvae.errors import ConfigError

    device = str(resolve_device(args.device))
    try:
        processes = tuple(int(x) for x in str(args.processes).split(",") if x.strip())
        threads = 0 if str(args.threads).strip().lower() == "auto" else int(args.threads)
        cases = tuple(tuple(int(v) for v in c.lower().split("x")) for c in str(args.cases).split(",") if c.strip())
    except ValueError as err:
        raise ConfigError(f"--processes / --cases / --threads: {err}") from err
    if any(len(c) != 2 for c in cases):
        raise ConfigError(f"--cases {args.cases}: expected TxN pairs such as 60x3")
    spec = SpeedSpec(processes=processes, windows=args.windows, chunk_size=args.chunk_size, tracking_cases=cases,
                     mixtures=args.mixtures, mixture_frames=args.mixture_frames, iterations=args.iterations,
                     repeats=args.repeats, threads=threads, device=device,
                     cases=("control", "tracking") + (("separation",) if args.mixtures > 0 else ()))
    result = run_speed_bench(spec)
    print(format_speed_table(result))
    if args.json:
        write_json(args.json, result)
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


def dataclass_replace(obj, **changes):
    import dataclasses

    return dataclasses.replace(obj, **changes)
