"""Expand a sweep's overrides into its runs, as ``python run.py -m <overrides>`` would, without
running anything.

The grid is the one Hydra's basic sweeper builds: ``hydra.sweeper.params`` of the composed
config (the presets' grids) followed by the command-line overrides, so a command-line key
replaces the preset's values for that key, and the cartesian product of every comma list
(:meth:`BasicSweeper.split_arguments`). Each member is composed as the launcher composes it
(the hydra overrides plus the member's overrides, in run mode), then turned into a
:class:`~jola.config.RunConfig` and resolved with the data profile.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass, field
from pathlib import Path

from jola.config import CONF_DIR
from jola.errors import UserError

MULTIRUN_FLAGS = ("-m", "--multirun")


class UsageError(UserError):
    """A bad override or a sweep that does not compose (exit code 2)."""


@dataclass
class Sweep:
    """The runs of one sweep and how they were obtained."""

    overrides: list[str]  # as given (the multirun flag dropped)
    jobs: list[list[str]]  # each member's overrides, in launch order
    runs: list  # RunConfig per job, profile resolved
    grid: dict[str, int] = field(default_factory=dict)  # swept key -> number of values
    notes: list[str] = field(default_factory=list)  # distinct warnings printed while resolving


def _hydra_error_types() -> tuple[type[BaseException], ...]:
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    return HydraException, OmegaConfBaseException, UserError, ValueError, KeyError


def _one_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return " ".join(line.strip() for line in text.splitlines() if line.strip())


def expand_sweep(
    overrides: list[str],
    config_dir: Path = CONF_DIR,
    config_name: str = "config",
    compose_runs: bool = True,
) -> Sweep:
    """Every run of ``python run.py -m <overrides>``, composed and resolved, none launched.

    ``compose_runs=False`` stops after the grid: ``jobs`` and ``grid`` are filled, ``runs`` is
    empty (each member's overrides without the cost of composing hundreds of configs).

    Raises :class:`UsageError` (one line) when an override does not parse or a member does not
    compose.
    """
    from hydra import initialize_config_dir
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.global_hydra import GlobalHydra
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.types import RunMode
    from omegaconf import OmegaConf, open_dict

    from jola.hydra_glue import register_configs, register_resolvers
    from jola.resolution import resolve_profile
    from jola.runner import as_run_config

    register_configs()
    register_resolvers()
    overrides = [o for o in overrides if o not in MULTIRUN_FLAGS]
    errors = _hydra_error_types()
    if GlobalHydra.instance().is_initialized():
        GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(config_dir), version_base="1.3"):
        hydra = GlobalHydra.instance().hydra
        try:
            master = hydra.compose_config(
                config_name,
                overrides,
                run_mode=RunMode.MULTIRUN,
                from_shell=False,
                with_log_configuration=False,
            )
            params = master.hydra.sweeper.params
            params = OmegaConf.to_container(params) if params is not None else {}
            arguments = [f"{key}={value}" for key, value in params.items()]
            arguments += list(master.hydra.overrides.task)
            parser = OverridesParser.create(config_loader=hydra.config_loader)
            parsed = parser.parse_overrides(arguments)
            jobs = [list(job) for job in BasicSweeper.split_arguments(parsed, None)[0]]
        except errors as err:
            raise UsageError(f"the overrides do not compose: {_one_line(err)}") from err
        grid = {}
        for override in parsed:
            if override.is_sweep_override():
                grid[override.get_key_element()] = len(list(override.sweep_string_iterator()))
            else:
                grid.pop(override.get_key_element(), None)
        hydra_overrides = list(master.hydra.overrides.hydra)
        runs, notes = [], []
        for job in jobs if compose_runs else ():
            try:
                cfg = hydra.compose_config(
                    config_name,
                    hydra_overrides + job,
                    run_mode=RunMode.RUN,
                    from_shell=False,
                    with_log_configuration=False,
                )
                with open_dict(cfg):
                    del cfg["hydra"]
                stderr = io.StringIO()
                with contextlib.redirect_stderr(stderr):
                    run = resolve_profile(as_run_config(cfg))
            except errors as err:
                raise UsageError(f"run {' '.join(job)} does not compose: {_one_line(err)}") from err
            for line in stderr.getvalue().splitlines():
                if line.strip() and line not in notes:
                    notes.append(line)
            runs.append(run)
    return Sweep(overrides=overrides, jobs=jobs, runs=runs, grid=grid, notes=notes)
