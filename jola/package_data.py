"""Files shipped inside installed Python packages (the offline model, data and BERTScore
encoder), found without importing the package."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from jola.errors import UserError


def package_data_path(package: str, relative: str, missing_hint: str) -> Path:
    """The path ``relative`` inside the installed ``package``; a :class:`UserError` with
    ``missing_hint`` (how to install it) when the package is absent, or naming the file when
    the package lacks it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise UserError(f"package '{package}' is not installed; {missing_hint}")
    for location in spec.submodule_search_locations:
        candidate = Path(location) / relative
        if candidate.exists():
            return candidate
    raise UserError(f"package '{package}' has no file '{relative}'")
