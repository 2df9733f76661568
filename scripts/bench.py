"""Speed and memory benchmark: a thin entry point of :mod:`jola.bench` (also ``jola-bench``).

.venv/bin/python scripts/bench.py --quick --model tiny_random
python scripts/bench.py --model llama31_8b_shape --device cuda     # on a GPU
"""

import sys

from jola.bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
