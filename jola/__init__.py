"""JoLA: joint localisation and activation editing, and the experiment framework around it.

The names a user needs, for any HF causal LM and their own data (see :mod:`jola.api`):
:func:`attach`, :func:`train`, :func:`save`, :func:`load`, :func:`merge`, :func:`export`,
:func:`gate_penalty` and :func:`run`. They are imported on first use, so ``import jola`` (and
the torch-only modules such as :mod:`jola.gates`) stay light.
"""

from __future__ import annotations

__all__ = ["attach", "export", "gate_penalty", "load", "merge", "run", "save", "train"]


def __getattr__(name: str):
    if name in __all__:
        from jola import api

        return getattr(api, name)
    raise AttributeError(f"module 'jola' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
