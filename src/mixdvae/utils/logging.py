"""Logging helpers. The library only logs; the CLI decides what reaches the terminal."""

from __future__ import annotations

import logging
import sys

__all__ = ["configure_cli_logging"]


class _CurrentStderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at emit time (test runners swap it)."""

    @property  # type: ignore[override]
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):
        pass


def configure_cli_logging(verbose: bool = False) -> None:
    """Attach one stderr handler to the ``mixdvae`` logger (called by the CLI only)."""
    logger = logging.getLogger("mixdvae")
    if any(getattr(h, "_mixdvae_cli", False) for h in logger.handlers):
        return
    handler = _CurrentStderrHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s: %(message)s"))
    handler._mixdvae_cli = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False
