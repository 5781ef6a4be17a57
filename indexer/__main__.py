"""``python -m indexer``: see :mod:`indexer.cli`."""

import sys

from .cli import main

sys.exit(main())
