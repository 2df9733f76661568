"""Run directories that tell configurations apart: ``<model>/<method>/<task>/n<n>[/<variant>]/seed<seed>``.

A run whose computational config equals the defaults of its model, task and method (their
``conf/<group>/<name>.yaml``, resolved with the run's data profile) keeps the readable
``n<n>/seed<seed>`` layout. Any other value adds one deterministic variant segment derived from
the config itself, never from the command line: the differing keys in sorted order, e.g.
``lr=0.001,r=16``; a segment that would be too long becomes a few key names plus a hash of the
whole difference. So ``-m method.train.lr=1e-3,5e-3`` gives two directories, and the same config
always lands in the same one.

Settings that do not change what a run computes (:data:`NON_COMPUTATIONAL`) never split or
block a run: output folder, overwrite, progress bars, the device, the model cache folder,
logging.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from jola.config import CONF_DIR

# Keys that name the directory itself, and keys that change nothing a run computes.
DIRECTORY_KEYS = ("model.name", "method.name", "task.name", "n", "seed")
NON_COMPUTATIONAL = (
    "output_root",
    "overwrite",
    "eval.progress",
    "eval.bertscore_batch_size",
    "model.device",
    "model.cache_dir",
    "logger.",
)
MAX_SEGMENT = 80


def flatten(data: dict, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}`` (lists stay values)."""
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def is_ignored(key: str) -> bool:
    """True for a key that does not change what is computed, or that names the directory."""
    for pattern in (*NON_COMPUTATIONAL, *DIRECTORY_KEYS):
        if key == pattern or (pattern.endswith(".") and key.startswith(pattern)):
            return True
    return False


def differing_keys(old: dict, new: dict) -> list[str]:
    """The keys (flattened) whose values differ between two recorded configs, leaving out the
    ones that change nothing computed (the directory's own keys count)."""
    a, b = flatten(old), flatten(new)
    return [
        key
        for key in sorted(set(a) | set(b))
        if not (is_ignored(key) and key not in DIRECTORY_KEYS) and a.get(key) != b.get(key)
    ]


def config_differences(recorded: dict, current: dict) -> list[str]:
    """``key: old -> new`` for each of :func:`differing_keys` of a finished run's config and
    the requested one."""
    old, new = flatten(recorded), flatten(current)
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in differing_keys(recorded, current)]


@lru_cache(maxsize=256)
def _load_group_yaml(group: str, name: str, seen: tuple[str, ...] = ()) -> dict | None:
    """A group option's YAML with the options it inherits (its ``defaults`` list) merged in;
    schema entries (``*_schema``) are skipped. None when the option has no YAML."""
    path = CONF_DIR / group / f"{name}.yaml"
    if not path.exists() or name in seen:
        return None
    own = OmegaConf.to_container(OmegaConf.load(path)) or {}
    defaults = own.pop("defaults", []) or []
    merged = OmegaConf.create({})
    self_merged = False
    for entry in defaults:
        if entry == "_self_":
            merged = OmegaConf.merge(merged, own)
            self_merged = True
        elif isinstance(entry, str) and not entry.endswith("_schema"):
            parent = _load_group_yaml(group, entry, (*seen, name))
            if parent is not None:
                merged = OmegaConf.merge(merged, parent)
    if not self_merged:
        merged = OmegaConf.merge(merged, own)
    return OmegaConf.to_container(merged)


def _with_defaults(current, group: str, name: str):
    """The group's YAML defaults on the schema of ``current`` (``current`` itself without a
    YAML: nothing to compare against)."""
    values = _load_group_yaml(group, name)
    if values is None or not dataclasses.is_dataclass(current):
        return current
    merged = OmegaConf.merge(OmegaConf.structured(type(current)), values)
    return OmegaConf.to_object(merged)


def reference_config(cfg):
    """The run's model, task and method with nothing changed from their YAML defaults, on the
    data profile those defaults resolve to (``data: auto``)."""
    from jola.config import RunConfig

    return RunConfig(
        model=_with_defaults(cfg.model, "model", cfg.model.name),
        task=_with_defaults(cfg.task, "task", cfg.task.name),
        method=_with_defaults(cfg.method, "method", cfg.method.name),
        n=cfg.n,
        seed=cfg.seed,
    )


