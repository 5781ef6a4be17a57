"""``python -m model.training``: see :mod:`model.training.cli`."""

from .cli import main

raise SystemExit(main())
