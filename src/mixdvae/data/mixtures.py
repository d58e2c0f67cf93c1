"""Single-channel test mixtures: one speech segment plus one music (flute) segment, seeded.

Recipe (the original one, reference-implementation.md section 5.4, without its bugs):

1. Draw pairs with ``numpy.random.default_rng(seed)``: for mixture m, a speech segment, then a
   music segment. A segment is a random file (uniform over the files that are long enough) and a
   random offset, L = (T - 1) · 256 samples long (T frames once transformed, see
   :mod:`mixdvae.data.audio`). A segment is kept only if it is **active** (:func:`is_active`):
   its first and last 256-sample frames, and at least 80 % of all its frames, have an energy above
   -35 dB relative to its loudest frame. Otherwise another file and offset are drawn, up to
   ``max_attempts`` times per segment.
2. For each speech-to-music ratio r (dB), the music is scaled so that
   20 log10(rms(speech) / rms(music)) = r, and mixture = speech + music. The same N pairs are used
   for every ratio, so that the ratio is the only thing that changes (with one ratio, a seed gives
   the same pairs as with several).
3. Each mixture and its sources are multiplied by the same factor so that max|mixture| = 0.9
   (written as 16-bit wav it does not clip; every metric is scale-invariant or scale-fitted).
   The sources are stored as float32 and the mixture is their float32 sum.

File format (``.npz``, written atomically by :func:`save_mixtures`; M mixtures, N sources,
L samples):

================  ==========  ========  =====================================================
key               shape       dtype     content
================  ==========  ========  =====================================================
mixture           (M, L)      float32   mixture = sources.sum(1)
sources           (M, N, L)   float32   the references, in ``source_names`` order
source_names      (N,)        str       e.g. ["speech", "flute"]
sample_rate       ()          int64     16000
length_frames     ()          int64     T, with L = (T - 1) · 256
ratio_db          (M,)        float32   speech-to-music ratio of each mixture (dB)
files             (M, N)      str       source files, relative to the folder (or manifest
                                        folder) each source was drawn from
offsets           (M, N)      int64     first sample of each segment in its file
seed              ()          int64     the seed
================  ==========  ========  =====================================================

Mixtures are ordered ratio-major: mixture r · num + m is pair m at ratio ``ratios_db[r]``.

Separation results ("estimates" files, :func:`save_estimates`) hold "estimates" (M, N, L)
float32 in the same source order, "source_names" (N,) str and optionally "method" () str.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from mixdvae.data.audio import HOP, SAMPLE_RATE, frame_energy_db, frames_to_samples, list_audio_files, read_audio
from mixdvae.errors import ConfigError, DataFormatError
from mixdvae.utils.io import first_line, read_npz, save_npz

__all__ = [
    "Mixtures",
    "Estimates",
    "MIXTURE_PEAK",
    "is_active",
    "make_mixtures",
    "save_mixtures",
    "load_mixtures",
    "save_estimates",
    "load_estimates",
    "check_estimates_match",
]

logger = logging.getLogger(__name__)

MIXTURE_PEAK = 0.9
"""max|mixture| after normalisation."""
ACTIVE_THRESHOLD_DB = -35.0
"""A 256-sample frame is active if its energy is above this, in dB relative to the loudest frame."""
MIN_ACTIVE_FRACTION = 0.8
"""Fraction of active frames a segment needs (and its first and last frames must be active)."""

_KEYS = ("mixture", "sources", "source_names", "sample_rate", "length_frames", "ratio_db", "files", "offsets", "seed")


@dataclasses.dataclass
class Mixtures:
    """M mixtures of N sources, L = (T - 1) · 256 samples each.

    Shape:
        mixture: (M, L) float32. sources: (M, N, L) float32. source_names: N names.
        ratio_db: (M,) float32. files: (M, N) str. offsets: (M, N) int64.
    """

    mixture: np.ndarray
    sources: np.ndarray
    source_names: list[str]
    sample_rate: int
    length_frames: int
    ratio_db: np.ndarray
    files: np.ndarray
    offsets: np.ndarray
    seed: int

    def __len__(self) -> int:
        return int(self.mixture.shape[0])

    @property
    def num_sources(self) -> int:
        return int(self.sources.shape[1])

    @property
    def length(self) -> int:
        """L, samples per mixture."""
        return int(self.mixture.shape[1])


@dataclasses.dataclass
class Estimates:
    """Separated sources of M mixtures.

    Shape:
        estimates: (M, N, L) float32. source_names: N names.
    """

    estimates: np.ndarray
    source_names: list[str]
    method: str | None = None


def is_active(
    segment: np.ndarray,
    threshold_db: float = ACTIVE_THRESHOLD_DB,
    min_active_fraction: float = MIN_ACTIVE_FRACTION,
    frame: int = HOP,
) -> bool:
    """True if a segment is sounding throughout.

    Frame j (``frame`` samples, no overlap) is active if 10 log10(E_j / max E) > ``threshold_db``;
    the segment is active if its first and last frames are active and at least
    ``min_active_fraction`` of its frames are. An all-zero segment is not active.

    Shape:
        segment: (L,), L >= ``frame``.
    """
    db = frame_energy_db(segment, frame)
    if db.size == 0 or not np.isfinite(db).any():
        return False
    active = db > threshold_db
    return bool(active[0] and active[-1] and active.mean() >= min_active_fraction)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.square(x, dtype=np.float64))))


def _relative_name(path: Path, root: Path) -> str:
    base = root if root.is_dir() else root.parent
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return path.as_posix()


class _SegmentSampler:
    """Draws active segments of ``length`` samples from a list of files (decoded once, cached)."""

    def __init__(self, root: Path, length: int, max_attempts: int, sample_rate: int):
        import soundfile as sf

        self.root, self.length, self.max_attempts, self.sample_rate = root, length, max_attempts, sample_rate
        self.files: list[Path] = []
        for path in list_audio_files(root):
            try:
                info = sf.info(str(path))
            except (sf.SoundFileError, RuntimeError) as err:
                raise DataFormatError(f"{path}: not a readable audio file ({first_line(err)})") from err
            if math.ceil(info.frames * sample_rate / info.samplerate) >= length:
                self.files.append(path)
        if not self.files:
            raise DataFormatError(f"{root}: no audio file holds a segment of {length} samples")
        self._cache: dict[Path, np.ndarray] = {}

    def _load(self, path: Path) -> np.ndarray:
        if path not in self._cache:
            self._cache[path] = read_audio(path, self.sample_rate)
        return self._cache[path]

    def draw(self, rng: np.random.Generator) -> tuple[Path, int, np.ndarray]:
        for _ in range(self.max_attempts):
            path = self.files[int(rng.integers(len(self.files)))]
            x = self._load(path)
            if x.shape[0] < self.length:
                continue
            offset = int(rng.integers(0, x.shape[0] - self.length + 1))
            segment = x[offset : offset + self.length]
            if is_active(segment):
                return path, offset, segment
        raise DataFormatError(
            f"{self.root}: no active segment of {self.length} samples found in {self.max_attempts} draws "
            f"(>= {MIN_ACTIVE_FRACTION:.0%} of frames above {ACTIVE_THRESHOLD_DB:g} dB, none silent at the ends)"
        )


def _check_recipe(
    ratios_db: Sequence[float], length_frames: int, num: int, names: Sequence[str], max_attempts: int
) -> None:
    if int(num) != num or num < 1:
        raise ConfigError(f"num = {num}: must be an integer >= 1")
    if int(length_frames) != length_frames or length_frames < 5:
        raise ConfigError(f"length = {length_frames}: must be an integer >= 5 frames")
    if not ratios_db:
        raise ConfigError("ratio_db: give at least one speech-to-music ratio")
    for r in ratios_db:
        if not math.isfinite(r):
            raise ConfigError(f"ratio_db = {r}: must be finite")
    if len(names) != 2 or len(set(names)) != 2 or not all(n.strip() for n in names):
        raise ConfigError(f"names = {','.join(names)}: must be two distinct non-empty names (speech, music)")
    if int(max_attempts) != max_attempts or max_attempts < 1:
        raise ConfigError(f"max_attempts = {max_attempts}: must be an integer >= 1")


def make_mixtures(
    speech: str | os.PathLike,
    music: str | os.PathLike,
    ratios_db: Sequence[float],
    length_frames: int,
    num: int,
    seed: int,
    names: Sequence[str] = ("speech", "flute"),
    max_attempts: int = 200,
    progress: bool = False,
) -> Mixtures:
    """Make ``num`` speech + music mixtures per ratio (module docstring gives the recipe).

    ``speech`` and ``music`` are folders (searched recursively for .flac/.wav) or manifests
    (:func:`mixdvae.data.audio.list_audio_files`). Source 0 is speech, source 1 music.

    Shape:
        returns M = ``num`` · len(``ratios_db``) mixtures of L = (T - 1) · 256 samples.

    Raises:
        ConfigError: a parameter out of range. DataFormatError: a folder without usable audio,
            a bad audio file, or no active segment found in ``max_attempts`` draws.
    """
    from tqdm import tqdm

    ratios = [float(r) for r in ratios_db]
    names = [str(n) for n in names]
    _check_recipe(ratios, length_frames, num, names, max_attempts)
    length = frames_to_samples(length_frames)
    roots = (Path(speech), Path(music))
    samplers = [_SegmentSampler(root, length, max_attempts, SAMPLE_RATE) for root in roots]
    rng = np.random.default_rng(seed)
    pairs: list[tuple[list[str], list[int], list[np.ndarray]]] = []
    for _ in tqdm(range(num), desc="mixtures", unit="pair", disable=not progress):
        drawn = [sampler.draw(rng) for sampler in samplers]
        pairs.append((
            [_relative_name(p, root) for (p, _, _), root in zip(drawn, roots)],
            [o for _, o, _ in drawn],
            [seg.astype(np.float64) for _, _, seg in drawn],
        ))
    m_total = num * len(ratios)
    sources = np.empty((m_total, 2, length), dtype=np.float32)
    files = np.empty((m_total, 2), dtype=object)
    offsets = np.empty((m_total, 2), dtype=np.int64)
    ratio_col = np.empty(m_total, dtype=np.float32)
    for r_idx, ratio in enumerate(ratios):
        for m, (names_m, offs_m, (s, x)) in enumerate(pairs):
            i = r_idx * num + m
            gain = _rms(s) / _rms(x) / 10.0 ** (ratio / 20.0)  # 20 log10(rms(s) / rms(gain x)) = ratio
            music_scaled = gain * x
            scale = MIXTURE_PEAK / float(np.max(np.abs(s + music_scaled)))
            sources[i, 0] = s * scale
            sources[i, 1] = music_scaled * scale
            files[i] = names_m
            offsets[i] = offs_m
            ratio_col[i] = ratio
    mixture = sources.sum(axis=1, dtype=np.float32)  # (M, N, L) -> (M, L)
    return Mixtures(
        mixture=mixture,
        sources=sources,
        source_names=names,
        sample_rate=SAMPLE_RATE,
        length_frames=int(length_frames),
        ratio_db=ratio_col,
        files=files.astype(str),
        offsets=offsets,
        seed=int(seed),
    )


def _validate(where: str, a: dict[str, np.ndarray]) -> None:
    """Raise DataFormatError (one line naming ``where`` and the key) unless ``a`` is a mixtures set."""
    mix, src = a["mixture"], a["sources"]
    if mix.ndim != 2 or mix.dtype.kind != "f":
        raise DataFormatError(f"{where}: 'mixture' has shape {mix.shape} and dtype {mix.dtype}, expected (M, L) float")
    m, length = mix.shape
    if m == 0:
        raise DataFormatError(f"{where}: 'mixture' holds no mixtures (M = 0)")
    if src.ndim != 3 or src.dtype.kind != "f" or src.shape[0] != m or src.shape[2] != length or src.shape[1] < 1:
        raise DataFormatError(
            f"{where}: 'sources' has shape {src.shape}, expected (M, N, L) float with (M, L) = {mix.shape}"
        )
    n = src.shape[1]
    names = a["source_names"]
    if names.shape != (n,) or names.dtype.kind != "U":
        raise DataFormatError(
            f"{where}: 'source_names' has shape {names.shape} and dtype {names.dtype}, expected ({n},) str"
        )
    if len(set(names.tolist())) != n:
        raise DataFormatError(f"{where}: 'source_names' are not distinct: {names.tolist()}")
    for key in ("sample_rate", "length_frames", "seed"):
        v = a[key]
        if v.shape != () or v.dtype.kind not in "iu":
            raise DataFormatError(
                f"{where}: '{key}' has shape {v.shape} and dtype {v.dtype}, expected an integer scalar"
            )
    if int(a["sample_rate"]) <= 0:
        raise DataFormatError(f"{where}: 'sample_rate' is {int(a['sample_rate'])}, expected > 0")
    t = int(a["length_frames"])
    if frames_to_samples(t) != length:
        raise DataFormatError(
            f"{where}: 'length_frames' is {t} but mixtures hold {length} samples, "
            f"expected (T - 1) * {HOP} = {frames_to_samples(t)}"
        )
    expected = {"ratio_db": ((m,), "f"), "files": ((m, n), "U"), "offsets": ((m, n), "iu")}
    for key, (shape, kinds) in expected.items():
        if a[key].shape != shape or a[key].dtype.kind not in kinds:
            raise DataFormatError(
                f"{where}: '{key}' has shape {a[key].shape} and dtype {a[key].dtype}, expected {shape}"
            )
    for key in ("mixture", "sources", "ratio_db"):
        bad = ~np.isfinite(a[key])
        if bad.any():
            first = int(np.argwhere(bad)[0][0])
            raise DataFormatError(f"{where}: '{key}' holds non-finite values (mixture {first})")
    err = np.abs(src.sum(axis=1, dtype=np.float64) - mix).max(axis=-1)  # (M,)
    tol = 1e-5 * np.maximum(1.0, np.abs(src).max(axis=(1, 2))) * n
    if (err > tol).any():
        first = int(np.flatnonzero(err > tol)[0])
        raise DataFormatError(f"{where}: 'mixture' {first} differs from the sum of its 'sources' by {err[first]:.3g}")


def _to_arrays(mix: Mixtures) -> dict[str, np.ndarray]:
    return {
        "mixture": np.asarray(mix.mixture, dtype=np.float32),
        "sources": np.asarray(mix.sources, dtype=np.float32),
        "source_names": np.asarray([str(n) for n in mix.source_names], dtype=str),
        "sample_rate": np.asarray(int(mix.sample_rate), dtype=np.int64),
        "length_frames": np.asarray(int(mix.length_frames), dtype=np.int64),
        "ratio_db": np.asarray(mix.ratio_db, dtype=np.float32),
        "files": np.asarray(mix.files, dtype=str).reshape(np.shape(mix.files)),
        "offsets": np.asarray(mix.offsets, dtype=np.int64),
        "seed": np.asarray(int(mix.seed), dtype=np.int64),
    }


def save_mixtures(path: str | os.PathLike, mix: Mixtures) -> Path:
    """Validate and write a mixtures ``.npz`` (format in the module docstring), atomically."""
    arrays = _to_arrays(mix)
    _validate(f"{path} (being written)", arrays)
    return save_npz(path, **arrays)


def load_mixtures(path: str | os.PathLike) -> Mixtures:
    """Read and validate a mixtures ``.npz`` written by :func:`save_mixtures`.

    Raises:
        DataFormatError: one line naming the file and the key: not found, not an .npz, a missing
            key, wrong shapes or dtypes, lengths that disagree with ``length_frames``, non-finite
            samples, or a mixture that is not the sum of its sources.
    """
    path = Path(path)
    a = read_npz(path, _KEYS, what="mixtures file")
    _validate(str(path), a)
    return Mixtures(
        mixture=a["mixture"].astype(np.float32),
        sources=a["sources"].astype(np.float32),
        source_names=[str(n) for n in a["source_names"]],
        sample_rate=int(a["sample_rate"]),
        length_frames=int(a["length_frames"]),
        ratio_db=a["ratio_db"].astype(np.float32),
        files=a["files"],
        offsets=a["offsets"].astype(np.int64),
        seed=int(a["seed"]),
    )


def _validate_estimates(where: str, a: dict[str, np.ndarray]) -> None:
    est, names = a["estimates"], a["source_names"]
    if est.ndim != 3 or est.dtype.kind != "f" or 0 in est.shape:
        raise DataFormatError(
            f"{where}: 'estimates' has shape {est.shape} and dtype {est.dtype}, expected (M, N, L) float"
        )
    if names.shape != (est.shape[1],) or names.dtype.kind != "U":
        raise DataFormatError(
            f"{where}: 'source_names' has shape {names.shape} and dtype {names.dtype}, expected ({est.shape[1]},) str"
        )
    if "method" in a and (a["method"].shape != () or a["method"].dtype.kind != "U"):
        raise DataFormatError(
            f"{where}: 'method' has shape {a['method'].shape} and dtype {a['method'].dtype}, expected a str"
        )


def save_estimates(
    path: str | os.PathLike, estimates: np.ndarray, source_names: Sequence[str], method: str | None = None
) -> Path:
    """Write separated sources as an estimates ``.npz`` ("estimates", "source_names", "method"), atomically.

    Shape:
        estimates: (M, N, L), stored as float32.
    """
    arrays = {
        "estimates": np.asarray(estimates, dtype=np.float32),
        "source_names": np.asarray([str(n) for n in source_names], dtype=str),
    }
    if method is not None:
        arrays["method"] = np.asarray(str(method))
    _validate_estimates(f"{path} (being written)", arrays)
    return save_npz(path, **arrays)


def load_estimates(path: str | os.PathLike) -> Estimates:
    """Read an estimates ``.npz`` (:func:`save_estimates`).

    Non-finite samples are allowed here (the evaluation reports them as failures).

    Raises:
        DataFormatError: not found, not an .npz, a missing key, wrong shapes or dtypes.
    """
    path = Path(path)
    a = read_npz(path, ("estimates", "source_names"), optional=("method",), what="estimates file")
    _validate_estimates(str(path), a)
    return Estimates(
        estimates=a["estimates"].astype(np.float32),
        source_names=[str(n) for n in a["source_names"]],
        method=str(a["method"]) if "method" in a else None,
    )


def check_estimates_match(estimates: Estimates, mixtures: Mixtures, estimates_name: str, mixtures_name: str) -> None:
    """The estimates were made from these mixtures: the same source names, in order, and the shape of
    the references (M, N, L).

    Raises:
        DataFormatError: one line naming both files and what differs.
    """
    if estimates.source_names != mixtures.source_names:
        raise DataFormatError(
            f"{estimates_name}: 'source_names' {estimates.source_names} differ from {mixtures_name} 'source_names' "
            f"{mixtures.source_names}"
        )
    if estimates.estimates.shape != mixtures.sources.shape:
        raise DataFormatError(
            f"{estimates_name}: 'estimates' has shape {estimates.estimates.shape} but {mixtures_name} 'sources' has "
            f"{mixtures.sources.shape} (M, N, L)"
        )
