"""The speed and memory benchmark (``jola-bench``, ``scripts/bench.py``), as a library.

- :mod:`jola.bench.models`: the benchmark's models, loaded through :mod:`jola.models`
  (including the random-weight Llama-3.1-8B shape, a registered model source).
- :mod:`jola.bench.data`: training batches and evaluation prompts.
- :mod:`jola.bench.variants`: training-step variants registered by name (floor, jola, ...).
- :mod:`jola.bench.per_head_loop`: the release's per-head loop (baseline and test oracle).
- :mod:`jola.bench.timing`: interleaved round-robin timing, medians, IQRs, paired ratios.
- :mod:`jola.bench.training`, :mod:`jola.bench.evaluation`, :mod:`jola.bench.pruning`,
  :mod:`jola.bench.memory`: the benchmarks themselves.
- :mod:`jola.bench.report`: machine description and Markdown tables.
- :mod:`jola.bench.cli`: the command line (``python -m jola.bench``).
- :mod:`jola.bench.gpu_check`: every check that needs CUDA in one command (``make gpu-check``).
- :mod:`jola.bench.share`: every method's trainable share on the Llama-3.1-8B shape (meta
  device), beside the paper's figures (``python -m jola.bench.share``).
"""
