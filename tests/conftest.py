"""Test-wide settings: no network, no wandb, quiet tokenizers.

Tests marked ``slow`` load the real packaged SmolLM2; they run in ``make test`` and can be
deselected during development with ``pytest -m "not slow"``.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("WANDB_MODE", "disabled")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
