"""``python -m linkage_gcn``: the ``linkage-gcn`` command (see :mod:`linkage_gcn.cli`)."""

import sys

from .cli import main

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
