"""One home for "no network": the environment variables that keep the Hugging Face libraries
off the hub, applied to this process (also to libraries that already read them at import) or
to a child process's environment.

Torch-free and import-light: scripts call :func:`default_offline` before importing anything
that reads the variables.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator, Mapping

OFFLINE_VARIABLES = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")

# (module, attribute) pairs that hold a copy of the variables, read once at import
_LIBRARY_FLAGS = (
    ("huggingface_hub.constants", "HF_HUB_OFFLINE"),
    ("datasets.config", "HF_HUB_OFFLINE"),
    ("datasets.config", "HF_DATASETS_OFFLINE"),
)


def offline_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """A copy of ``env`` (default: this process's environment) with both variables set to 1."""
    result = dict(os.environ if env is None else env)
    result.update({name: "1" for name in OFFLINE_VARIABLES})
    return result


def _set_library_flags(value: bool) -> list[tuple[object, str, object]]:
    """Set the imported libraries' copies; return what they held before."""
    saved = []
    for module_name, attribute in _LIBRARY_FLAGS:
        module = sys.modules.get(module_name)
        if module is not None and hasattr(module, attribute):
            saved.append((module, attribute, getattr(module, attribute)))
            setattr(module, attribute, value)
    return saved


def default_offline() -> bool:
    """Offline unless the user set either variable already (their choice wins); True when
    this call switched it on."""
    if any(name in os.environ for name in OFFLINE_VARIABLES):
        return False
    os.environ.update({name: "1" for name in OFFLINE_VARIABLES})
    _set_library_flags(True)
    return True


@contextlib.contextmanager
def forced_offline() -> Iterator[None]:
    """Offline for the block whatever the environment says, restored afterwards."""
    saved_env = {name: os.environ.get(name) for name in OFFLINE_VARIABLES}
    saved_flags = _set_library_flags(True)
    os.environ.update({name: "1" for name in OFFLINE_VARIABLES})
    try:
        yield
    finally:
        for module, attribute, value in saved_flags:
            setattr(module, attribute, value)
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