def differences(cfg) -> dict[str, Any]:
    """The computational keys of a resolved RunConfig whose values differ from the defaults of
    its model, task and method (key -> the run's value).

    A data profile other than the one the defaults resolve to is one difference (``data``);
    what it implies (the task source, the BERTScore encoder) is not repeated."""
    from jola.methods import method_entry
    from jola.resolution import resolve_profile

    ignored_train = not method_entry(cfg.method).trains  # zero-shot ignores method.train.*
    reference = reference_config(cfg)
    default_profile = resolve_profile(reference, quiet=True).data
    reference = resolve_profile(dataclasses.replace(reference, data=cfg.data), quiet=True)
    current, expected = flatten(dataclasses.asdict(cfg)), flatten(dataclasses.asdict(reference))
    diffs = {
        key: current.get(key)
        for key in sorted(set(current) | set(expected))
        if not is_ignored(key)
        and key != "data"
        and not (ignored_train and key.startswith("method.train."))
        and current.get(key) != expected.get(key)
    }
    if cfg.data != default_profile:
        diffs = {"data": cfg.data, **diffs}
    return diffs


def _format_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if value is None:
        return "null"
    if isinstance(value, (list, tuple)):
        return "+".join(_format_value(v) for v in value) or "[]"
    if isinstance(value, dict):
        return "{}" if not value else json.dumps(value, sort_keys=True)
    return str(value)


def _short_names(keys: list[str]) -> dict[str, str]:
    """The last component of each key, or the whole dotted key where two would collide."""
    last = [key.rsplit(".", 1)[-1] for key in keys]
    return {key: (short if last.count(short) == 1 else key) for key, short in zip(keys, last)}


def variant_name(diffs: dict[str, Any]) -> str:
    """The directory segment for a set of differences ('' for none)."""
    if not diffs:
        return ""
    names = _short_names(list(diffs))
    text = ",".join(f"{names[k]}={_format_value(v)}" for k, v in diffs.items())
    segment = re.sub(r"[^A-Za-z0-9._=+,-]+", "-", text)
    if len(segment) <= MAX_SEGMENT and segment == text:
        return segment
    digest = hashlib.sha256(json.dumps(diffs, sort_keys=True, default=str).encode()).hexdigest()[
        :10
    ]
    head = re.sub(r"[^A-Za-z0-9._+-]+", "-", "+".join(names[k] for k in diffs))[:40]
    return f"{head}-{digest}"


def run_subdir(cfg) -> Path:
    """``<model>/<method>/<task>/n<n>[/<variant>]/seed<seed>`` of a resolved RunConfig."""
    parts = [cfg.model.name, cfg.method.name, cfg.task.name, f"n{cfg.n}"]
    variant = variant_name(differences(cfg))
    if variant:
        parts.append(variant)
    return Path(*parts, f"seed{cfg.seed}")


def _plain_subdir(job) -> str:
    """The layout without a variant, from the raw keys (used when the config is invalid:
    the run itself then reports the error in one line)."""
    try:
        model, method, task = job.model.name, job.method.name, job.task.name
        return f"{model}/{method}/{task}/n{job.n}/seed{job.seed}"
    except Exception:  # noqa: BLE001 - any broken config still gets a directory name
        return "invalid-config"


def hydra_run_subdir(*, _root_) -> str:
    """OmegaConf resolver ``${jola_run_subdir:}``: the run directory below ``output_root`` for
    Hydra's ``run.dir`` and ``sweep.subdir``, computed exactly as the runner computes it."""
    from jola.config import RunConfig
    from jola.resolution import resolve_profile

    job = OmegaConf.masked_copy(_root_, [key for key in _root_ if key != "hydra"])
    try:
        values = {
            key: OmegaConf.to_object(job[key]) if OmegaConf.is_config(job[key]) else job[key]
            for key in job
        }
        cfg = resolve_profile(RunConfig(**values), quiet=True)
        return run_subdir(cfg).as_posix()
    except Exception:  # noqa: BLE001 - any bad config: the run itself reports it in one line
        return _plain_subdir(job)


def hydra_output_root(*, _root_) -> str:
    """OmegaConf resolver ``${jola_output_root:}``: ``output_root`` for Hydra's directories, or,
    when it is not a writable directory, a throw-away folder under the temp dir, so that Hydra's
    own mkdir does not end in a traceback and the run refuses the value in one line."""
    import tempfile

    from jola.errors import UserError
    from jola.rundir import check_output_root

    output_root = str(_root_.output_root)
    try:
        check_output_root(output_root)
    except UserError:
        return str(Path(tempfile.gettempdir()) / "jola-refused-output-root")
    return output_root


def register_resolver() -> None:
    """Make ``${jola_run_subdir:}`` and ``${jola_output_root:}`` available to Hydra's
    directory settings."""
    if not OmegaConf.has_resolver("jola_run_subdir"):
        OmegaConf.register_new_resolver("jola_run_subdir", hydra_run_subdir, use_cache=False)
    if not OmegaConf.has_resolver("jola_output_root"):
        OmegaConf.register_new_resolver("jola_output_root", hydra_output_root, use_cache=False)
