"""The ``mixdvae`` command line: one module per command, wired up in :mod:`mixdvae.cli.main`."""
