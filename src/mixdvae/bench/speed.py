"""``mixdvae bench speed``: batch-inference throughput versus the number of processes.

For P in ``processes`` the benchmark spawns P workers (``torch.multiprocessing``, a gloo process
group on loopback, the same :func:`~mixdvae.utils.distributed.shard` / gather path as
``torchrun -m mixdvae track``). Thread policy: each worker uses ``threads`` torch threads, 1 by
default (these models are small: one thread per process is fastest, and the scaling then comes
from the processes alone), or ``max(1, cores // P)`` with ``threads=0`` (``--threads auto``). Per case and repeat:
barrier, start the clock, each rank tracks (separates) its chunks of the same synthetic data,
rank 0 gathers the results, barrier, stop the clock. Startup, data synthesis and one warm-up chunk
are not timed. The repeats are rounds that alternate P = 1, 2, 1, 2, ... (one launch each), so a
change of load on a shared machine hits both. Reported per case: the throughput

    windows/s (or mixtures/s) = items / (median seconds over rounds),

the speedup S_P = median over rounds of (seconds_1 / seconds_P) within the round, and the scaling
efficiency E_P = S_P / P (1 = perfect).

Cases: two controls without mixdvae, a pure-Python loop and a loop of batched torch kernels
(4 x 4 solves, elementwise maths: what the VEM runs); their speedups are what the machine's cores
give at the moment to scalar and to vectorised work (on a shared or virtual machine they show how
much of a low efficiency is the machine's); tracking synthetic scenes (:mod:`mixdvae.tracking.synthetic`) with T = 60, 300 and N = 3, 10
(MixDVAE, default preset, shipped prior); separation of synthetic two-tone mixtures of T frames
(MixDVAE, default preset, shipped speech and flute priors).
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mixdvae.errors import ConfigError

__all__ = ["SpeedSpec", "run_speed_bench", "format_speed_table", "TRACKING_CASES"]

_BLAS_THREADS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")

TRACKING_CASES = ((60, 3), (60, 10), (300, 3), (300, 10))
"""(T, N) of the tracking cases."""


@dataclass(frozen=True)
class SpeedSpec:
    """What ``mixdvae bench speed`` times.

    Attributes:
        processes: numbers of processes to compare (the first is the baseline of the efficiency).
        windows: windows per tracking case; chunk_size: windows per chunk (the unit dealt to ranks).
        tracking_cases: (T, N) pairs.
        mixtures: mixtures in the separation case (0 skips it); mixture_frames: their length T;
            mixture_chunk: mixtures per chunk.
        iterations: a fixed number of VEM iterations, no early stop (None: each preset's, with its stopping rule).
        repeats: rounds, each launching every P once (medians over rounds are reported).
        threads: torch threads per process; 0 means max(1, cores // P).
        device: ``cpu`` or ``cuda``/``cuda:N`` (then each rank takes cuda:rank).
    """

    processes: tuple[int, ...] = (1, 2)
    windows: int = 32
    chunk_size: int = 8
    tracking_cases: tuple[tuple[int, int], ...] = TRACKING_CASES
    mixtures: int = 8
    mixture_frames: int = 100
    mixture_chunk: int = 2
    iterations: int | None = None
    repeats: int = 3
    threads: int = 1
    device: str = "cpu"
    seed: int = 0
    cases: tuple[str, ...] = field(default=("control", "tracking", "separation"))

    def __post_init__(self) -> None:
        for name in ("windows", "chunk_size", "mixture_frames", "mixture_chunk", "repeats"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(f"--{name.replace('_', '-')} = {value!r}: must be an integer >= 1")
        if not self.processes or any(p < 1 for p in self.processes):
            raise ConfigError(f"--processes {list(self.processes)}: expected integers >= 1")
        if isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 0:
            raise ConfigError(f"--threads = {self.threads!r}: must be an integer >= 1, or auto")


def _cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS
        return os.cpu_count() or 1


def _mixtures(count: int, frames: int, seed: int) -> np.ndarray:
    """Two tones with random pitch and phase plus a little noise, 16 kHz.  -> (count, (frames - 1) · 256)"""
    rng = np.random.default_rng(seed)
    length = (frames - 1) * 256
    t = np.arange(length) / 16000.0
    f = rng.uniform([150, 1500], [400, 4000], size=(count, 2))
    phase = rng.uniform(0, 2 * np.pi, size=(count, 2))
    tones = 0.3 * np.sin(2 * np.pi * f[:, :, None] * t + phase[:, :, None]).sum(1)
    return (tones + 0.01 * rng.standard_normal((count, length))).astype(np.float32)


def _control_chunk(index: int, start: int, stop: int) -> int:
    """A pure-Python CPU loop (no torch, no memory traffic): what the machine's free cores allow."""
    total = 0
    for i in range((stop - start) * 1_000_000):
        total += i & 7
    return total


def _torch_control_chunk(index: int, start: int, stop: int) -> float:
    """Batched 4 x 4 solves and elementwise maths in torch (the kind of kernels the VEM runs),
    without mixdvae: what the cores give to vectorised work."""
    gen = torch.Generator().manual_seed(index)
    a = torch.randn(64, 300, 10, 4, 4, generator=gen)
    eye = 4 * torch.eye(4)
    for _ in range((stop - start) * 5):
        a = (torch.linalg.solve(a @ a.transpose(-1, -2) + eye, a) * 0.5 + a * 0.5).tanh()
    return float(a.sum())


def _tracking_chunk(windows, config, device, seed: int, index: int, start: int, stop: int) -> np.ndarray:
    from mixdvae.tracking.batch import window_slice
    from mixdvae.tracking.track import track_windows
    from mixdvae.utils.chunks import chunk_seed

    res = track_windows(window_slice(windows, start, stop), "mixdvae", config, None, device, chunk_seed(seed, index))
    return res.boxes


def _time_case(spec: SpeedSpec, n_items: int, chunk: int, compute) -> list[float]:
    """Wall seconds of each repeat: all ranks' chunks done and gathered on rank 0."""
    from mixdvae.utils.chunks import ChunkPlan
    from mixdvae.utils.distributed import barrier, gather_to_rank0, rank_and_world, shard

    rank, world = rank_and_world()
    plan = ChunkPlan(n_items, chunk)
    mine = shard(range(plan.num_chunks), rank, world)
    if mine:  # warm-up (weights loading, allocator) on one chunk, not timed
        compute(mine[0], *plan.bounds(mine[0]))
    seconds = []
    for _ in range(spec.repeats):
        barrier()
        t0 = time.perf_counter()
        out = {c: compute(c, *plan.bounds(c)) for c in mine}
        gather_to_rank0(out)
        barrier()
        seconds.append(time.perf_counter() - t0)
    return seconds


def _worker(rank: int, world: int, port: int, spec: SpeedSpec, out_dir: str) -> None:
    """One rank of the benchmark; rank 0 writes ``timings.json`` in ``out_dir``."""
    from mixdvae.utils.distributed import process_group
    from mixdvae.utils.io import write_json

    env = {"RANK": str(rank), "WORLD_SIZE": str(world), "LOCAL_RANK": str(rank), "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(port)}
    threads = spec.threads or max(1, _cores() // world)
    torch.set_num_threads(threads)
    device = torch.device(spec.device)
    with process_group(device, env=env) as device:
        timings: dict[str, Any] = {"threads_per_process": threads, "device": str(device)}
        if "control" in spec.cases:
            timings["control (pure Python loop)"] = _time_case(spec, 8, 2, _control_chunk)
            timings["control (torch kernels)"] = _time_case(spec, 8, 2, _torch_control_chunk)
        if "tracking" in spec.cases:
            from mixdvae.tracking.presets import get_preset
            from mixdvae.tracking.synthetic import synthetic_windows

            config = get_preset("default")
            # a chunk is one VEM batch (on a GPU the time per batch hardly grows with its size)
            config = dataclasses.replace(config, batch_size=max(config.batch_size, spec.chunk_size))
            if spec.iterations is not None:
                config = dataclasses.replace(config, vem=dataclasses.replace(config.vem, iterations=spec.iterations, tol=None))
            for length, sources in spec.tracking_cases:
                ws = synthetic_windows(spec.windows, length, sources, seed=spec.seed)
                compute = lambda c, a, b, ws=ws: _tracking_chunk(ws, config, device, spec.seed, c, a, b)  # noqa: E731
                timings[f"tracking T={length} N={sources}"] = _time_case(spec, spec.windows, spec.chunk_size, compute)
        if "separation" in spec.cases and spec.mixtures > 0:
            from mixdvae.separation.presets import get_preset as separation_preset
            from mixdvae.separation.separate import Separator
            from mixdvae.utils.chunks import chunk_seed

            config = separation_preset("default")
            config = dataclasses.replace(config, chunk_frames=spec.mixture_frames,
                                         batch_size=max(config.batch_size, spec.mixture_chunk))
            if spec.iterations is not None:
                config = dataclasses.replace(config, vem=dataclasses.replace(config.vem, iterations=spec.iterations, tol=None))
            separator = Separator(("speech", "flute"), "mixdvae", config, device=device, seed=spec.seed)
            mix = _mixtures(spec.mixtures, spec.mixture_frames, spec.seed)
            compute = lambda c, a, b: separator.separate(mix[a:b], seed=chunk_seed(spec.seed, c)).waveforms  # noqa: E731
            timings[f"separation T={spec.mixture_frames}"] = _time_case(spec, spec.mixtures, spec.mixture_chunk, compute)
        if rank == 0:
            write_json(Path(out_dir) / "timings.json", timings)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_speed_bench(spec: SpeedSpec) -> dict[str, Any]:
    """Time every case for every P in ``spec.processes``; returns the JSON-able results."""
    import torch.multiprocessing as mp

    if spec.device.startswith("cuda") and max(spec.processes) > max(1, torch.cuda.device_count()):
        raise ConfigError(f"--processes {max(spec.processes)}: only {torch.cuda.device_count()} CUDA device(s)")
    per_p: dict[int, dict[str, Any]] = {}
    saved = {k: os.environ.get(k) for k in _BLAS_THREADS}
    once = dataclasses.replace(spec, repeats=1)
    try:
        # rounds alternate P = 1, 2, 1, 2, ...: a change of load on a shared machine hits both alike
        for _ in range(spec.repeats):
            for world in spec.processes:
                # numpy's BLAS in the workers: the same thread count as torch (read when they import it)
                os.environ.update({k: str(spec.threads or max(1, _cores() // world)) for k in _BLAS_THREADS})
                with tempfile.TemporaryDirectory() as tmp:
                    mp.spawn(_worker, args=(world, _free_port(), once, tmp), nprocs=world, join=True)
                    got = json.loads((Path(tmp) / "timings.json").read_text())
                if world not in per_p:
                    per_p[world] = got
                else:
                    for key, value in got.items():
                        if isinstance(value, list):
                            per_p[world][key] = per_p[world][key] + value
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    base = spec.processes[0]
    cases = [k for k in per_p[base] if k.startswith(("control", "tracking", "separation"))]
    rows = []
    for case in cases:
        items, unit = {"control": (8, "loops/s"), "tracking": (spec.windows, "windows/s"),
                       "separation": (spec.mixtures, "mixtures/s")}[case.split(" ")[0]]
        row: dict[str, Any] = {"case": case, "items": items, "unit": unit, "by_processes": {}}
        for world in spec.processes:
            secs = per_p[world][case]
            median = statistics.median(secs)
            row["by_processes"][str(world)] = {
                "seconds_all": secs, "seconds_median": median, "throughput": items / median,
                "threads_per_process": per_p[world]["threads_per_process"],
            }
        base_secs = per_p[base][case]
        for world in spec.processes:
            entry = row["by_processes"][str(world)]
            # the median over rounds of the speedup within a round (paired: same load)
            ratios = [b / s for b, s in zip(base_secs, per_p[world][case])]
            entry["speedup_per_round"] = ratios
            entry["speedup"] = statistics.median(ratios)
            entry["efficiency"] = entry["speedup"] * base / world
        rows.append(row)
    return {"spec": {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(spec).items()},
            "cores": _cores(), "torch": torch.__version__, "device": per_p[base]["device"], "rows": rows}


def format_speed_table(result: dict[str, Any]) -> str:
    """Markdown: one row per case, throughput per P, speedup and efficiency of the largest P."""
    procs = [int(p) for p in result["spec"]["processes"]]
    control = next((r for r in result["rows"] if r["case"].startswith("control (torch")), None)
    head = ("| case | unit | " + " | ".join(f"P = {p}" for p in procs)
            + f" | speedup P = {procs[-1]} | efficiency | speedup / torch control's |")
    lines = [head, "|" + "---|" * (5 + len(procs))]
    for row in result["rows"]:
        by = row["by_processes"]
        last = by[str(procs[-1])]
        vs = "-" if control is None else f"{last['speedup'] / control['by_processes'][str(procs[-1])]['speedup']:.2f}"
        lines.append(f"| {row['case']} | {row['unit']} | " + " | ".join(f"{by[str(p)]['throughput']:.2f}" for p in procs)
                     + f" | {last['speedup']:.2f}x | {last['efficiency']:.0%} | {vs} |")
    lines.append(f"\n{result['cores']} cores, torch {result['torch']}, {result['device']}; median of "
                 f"{result['spec']['repeats']} rounds (speedup: median of per-round ratios); torch threads per process: "
                 f"{result['spec']['threads'] or 'cores // P'}")
    return "\n".join(lines)
