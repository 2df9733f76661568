"""JoLA on a fixed head set: the base of the equal-budget controls (:mod:`jola.methods.
jola_random_k`, :mod:`jola.methods.jola_topk_warmup`), which edit ``k`` heads without gates so
that a learned selection can be compared with other selections of the same size.

The budget is ``method.k`` or the head count of a finished JoLA run (``method.k_from``, read
from its gates.json by :func:`selected_head_count`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jola import edits as editing
from jola.errors import UserError
from jola.methods.jola import Jola, JolaConfig
from jola.models import LoadedModel
from jola.results import GATES_FILE


@dataclass
class FixedHeadsConfig(JolaConfig):
    """A JoLA control that edits a fixed set of ``k`` heads, ungated (both edit kinds, as
    ``additive`` / ``multiplicative`` say, on every head of the set; no other head is edited).

    ``k``: the number of heads; ``k_from``: instead, a finished JoLA run, whose number of heads
    with either gate open at evaluation (its gates.json) is used, so that a control has the
    learned selection's budget. ``k_from`` is a run directory, its gates.json, or the folder
    holding its ``seed<seed>`` directories (e.g. ``outputs/smollm2_135m/jola_sparse/siqa/n200``):
    then the run of this run's seed is read, so every seed of a sweep is matched with the
    learned run of the same seed and the seeds share one variant directory. Exactly one of
    ``k`` and ``k_from`` must be set (checked by :meth:`validate`: the YAML leaves both open).
    """

    gated: bool = False
    k: int | None = None
    k_from: str | None = None

    def __post_init__(self) -> None:
        if self.gated:
            raise UserError(
                f"method={self.name} edits a fixed head set without gates: keep gated=false"
            )
        super().__post_init__()
        if self.k is not None and self.k < 1:
            raise UserError(f"method={self.name}: method.k must be at least 1, got {self.k}")

    def validate(self, seed: int | None = None) -> None:
        """Exactly one of ``k`` and ``k_from``; ``k_from`` is read (for the run of ``seed``)."""
        super().validate(seed)
        head_budget(self, seed)


def _k_run(path: str | Path, seed: int | None) -> Path:
    """The run directory (or gates.json) that ``k_from`` names for a run of ``seed``."""
    path = Path(path)
    if path.is_dir() and not (path / GATES_FILE).exists() and seed is not None:
        return path / f"seed{seed}"
    return path


def selected_head_count(path: str | Path, seed: int | None = None) -> int:
    """Heads with the additive or the multiplicative gate open at evaluation in a JoLA run's
    gates.json (``path``: the file, its run directory, or the folder of ``seed<seed>`` run
    directories, of which the one of ``seed`` is read)."""
    path = _k_run(path, seed)
    if path.is_dir():
        path = path / GATES_FILE
    try:
        table = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise UserError(f"method.k_from: cannot read {path} ({err})") from err
    open_heads: set[tuple[int, int]] = set()
    for kind in ("additive", "multiplicative"):
        rows = (table.get(kind) or {}).get("eval_gate")
        for layer, row in enumerate(rows or []):
            for head, value in enumerate(row):
                while isinstance(value, list) and len(value) == 1:
                    value = value[0]
                if float(value) != 0.0:
                    open_heads.add((layer, head))
    return len(open_heads)


def head_budget(cfg: FixedHeadsConfig, seed: int | None = None) -> tuple[int, str]:
    """``(k, where it comes from)``: ``method.k``, or the selected head count of the
    ``k_from`` run of ``seed`` and that run's path. Refuses neither or both being set, and a
    run that edits no head."""
    if (cfg.k is None) == (cfg.k_from is None):
        raise UserError(
            f"method={cfg.name} needs exactly one of method.k=<heads> and "
            "method.k_from=<a finished JoLA run directory>"
        )
    if cfg.k is not None:
        return cfg.k, "method.k"
    k = selected_head_count(cfg.k_from, seed)
    if k < 1:
        raise UserError(
            f"method={cfg.name}: the run {cfg.k_from} edits no head at "
            "evaluation (every gate closed), so there is no budget to match"
        )
    return k, str(_k_run(cfg.k_from, seed))


class FixedHeadsJola(Jola):
    """Base of the equal-budget controls: JoLA's edits on a fixed head set, no gates.

    Subclasses choose the set: :meth:`choose_heads` (at preparation, without data) or, for a
    warm-up on the training data, :meth:`before_training`.
    """

    rule = "fixed"

    def __init__(self, cfg: FixedHeadsConfig):
        super().__init__(cfg)
        self.k: int | None = None
        self.k_source: str | None = None
        self.selection: dict[str, Any] = {}

    def resolve_k(self) -> int:
        """The budget (:func:`head_budget`, for this run's seed; read once)."""
        if self.k is None:
            self.k, self.k_source = head_budget(self.cfg, self.seed)
        return self.k

    def check_k(self, num_layers: int, num_heads: int) -> None:
        """Refuse a budget larger than the model's number of heads."""
        self.resolve_k()
        if self.k > num_layers * num_heads:
            raise UserError(
                f"method={self.cfg.name}: k={self.k} ({self.k_source}) is more than the model's "
                f"{num_layers} x {num_heads} = {num_layers * num_heads} heads"
            )

    def choose_heads(self, num_layers: int, num_heads: int) -> list[list[int]] | None:
        """The head set chosen before any training (None: chosen later, on all heads first)."""
        return None

    def prepare(self, loaded: LoadedModel) -> None:
        proj = editing.find_output_projections(loaded.model)
        self.check_k(proj.num_layers, proj.num_heads)
        heads = self.choose_heads(proj.num_layers, proj.num_heads)
        super().prepare(loaded)
        if heads is not None:
            self.edits.set_heads(heads)

    def final_stats(self) -> dict:
        stats = super().final_stats()
        edits = self.edits
        kinds = int(edits.additive) + int(edits.multiplicative)
        stats["head_selection"] = {
            "rule": self.rule,
            "k": self.k,
            "k_source": self.k_source,
            "heads": edits.edit_config.heads,
            "edited_parameters": self.k * edits.head_dim * kinds,
            **self.selection,
        }
        return stats
