"""`make demo`: zero-shot and JoLA on SIQA with the real SmolLM2, offline, on a CPU. A thin entry point of :mod:`jola.demo` (also ``jola-demo``)."""

import sys

from jola.demo import main

if __name__ == "__main__":
    sys.exit(main())
