"""Preflight: check everything a sweep needs before launching it, and prefetch it.

``python scripts/preflight.py <the sweep's overrides>`` expands the sweep exactly as
``python run.py -m`` would (:mod:`jola.preflight.sweep`), launches nothing, and checks for each
distinct model, BERTScore encoder and dataset whether it is reachable (a local folder, the HF
cache, or the hub with the current token), the dataset's splits and first rows against the
task's loader, the test and training sizes against every ``n``, the GPU memory against each
model's size and dtype, and the free disk for what is still to download. It prints one table
and exits non-zero on any problem. ``--download`` fetches what is missing into the HF caches
and checks again as an offline compute node would, then prints the command to run the sweep
offline.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import shlex
from dataclasses import dataclass, field

from jola.offline import forced_offline
from jola.preflight.capacity import (
    DISK_FORMULA,
    GPU_NEED_FORMULA,
    Gpu,
    check_disk,
    check_gpu,
    check_time,
    detect_gpus,
    parse_size,
)
from jola.preflight.data import ROWS_READ, DatasetFetch, check_datasets
from jola.preflight.hub import (
    HubState,
    datasets_cache_dir,
    download_snapshot,
    hub_cache_dir,
    hub_state,
)
from jola.preflight.models import Fetch, check_bertscore_encoder, check_model
from jola.preflight.report import MISSING, NOTE, OK, PROBLEM, Check, render
from jola.preflight.sweep import Sweep, UsageError, expand_sweep

__all__ = [
    "Check",
    "Gpu",
    "PreflightResult",
    "Sweep",
    "UsageError",
    "expand_sweep",
    "parse_size",
    "preflight",
]

RESOURCE_KINDS = ("model", "bertscore encoder", "dataset", "download")
CACHE_VARIABLES = ("HF_HOME", "HF_HUB_CACHE", "HF_DATASETS_CACHE", "JOLA_CACHE")


@dataclass
class PreflightResult:
    sweep: Sweep
    checks: list[Check]
    footnotes: list[str] = field(default_factory=list)
    offline_command: str | None = None

    @property
    def ok(self) -> bool:
        return not any(c.failed for c in self.checks)

    @property
    def problems(self) -> list[Check]:
        return [c for c in self.checks if c.failed]

    def render(self) -> str:
        text = render(self.checks, self.footnotes)
        if self.offline_command:
            text += f"\n\nrun the sweep offline:\n  {self.offline_command}"
        return text


def _metrics(run) -> tuple[str, ...]:
    import tasks

    return tuple(tasks.get_task(run.task.name, run.task).metrics)


def _distinct(items, key):
    seen = {}
    for item in items:
        seen.setdefault(key(item), item)
    return list(seen.values())


def _grid(sweep: Sweep) -> str:
    if not sweep.grid:
        return "a single run"
    return " x ".join(f"{n} {key}" for key, n in sweep.grid.items())


def _config_checks(runs) -> list[Check]:
    from jola.errors import UserError
    from jola.runner import validate

    problems: dict[str, Check] = {}
    for run in runs:
        try:
            validate(run)
        except UserError as err:
            problems.setdefault(str(err), Check("config", run.task.name, PROBLEM, str(err)))
    return list(problems.values())


def _device_of(run, gpus: list[Gpu]) -> str:
    if run.model.device == "cpu" or not gpus:
        return "cpu"
    return "cuda"


def run_checks(sweep: Sweep, hub: HubState, gpus: list[Gpu], assumed: bool):
    """Every check of a sweep; also the model/encoder repos and datasets still to fetch."""
    from jola.results import RESULTS_FILE
    from jola.runner import run_directory

    runs = sweep.runs
    todo = [r for r in runs if not (run_directory(r) / RESULTS_FILE).exists()]
    checks = [
        Check(
            "runs",
            f"{len(runs)} run(s)",
            OK,
            f"{_grid(sweep)}; {len(runs) - len(todo)} finished, {len(todo)} to do",
        ),
        Check("hub", hub.mode, NOTE, hub.detail),
    ]
    checks += _config_checks(runs)
    fetches: list[Fetch] = []
    for model_cfg in _distinct((r.model for r in runs), lambda m: repr(dataclasses.asdict(m))):
        facts = check_model(model_cfg, hub)
        checks.append(facts.check)
        checks.append(check_gpu(model_cfg, facts.parameters, gpus, assumed))
        fetches += [facts.fetch] if facts.fetch else []
    encoders = sorted({r.eval.bertscore_model for r in runs if "bertscore" in _metrics(r)})
    for encoder in encoders:
        facts = check_bertscore_encoder(encoder, hub)
        checks.append(facts.check)
        fetches += [facts.fetch] if facts.fetch else []
    dataset_checks, dataset_fetches = check_datasets(runs, hub)
    checks += dataset_checks
    sizes = [f.size for f in fetches] + [
        None if f.size is None else 2 * f.size for f in dataset_fetches
    ]
    missing = sum(c.status == MISSING for c in checks)
    pending = len(sizes) + (missing if not hub.online else 0)
    need = sum(sizes) if pending and len(sizes) == pending and None not in sizes else None
    checks.append(check_disk([hub_cache_dir(), datasets_cache_dir()], need, pending))
    checks.append(check_time([(r, _device_of(r, gpus)) for r in todo]))
    return checks, fetches, dataset_fetches


def _line(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0] if text else ''}"[:300]


def _download(fetches: list[Fetch], dataset_fetches: list[DatasetFetch], say) -> list[Check]:
    """Fetch every pending repo and dataset; a failure is a check line."""
    from datasets import load_dataset

    failures = []
    for fetch in fetches:
        say(f"downloading {fetch.kind} {fetch.repo_id} ...")
        try:
            download_snapshot(fetch.repo_id, fetch.revision)
        except Exception as err:
            failures.append(
                Check(fetch.kind, fetch.repo_id, PROBLEM, f"download failed: {_line(err)}")
            )
    for fetch in dataset_fetches:
        say(f"downloading dataset {fetch.where} ...")
        try:  # the hub source's own call, which also writes the arrow copy offline runs read
            load_dataset(*fetch.args, **fetch.kwargs)
        except Exception as err:
            failures.append(
                Check("dataset", fetch.where, PROBLEM, f"download failed: {_line(err)}")
            )
    return failures


def offline_command(overrides: list[str]) -> str:
    """The command that runs the sweep on a machine without network, with the same caches."""
    env = ["HF_HUB_OFFLINE=1", "HF_DATASETS_OFFLINE=1"]
    env += [
        f"{name}={shlex.quote(os.environ[name])}"
        for name in CACHE_VARIABLES
        if os.environ.get(name)
    ]
    return " ".join([*env, "python", "run.py", "-m", *(shlex.quote(o) for o in overrides)])


def _footnotes(sweep: Sweep, checks: list[Check], download: bool) -> list[str]:
    notes = [
        GPU_NEED_FORMULA,
        DISK_FORMULA,
        f"datasets: the first {ROWS_READ} rows of each split a task reads are converted with the "
        "task's own row conversion; sizes come from the split metadata (filtered tasks such as "
        "MMLU-Pro count their rows)",
        "time: measured end-to-end runs of docs/benchmarks.md only; 'unknown' where none matches",
    ]
    notes += sweep.notes
    if not download and any(c.status == MISSING for c in checks):
        command = shlex.join(["python", "scripts/preflight.py", *sweep.overrides, "--download"])
        notes.append(f"fetch what is missing on a machine with network: {command}")
    return notes


def preflight(
    overrides: list[str],
    *,
    gpus: list[Gpu] | None = None,
    download: bool = False,
    hub: HubState | None = None,
    say=print,
) -> PreflightResult:
    """Expand the sweep of ``overrides``, check it (and with ``download`` fetch what it needs).

    ``gpus`` replaces the visible CUDA devices (simulated or assumed GPUs); ``hub`` replaces
    the probe of the hub. Raises :class:`UsageError` when the overrides do not compose.
    """
    from datasets.utils.logging import disable_progress_bar, set_verbosity_error

    from jola.profiles import hub_resources

    disable_progress_bar()
    set_verbosity_error()
    sweep = expand_sweep(overrides)
    assumed = gpus is not None
    gpus = detect_gpus() if gpus is None else gpus
    if hub is None:
        needs_hub = any(hub_resources(r, _metrics(r)) for r in sweep.runs)
        hub = (
            hub_state() if needs_hub or download else HubState("unused", "every resource is local")
        )
    # an unreachable hub is not asked again (each library call would retry for ~25 s)
    local_only = forced_offline() if hub.mode == "unreachable" else contextlib.nullcontext()
    with local_only:
        checks, fetches, dataset_fetches = run_checks(sweep, hub, gpus, assumed)
    if not download:
        return PreflightResult(sweep, checks, _footnotes(sweep, checks, download))
    if not hub.online:
        reason = "unset HF_HUB_OFFLINE" if hub.mode == "offline" else hub.detail
        checks.append(Check("download", "--download", PROBLEM, f"needs the hub ({reason})"))
        return PreflightResult(sweep, checks, _footnotes(sweep, checks, download))
    blocking = [c for c in checks if c.failed]
    if any(c.kind == "disk" for c in blocking):
        return PreflightResult(sweep, checks, _footnotes(sweep, checks, download))
    failures = _download(fetches, dataset_fetches, say)
    say("checking again as an offline compute node would (HF_HUB_OFFLINE=1) ...")
    with forced_offline():
        offline = HubState(
            "offline", "HF_HUB_OFFLINE=1 (after --download, as on the compute nodes)"
        )
        checks, _, _ = run_checks(sweep, offline, gpus, assumed)
    # a resource that failed online too keeps the online reason (gated, not found, ...)
    before = {(c.kind, c.name): c for c in blocking}
    checks = failures + [before.get((c.kind, c.name), c) if c.failed else c for c in checks]
    result = PreflightResult(sweep, checks, _footnotes(sweep, checks, download))
    if not any(c.failed and c.kind in RESOURCE_KINDS for c in checks):
        result.offline_command = offline_command(sweep.overrides)
    return result
