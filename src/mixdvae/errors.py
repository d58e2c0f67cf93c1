"""Exception hierarchy.

Every error a user can cause (bad file, bad config, bad checkpoint) is a :class:`MixDVAEError`;
the CLI prints its message on one line and exits with code 2. Messages name the file, the line
(where there is one) and the field, e.g. ``det.txt:118: column 7 (conf) is 'nan', expected a float``.
"""

from __future__ import annotations

__all__ = [
    "MixDVAEError",
    "DataFormatError",
    "ConfigError",
    "CheckpointError",
    "NumericalError",
]


class MixDVAEError(Exception):
    """Base class of every error mixdvae raises on purpose."""


class DataFormatError(MixDVAEError):
    """An input data file is missing, unreadable or malformed."""


class ConfigError(MixDVAEError):
    """A configuration value or file is invalid (unknown key, wrong type, out of range)."""


class CheckpointError(MixDVAEError):
    """A checkpoint is missing, truncated, of another architecture or holds non-finite weights."""


class NumericalError(MixDVAEError):
    """A computation produced NaN or inf where a finite value is required."""
