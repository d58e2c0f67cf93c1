"""Score priors or preset options on the 15 development sets that compare flute priors, and compare two
such runs per mixture (docs/separation.md, "Development sets").

The sets are those of ``benchmarks/separation_options.py`` (training-set speech with held-out flute, -5
and 0 dB; the benchmark's test speakers and real flute are never used), at the lengths the flute priors
have been compared on since stop 22. Each run scores DVAE-init and the `default` preset (one chunk of T
frames per mixture) and keeps every mixture's SI-SDR, so that two runs compare paired:

    python benchmarks/separation_devsets.py run --out runs/dev/NAME.json [--weights SPEECH FLUTE]
        [--set arctic-notes:100 ...] [--option vem.temperature=0.25 ...] [--methods mixdvae] [--jobs 2]
    python benchmarks/separation_devsets.py compare runs/dev/A.json runs/dev/B.json [--method mixdvae]

``--option`` replaces one field of the preset (``vem.*``, ``prior.*`` or a top-level field such as
``init_blend``; tuples as ``0,-10``). ``--jobs 2`` scores the sets in two processes of one thread.
``compare`` prints, per set, B's mean minus A's (speech / flute) with the number of mixtures where B is
ahead, then the mean change over the sets both runs hold.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

SETS = ("arctic-notes:100", "libri-notes:50", "libri-notes:100", "arctic:100", "libri:50", "libri:100",
        "arctic-rev:100", "libri-rev:50", "libri-rev:100", "arctic-low:100", "libri-low:50", "libri-low:100",
        "arctic-renders:100", "libri-renders:50", "libri-renders:100")
METHODS = ("dvae-init", "mixdvae")


def parse_option(text: str) -> tuple[str, object]:
    """``a.b=v`` -> (``a.b``, v): v read as a Python literal (``0,-10`` is a tuple), else as a string."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise SystemExit(f"error: --option {text!r}: expected FIELD=VALUE, e.g. vem.temperature=0.25")
    try:
        parsed = ast.literal_eval(value)
    except (ValueError, SyntaxError):
        parsed = value
    if isinstance(parsed, tuple):
        parsed = tuple(float(v) for v in parsed)
    return key, parsed


def configure(length: int, options: list[tuple[str, object]]):
    """The `default` preset with one chunk of ``length`` frames and ``options`` replaced."""
    from mixdvae.separation.presets import DEFAULT

    cfg = dataclasses.replace(DEFAULT, chunk_frames=length, overlap_frames=0)
    for key, value in options:
        part, _, name = key.rpartition(".")
        if part in ("vem", "prior"):
            sub = getattr(cfg, part)
            if name not in {f.name for f in dataclasses.fields(sub)}:
                raise SystemExit(f"error: --option {key}: {type(sub).__name__} has no field {name!r}")
            cfg = dataclasses.replace(cfg, **{part: dataclasses.replace(sub, **{name: value})})
        elif not part and name in {f.name for f in dataclasses.fields(cfg)}:
            cfg = dataclasses.replace(cfg, **{name: value})
        else:
            raise SystemExit(f"error: --option {key}: not a field of the separation preset")
    return cfg


def score_set(spec: str, weights, options, audio_dir: Path, cache_dir: Path, methods=METHODS) -> dict:
    """Per-mixture SI-SDR (dB) of each of ``methods`` on one development set ``NAME:T``."""
    import torch

    from mixdvae.metrics.audio import si_sdr
    from mixdvae.separation.separate import Separator
    from separation_options import load_set

    torch.set_num_threads(1)
    name, _, length = spec.partition(":")
    mix = load_set(name, int(length), audio_dir, cache_dir)
    names = list(mix.source_names)
    cfg = configure(int(length), options)
    out = {}
    for method in methods:
        res = Separator(names, method, cfg, weights=weights).separate(mix.mixture)
        out[method] = {n: [float(v) for v in si_sdr(res.waveforms[:, i], mix.sources[:, i])]
                       for i, n in enumerate(names)}
    return out


