"""List every task: suite, metrics, default source, and which sources load here with their sizes. A thin entry point of :mod:`tasks.cli` (also ``jola-tasks``)."""

import sys

from tasks.cli import main

if __name__ == "__main__":
    sys.exit(main())
