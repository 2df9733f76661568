"""The paper's ablation table: where JoLA's edits go and how they are gated, beside ours.

Columns are the paper's ablation tasks (:data:`jola.tables.published.ABLATION_TASKS`: SIQA,
WinoGrande, MMLU-Pro law and physics ACC, E2E and WebNLG BLEU); rows are this project's
ablation methods (:data:`ABLATION_METHODS`, each one row whether or not it has runs), then the
published rows: ablation 1 (MLP output / attention heads / both, without and with gates) on
Llama-3.1-8B-Instruct and ablation 2 (one gate shared by a head's two edits vs two gates) on
Qwen2.5-7B and Llama-3.1-8B-Instruct (Lai et al., ICML 2025; numbers in
:mod:`jola.tables.published`). A model gets ``<model>/ablation_n<n>.*`` for every n at which
it has a run of an ablation method other than plain ``jola`` (:func:`ablation_ns`).
"""

from __future__ import annotations

from collections.abc import Sequence

from jola.tables.build import Column, Row, Table, profile_notes, published_row
from jola.tables.collect import Cell, Results, Run
from jola.tables.labels import _safe
from jola.tables.published import (
    ABLATION_TASKS,
    PUBLISHED_ABLATION_SHARED_GATE,
    PUBLISHED_ABLATION_SITES,
    PUBLISHED_MODEL,
)
from jola.tables.scales import display

# Our method per configuration, in the paper's row order (``jola``: heads, two gates).
ABLATION_METHODS = (
    "jola_mlp_no_gates",
    "jola_mlp",
    "jola_no_gates",
    "jola",
    "jola_both_no_gates",
    "jola_both",
    "jola_shared_gate",
)
# Row names that say what each configuration is, as the paper's ablation tables do.
ABLATION_LABELS = {
    "jola_mlp_no_gates": "MLP, no gates",
    "jola_mlp": "MLP, gated",
    "jola_no_gates": "attention, no gates",
    "jola": "attention, gated (JoLA)",
    "jola_both_no_gates": "attention+MLP, no gates",
    "jola_both": "attention+MLP, gated",
    "jola_shared_gate": "attention, one shared gate",
}
SHARED_GATE_LABELS = {
    "jola_shared_gate": "attention, one shared gate",
    "jola": "attention, two gates",
}
TASK_LABELS = {
    "siqa": "SIQA",
    "winogrande": "WinoGrande",
    "mmlu_pro_law": "Law",
    "mmlu_pro_physics": "Physics",
    "e2e_nlg": "E2E",
    "web_nlg": "WebNLG",
}
# Plain jola is in every main table's runs, so only the other configurations call for the table.
_TRIGGERS = frozenset(ABLATION_METHODS) - {"jola"}


def _base(method: str) -> str:
    """The method without its variant suffix (``jola_mlp [lr=0.01]`` -> ``jola_mlp``)."""
    return method.split(" [", 1)[0]


def ablation_ns(runs: Sequence[Run], model: str) -> list[int]:
    """The n at which ``model`` has a run of an ablation method (plain jola does not count)."""
    return sorted({r.n for r in runs if r.model == model and _base(r.method) in _TRIGGERS})


def ablation_columns() -> list[Column]:
    """One column per (task, metric) of the paper's ablations, ``<task>:<metric>`` keys."""
    columns = []
    for task, metric in ABLATION_TASKS:
        suffix = "" if metric == "acc" else f" {display(metric).label}"
        columns.append(Column(f"{task}:{metric}", TASK_LABELS.get(task, task) + suffix))
    return columns


def _published_values(values: Sequence[float]) -> dict[str, float]:
    return {f"{task}:{metric}": v for (task, metric), v in zip(ABLATION_TASKS, values, strict=True)}


def published_ablation_rows() -> list[Row]:
    """Ablation 1 then ablation 2, per model, as published rows."""
    rows = [
        published_row(method, _published_values(values), name=ABLATION_LABELS[method])
        for method, values in PUBLISHED_ABLATION_SITES.items()
    ]
    for model, by_method in PUBLISHED_ABLATION_SHARED_GATE.items():
        rows += [
            published_row(
                method,
                _published_values(values),
                model=model,
                key=f"{method}_published_ablation2_{_safe(model)}",
                name=SHARED_GATE_LABELS[method],
            )
            for method, values in by_method.items()
        ]
    return rows


def ablation_table(results: Results, model: str, n: int) -> Table:
    """Our ablation methods at one n (every configuration a row), then the published rows."""
    found = {m for m in results.methods(model, n=n) if _base(m) in ABLATION_METHODS}
    variants = sorted(
        found - set(ABLATION_METHODS), key=lambda m: (ABLATION_METHODS.index(_base(m)), m)
    )
    columns = ablation_columns()

    def cells(method: str) -> dict[str, Cell]:
        return {
            f"{task}:{metric}": results.cell(model, method, task, n, metric)
            for task, metric in ABLATION_TASKS
        }

    rows = [
        Row(key=m, label=ABLATION_LABELS.get(m, m), cells=cells(m))
        for m in (*ABLATION_METHODS, *variants)
    ]
    rows += published_ablation_rows()
    notes = [
        "ACC in % (SIQA, WinoGrande, MMLU-Pro Law and Physics); E2E and WebNLG: BLEU, 0-100.",
        "Ablation 1: JoLA's edits on the MLP output, on attention heads or on both, without and "
        "with gates; ablation 2: one gate shared by a head's two edits vs two gates.",
        f"Rows marked 'published' are the JoLA paper's ablation numbers (ablation 1 on "
        f"{PUBLISHED_MODEL}; ablation 2 on each model named), printed for reference; they are "
        "not runs of this project and enter no average.",
        *profile_notes(results, model),
    ]
    return Table(
        stem=f"{_safe(model)}/ablation_n{n}",
        title=f"Ablations: {model}, n={n}",
        row_header="method",
        columns=columns,
        rows=rows,
        notes=notes,
    )
