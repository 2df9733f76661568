"""`make tables`: paper-style tables and plots from the finished runs under outputs/. A thin entry point of :mod:`jola.tables.cli` (also ``jola-tables``)."""

import sys

from jola.tables.cli import main

if __name__ == "__main__":
    sys.exit(main())
