"""``mixdvae separate``: separate a recording (one wav per source) or a mixtures file (in batch).

Examples::

    mixdvae separate mix.wav --out sep/                       # sep/speech.wav, sep/flute.wav, sep/spectrograms.png
    mixdvae separate mixtures.npz --method nmf --out est.npz  # then: mixdvae evaluate separation est.npz --mixtures mixtures.npz
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from mixdvae.config import config_with_overrides, load_config_file
from mixdvae.errors import ConfigError
from mixdvae.separation.presets import METHODS, PRESETS, get_preset
from mixdvae.utils.device import resolve_device
from mixdvae.utils.io import save_npz, write_json

__all__ = ["add_parser", "run_separate"]


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "separate",
        help="Separate a speech + music recording (or a mixtures .npz) with MixDVAE or a baseline.",
        description="INPUT is an audio file (wav/flac; separated at 16 kHz mono, converted with a warning): writes "
        "OUT/<source>.wav (mono, at the input's own sample rate and length), OUT/spectrograms.png and "
        "OUT/summary.json. INPUT is a mixtures .npz ('mixdvae data mixtures'): writes OUT as an estimates .npz "
        "with 'estimates' (M, N, L), 'source_names', 'method', the ELBO history and the time taken. Long "
        "inputs are cut into chunks of --length frames that overlap and are stitched.",
    )
    p.add_argument("input", type=Path, help="audio file or mixtures .npz")
    p.add_argument("--out", "-o", type=Path, required=True, help="folder (audio input) or estimates .npz (mixtures input)")
    p.add_argument("--priors", default="speech,flute", help="source names, in order (default: speech,flute)")
    p.add_argument("--method", choices=METHODS, default="mixdvae")
    p.add_argument("--preset", choices=sorted(PRESETS), default="default")
    p.add_argument("--weights", action="append", default=None, metavar="NAME=PATH",
                   help="a prior checkpoint per source (repeat), one DVAE or an ensemble written by "
                        "`mixdvae ensemble`; a source not named takes its shipped prior (default: the shipped priors)")
    p.add_argument("--nmf-bases", type=Path, default=None, help="NMF bases file (default: the shipped one)")
    p.add_argument("--length", type=int, default=None, help="chunk length T in STFT frames (default: the preset's, 50)")
    p.add_argument("--iterations", type=int, default=None, help="VEM iterations (default: the preset's)")
    p.add_argument("--config", type=Path, default=None, help="TOML/JSON [separation] table overriding the preset")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto")
    p.add_argument("--batch-size", type=int, default=None, metavar="B",
                   help="chunks of T frames per VEM batch (default: the preset's, 64); larger on a GPU")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: when stderr is a terminal)")
    p.add_argument("--chunk-size", type=int, default=None, metavar="S",
                   help="mixtures per resumable chunk (mixtures input; default: 8); finished chunks are kept in "
                   "OUT.partial/, a rerun skips them; under torchrun chunks are shared among the ranks")
    p.add_argument("--save-masks", action="store_true",
                   help="mixtures input: also keep each source's mask, the assignment posterior (M, N, T, F, float16), "
                        "in the estimates file, for `mixdvae plot separation`")
    p.add_argument("--resume", action="store_true",
                   help="insist on continuing OUT.partial/ (refused if it was started with other settings)")
    p.set_defaults(func=run_separate)


def _config(args: argparse.Namespace):
    from dataclasses import replace

    config = get_preset(args.preset)
    if args.config is not None:
        data = load_config_file(args.config)
        config = config_with_overrides(config, data.get("separation", data), str(args.config))
    if args.length is not None:
        config = replace(config, chunk_frames=args.length, overlap_frames=min(config.overlap_frames, max(0, args.length // 5)))
    if args.iterations is not None:
        config = replace(config, vem=replace(config.vem, iterations=args.iterations))
    if args.batch_size is not None:
        config = config_with_overrides(config, {"batch_size": args.batch_size}, "--batch-size")
    return config


def _weights(args: argparse.Namespace, names: list[str]) -> list[Path] | None:
    """One checkpoint per source from --weights NAME=PATH; a source not named there takes its shipped prior
    of the method's family (the speech prior while trying another flute prior, say). None without --weights."""
    from mixdvae.separation.separate import default_prior_weights

    if not args.weights:
        return None
    given = {}
    for item in args.weights:
        if "=" not in item:
            raise ConfigError(f"--weights {item}: expected NAME=PATH")
        name, path = item.split("=", 1)
        if name not in names:
            raise ConfigError(f"--weights {item}: '{name}' is not one of the sources {names}")
        given[name] = Path(path)
    missing = [n for n in names if n not in given]
    if missing:
        family = "deep_ar" if getattr(args, "method", None) == "deep-ar" else "srnn"
        given.update(zip(missing, default_prior_weights(missing, family)))
    return [given[n] for n in names]


