"""``python -m mixdvae`` is the ``mixdvae`` command (also what ``torchrun -m mixdvae`` runs)."""

import sys

from mixdvae.cli.main import main

sys.exit(main())
