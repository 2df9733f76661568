"""Shared builders for tests: configs for tiny offline runs."""

from __future__ import annotations

from pathlib import Path

from hydra import compose, initialize_config_dir

from jola.hydra_glue import register_configs, register_resolvers

CONF_DIR = Path(__file__).resolve().parent.parent / "conf"
REPO_ROOT = CONF_DIR.parent

register_configs()
register_resolvers()


def compose_config(overrides: list[str], return_hydra_config: bool = False):
    """Compose conf/config.yaml with overrides, exactly as run.py does."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=overrides, return_hydra_config=return_hydra_config)


def tiny_overrides(tmp_path, *extra: str) -> list[str]:
    """A fast offline run: tiny random model, SIQA packaged data, greedy decoding."""
    return [
        "model=tiny_random",
        "task=siqa",
        "n=8",
        "task.test_limit=6",
        "eval.num_beams=1",
        "eval.max_new_tokens=8",
        "eval.progress=false",
        f"output_root={tmp_path}",
        *extra,
    ]


def module_imports(module) -> set[str]:
    """Every module ``module``'s source imports (``import a.b`` gives ``a``; ``from a.b import
    c`` gives ``a.b``), at any depth: for the torch-only checks of the core modules."""
    import ast
    import inspect

    imported = set()
    for node in ast.walk(ast.parse(inspect.getsource(module))):
        if isinstance(node, ast.Import):
            imported.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module)
    return imported
