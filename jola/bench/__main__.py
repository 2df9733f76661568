"""``python -m jola.bench``: the benchmark's command line (also how memory probes start)."""

import sys

from jola.bench.cli import main

sys.exit(main())