def run(args) -> int:
    specs = args.set or list(SETS)
    for spec in specs:
        name, _, length = spec.partition(":")
        if not length.isdigit():
            raise SystemExit(f"error: --set {spec!r}: expected NAME:T, e.g. libri-notes:50")
    options = [parse_option(o) for o in args.option]
    configure(100, options)  # refuse a bad option before any work
    weights = [str(w) for w in args.weights] if args.weights else None
    methods = tuple(args.methods)
    result = {"weights": weights, "options": args.option, "methods": list(methods), "sets": {}}
    if args.out.is_file():  # resume: keep the sets already scored with the same weights and options
        old = json.loads(args.out.read_text())
        if (old.get("weights"), old.get("options"), old.get("methods", list(METHODS))) == (weights, args.option, list(methods)):
            result["sets"] = old["sets"]
    todo = [s for s in specs if s not in result["sets"]]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    from separation_options import load_set

    for spec in todo:  # write the sets' shared caches (flute in rooms, mixtures) once, before the processes read them
        name, _, length = spec.partition(":")
        load_set(name, int(length), args.audio_dir, args.cache_dir)
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = {s: pool.submit(score_set, s, weights, options, args.audio_dir, args.cache_dir, methods) for s in todo}
        for spec, fut in futures.items():
            result["sets"][spec] = fut.result()
            print(f"{spec}: " + ", ".join(f"{m} " + " / ".join(f"{sum(v) / len(v):.2f}" for v in per.values())
                                          for m, per in result["sets"][spec].items()), flush=True)
            args.out.write_text(json.dumps(result))
    return 0


def compare(args) -> int:
    a, b = (json.loads(Path(p).read_text())["sets"] for p in (args.a, args.b))
    common = [s for s in SETS if s in a and s in b] + [s for s in a if s in b and s not in SETS]
    common = [s for s in common if args.method in a[s] and args.method in b[s]]
    if not common:
        raise SystemExit("error: the two runs share no development set")
    totals: dict[str, list[float]] = {}
    print(f"{args.method}: B - A, mean over the mixtures (mixtures where B is ahead)")
    for spec in common:
        cells = []
        for n, va in a[spec][args.method].items():
            vb = b[spec][args.method][n]
            diff = [y - x for x, y in zip(va, vb)]
            mean = sum(diff) / len(diff)
            totals.setdefault(n, []).append(mean)
            cells.append(f"{mean:+.2f} ({sum(d > 0 for d in diff)}/{len(diff)})")
        print(f"  {spec:20s} " + " / ".join(cells))
    print(f"  mean over {len(common)} sets: " + " / ".join(
        f"{sum(v) / len(v):+.3f} ({min(v):+.2f} to {max(v):+.2f})" for v in totals.values()))
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="score DVAE-init and the default preset on the development sets")
    r.add_argument("--out", type=Path, required=True, help="JSON of per-mixture SI-SDR (resumed if it exists)")
    r.add_argument("--weights", type=Path, nargs=2, metavar=("SPEECH", "FLUTE"),
                   help="SRNN checkpoints (default: the shipped ones)")
    r.add_argument("--set", action="append", help="NAME:T, repeatable (default: the 15 sets)")
    r.add_argument("--option", action="append", default=[], help="FIELD=VALUE replacing a preset field, repeatable")
    r.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS),
                   help="what to score (default: both; the preset's options do not change dvae-init's loop)")
    r.add_argument("--jobs", type=int, default=1, help="processes of one thread (default 1)")
    r.add_argument("--audio-dir", type=Path, default=Path("..") / "shared" / "data" / "audio")
    r.add_argument("--cache-dir", type=Path, default=Path("runs") / "dev")
    c = sub.add_parser("compare", help="paired change of run B against run A")
    c.add_argument("a", type=Path)
    c.add_argument("b", type=Path)
    c.add_argument("--method", choices=METHODS, default="mixdvae")
    args = p.parse_args()
    return run(args) if args.command == "run" else compare(args)


if __name__ == "__main__":
    sys.exit(main())