def _input_format(path: Path) -> tuple[int, int]:
    """(sample rate, frames) of an audio file that :func:`read_audio` has already accepted."""
    import soundfile as sf

    info = sf.info(str(path))
    return int(info.samplerate), int(info.frames)


def to_input_rate(y: np.ndarray, rate: int, in_rate: int, in_frames: int) -> np.ndarray:
    """Resample an estimate from ``rate`` back to the input's rate and trim or zero-pad it to the
    input's length.  (L,) -> (in_frames,)"""
    if in_rate != rate:
        from math import gcd

        from scipy.signal import resample_poly

        g = gcd(in_rate, rate)
        y = resample_poly(y.astype(np.float64), in_rate // g, rate // g)
    out = np.zeros(in_frames, dtype=np.float32)
    out[: min(in_frames, len(y))] = y[:in_frames]
    return out


def run_separate(args: argparse.Namespace) -> int:
    from mixdvae.separation.separate import Separator

    names = [n.strip() for n in args.priors.split(",") if n.strip()]
    config = _config(args)
    device = resolve_device(args.device)
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    is_npz = args.input.suffix.lower() == ".npz"
    if is_npz:
        from mixdvae.data.mixtures import load_mixtures

        mixtures = load_mixtures(args.input)
        if list(mixtures.source_names) != names:
            if args.priors == "speech,flute":
                names = list(mixtures.source_names)
            else:
                raise ConfigError(f"--priors {args.priors}: the mixtures file holds sources {list(mixtures.source_names)}")
    if is_npz:
        from mixdvae.separation.batch import separate_mixtures_chunked, separation_job
        from mixdvae.utils.chunks import remove_partial
        from mixdvae.utils.distributed import process_group

        t0 = time.perf_counter()
        with process_group(device) as device:  # torchrun: one chunk share per rank
            weights = _weights(args, names)
            separator = Separator(names, args.method, config, weights, args.nmf_bases, device, args.seed)
            job = separation_job(args.input, separator, weights, args.nmf_bases, args.seed)
            res = separate_mixtures_chunked(separator, mixtures, args.out, args.seed, args.chunk_size, args.resume,
                                            progress, job, keep_masks=args.save_masks)
            if res is None:  # not rank 0: rank 0 writes the output
                return 0
            seconds = time.perf_counter() - t0
            arrays = {"estimates": res.waveforms, "source_names": np.asarray(names), "method": np.asarray(args.method),
                      "preset": np.asarray(args.preset), "seconds": np.asarray(seconds)}
            if res.elbo is not None:
                arrays["elbo"] = res.elbo.astype(np.float32)
            if res.masks is not None:
                arrays["masks"] = res.masks
            save_npz(args.out, **arrays)
            remove_partial(args.out)
        print(f"separated {len(mixtures)} mixtures into {', '.join(names)} with {args.method} [{args.preset}] "
              f"in {seconds:.2f} s ({seconds / max(1, len(mixtures)):.3f} s per mixture)")
        print(f"wrote {args.out}")
        return 0
    from mixdvae.data.audio import SAMPLE_RATE, read_audio, write_audio

    separator = Separator(names, args.method, config, _weights(args, names), args.nmf_bases, device, args.seed)

    x = read_audio(args.input)
    in_rate, in_frames = _input_format(args.input)
    res = separator.separate(x, progress=progress)
    args.out.mkdir(parents=True, exist_ok=True)
    written = []
    for n, name in enumerate(names):
        y = to_input_rate(res.waveforms[0, n], SAMPLE_RATE, in_rate, in_frames)
        written.append(write_audio(args.out / f"{name}.wav", y, in_rate))
    from mixdvae.plotting.separation import plot_separation

    figure = plot_separation(args.out / "spectrograms.png", x, res.waveforms[0], names, masks=res.masks[0].cpu().numpy(),
                             elbo=None if res.elbo is None else res.elbo, title=f"{args.input.name}: {args.method}")
    write_json(args.out / "summary.json", {
        "input": str(args.input), "method": args.method, "preset": args.preset, "sources": names,
        "samples": in_frames, "sample_rate": in_rate, "separated_at": SAMPLE_RATE, "seconds": res.seconds,
        "chunks_of_frames": config.chunk_frames, "outputs": [str(p) for p in written] + [str(figure)],
    })
    print(f"separated {args.input} ({x.shape[0] / SAMPLE_RATE:.2f} s) into {', '.join(names)} with {args.method} "
          f"[{args.preset}] in {res.seconds:.2f} s")
    for p in written:
        print(f"wrote {p}")
    print(f"wrote {figure}")
    return 0
