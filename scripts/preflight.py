"""Check a sweep before launching it; with --download, prefetch what it needs. A thin entry point of :mod:`jola.preflight.cli` (also ``jola-preflight``)."""

import sys

from jola.preflight.cli import main

if __name__ == "__main__":
    sys.exit(main())
