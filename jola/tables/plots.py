"""Plots (PNG): metric vs n per task, gate heatmaps and gate sparsity over training."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from jola.results import GATES_FILE, TRAIN_LOG_FILE
from jola.tables.collect import Results, Run, _mean
from jola.tables.labels import METHOD_ORDER, _safe, method_label, order_methods
from jola.tables.scales import display

PLOT_DPI = 100
MIN_Y_SPAN = 5.0  # points on the printed 0-100 scale
PNG_METADATA = {"Software": None}  # no version string; matplotlib writes no timestamp into PNGs


def _figure(width: float, height: float, layout: str | None = None):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=PLOT_DPI, layout=layout)


def _save(fig, path: Path) -> Path:
    import matplotlib

    path.parent.mkdir(parents=True, exist_ok=True)
    with matplotlib.rc_context({"svg.hashsalt": "jola-tables", "path.simplify": True}):
        fig.savefig(path, format="png", dpi=PLOT_DPI, metadata=PNG_METADATA)
    return path


def _colors(methods: Sequence[str]) -> dict[str, str]:
    palette = [f"C{i}" for i in range(10)]
    known = {m: palette[i] for i, m in enumerate(METHOD_ORDER)}
    others = [m for m in methods if m not in known]
    known.update({m: palette[(len(METHOD_ORDER) + i) % 10] for i, m in enumerate(others)})
    return known


def plot_metric_vs_n(results: Results, model: str, task: str, path: Path) -> Path | None:
    """Metric (acc when present) vs n per method, error bars = std over seeds."""
    runs = [r for r in results.runs if r.model == model and r.task == task]
    if not runs:
        return None
    metric_names = {m for r in runs for m in r.metrics}
    if not metric_names:
        return None
    metric = "acc" if "acc" in metric_names else min(metric_names)
    methods = order_methods({r.method for r in runs})
    colors = _colors(methods)
    fig = _figure(6.4, 4.2)
    ax = fig.add_subplot()
    all_ns = sorted({r.n for r in runs})
    for method in methods:
        ns = sorted({r.n for r in runs if r.method == method})
        cells = [results.cell(model, method, task, n, metric) for n in ns]
        points = [(n, c) for n, c in zip(ns, cells) if not c.missing]
        if not points:
            continue
        ax.errorbar(
            [n for n, _ in points],
            [c.mean for _, c in points],
            yerr=[c.std or 0.0 for _, c in points],
            marker="o",
            capsize=4,
            color=colors[method],
            label=f"{method_label(method)} (seeds: {'/'.join(str(c.seed_counts[0]) for _, c in points)})",
        )
    ax.set_xscale("log")
    ax.set_xticks(all_ns)
    ax.set_xticklabels([str(n) for n in all_ns])
    ax.minorticks_off()
    if len(all_ns) == 1:
        ax.set_xlim(all_ns[0] / 1.5, all_ns[0] * 1.5)
    low, high = ax.get_ylim()
    if high - low < MIN_Y_SPAN:  # a lone point would otherwise get a hair-thin axis
        bottom = max(0.0, (low + high) / 2 - MIN_Y_SPAN / 2)  # every metric is >= 0
        ax.set_ylim(bottom, bottom + MIN_Y_SPAN)
    label = display(metric).label + (" (%)" if metric == "acc" else "")
    ax.set_xlabel("training examples n (log scale)")
    ax.set_ylabel(label)
    ax.set_title(f"{task}: {label} vs n ({model}); error bars: std over seeds")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return _save(fig, path)


def _matrix(values) -> list[list[float]] | None:
    """A layers x heads list from gates.json (squeezing trailing singleton dimensions)."""
    if values is None:
        return None
    rows = []
    for layer in values:
        heads = []
        for head in layer if isinstance(layer, list) else [layer]:
            while isinstance(head, list) and len(head) == 1:
                head = head[0]
            heads.append(float(head))
        rows.append(heads)
    return rows


def gate_figure(gates: dict, title: str):
    """A matplotlib Figure of heatmaps (layers x heads) of the evaluation gates, additive and
    multiplicative side by side, with a second row of P(open) when ``gates`` has it; ``gates``
    is laid out as gates.json. None when it holds no gate matrix."""
    kinds = [k for k in ("additive", "multiplicative") if isinstance(gates.get(k), dict)]
    if not kinds:
        return None
    quantities = [("eval_gate", "evaluation gate")]
    if any(gates[k].get("prob_open") is not None for k in kinds):
        quantities.append(("prob_open", "P(gate open)"))
    matrices = {(k, q): _matrix(gates[k].get(q)) for k in kinds for q, _ in quantities}
    sample = next((m for m in matrices.values() if m), None)
    if not sample:
        return None
    layers, heads = len(sample), len(sample[0])
    height = 1.2 + 3.6 * len(quantities)
    fig = _figure(4.2 * len(kinds) + 1.2, height, layout="constrained")
    axes = fig.subplots(len(quantities), len(kinds), squeeze=False)
    image = None
    for row, (quantity, quantity_label) in enumerate(quantities):
        for col, kind in enumerate(kinds):
            ax = axes[row][col]
            matrix = matrices[(kind, quantity)]
            if not matrix:
                ax.set_axis_off()
                ax.set_title(f"{kind}: no {quantity}", fontsize=9)
                continue
            image = ax.imshow(
                matrix, vmin=0.0, vmax=1.0, cmap="viridis", aspect="auto", interpolation="nearest"
            )
            values = [v for line in matrix for v in line]
            if quantity == "eval_gate":
                closed = sum(v == 0.0 for v in values)
                detail = f"closed {closed}/{len(values)}"
            else:
                detail = f"mean {_mean(values):.3f}"
            ax.set_title(f"{kind}: {quantity_label} ({detail})", fontsize=9)
            ax.set_xlabel("head")
            ax.set_ylabel("layer")
            ax.set_xticks(range(0, heads, max(1, heads // 8)))
            ax.set_yticks(range(0, layers, max(1, layers // 10)))
    if image is not None:
        fig.colorbar(image, ax=[ax for line in axes for ax in line], shrink=0.8)
    fig.suptitle(title, fontsize=10)
    return fig


def plot_gates(gates: dict, title: str, path: Path) -> Path | None:
    """:func:`gate_figure` saved as a PNG at ``path``; None (nothing written) without gates."""
    fig = gate_figure(gates, title)
    return None if fig is None else _save(fig, path)


def read_train_log(path: Path) -> list[dict]:
    """train_log.jsonl entries with gate statistics, one per step (the training entry when a
    step also has an evaluation entry)."""
    by_step: dict[int, dict] = {}
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError:
            continue
        if not isinstance(entry, dict) or "step" not in entry:
            continue
        if not any(k in entry for k in ("closed_frac_add", "closed_frac_mult")):
            continue
        step = int(entry["step"])
        if step not in by_step or ("loss" in entry and "loss" not in by_step[step]):
            by_step[step] = entry
    return [by_step[s] for s in sorted(by_step)]


def plot_sparsity(entries: list[dict], title: str, path: Path) -> Path | None:
    """Closed-gate fractions over training steps (with the expected open fraction and, for a
    run with ``method.target_open``, its target), expected L0 on a second axis."""
    if not entries:
        return None
    steps = [e["step"] for e in entries]
    fig = _figure(7.0, 4.2)
    ax = fig.add_subplot()
    handles = []
    for key, label, color in (
        ("closed_frac_add", "closed fraction, additive", "C0"),
        ("closed_frac_mult", "closed fraction, multiplicative", "C1"),
    ):
        points = [(e["step"], e[key]) for e in entries if e.get(key) is not None]
        if points:
            (line,) = ax.plot(*zip(*points), marker=".", color=color, label=label)
            handles.append(line)
    for key, label, style in (
        ("expected_open_frac", "expected open fraction, both kinds", "-"),
        ("target_open_now", "target open fraction (method.target_open)", ":"),
    ):
        points = [(e["step"], e[key]) for e in entries if e.get(key) is not None]
        if points:
            (line,) = ax.plot(*zip(*points), linestyle=style, color="C2", label=label)
            handles.append(line)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("training step")
    ax.set_ylabel("fraction of gates closed (evaluation gate = 0)")
    ax.grid(True, alpha=0.3)
    l0_keys = [k for k in ("expected_l0_add", "expected_l0_mult") if any(k in e for e in entries)]
    if l0_keys:
        twin = ax.twinx()
        top = 0.0
        for key, color in zip(l0_keys, ("C0", "C1")):
            points = [(e["step"], e[key]) for e in entries if e.get(key) is not None]
            kind = "additive" if key.endswith("add") else "multiplicative"
            (line,) = twin.plot(
                *zip(*points), linestyle="--", color=color, alpha=0.7, label=f"expected L0, {kind}"
            )
            handles.append(line)
            top = max([top, *(value for _, value in points)])
        twin.set_ylabel("expected L0 (sum of P(open))")
        twin.set_ylim(0, top * 1.15 or 1.0)
    ax.set_xlim(min(steps) - 1, max(steps) + 1)
    ax.legend(handles=handles, fontsize=8, loc="center right")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, path)


def model_plots(results: Results, model: str, runs: list[Run], folder: Path) -> list[Path]:
    """Every plot of one model's runs under ``folder``: metric vs n per task, and per run its
    gate heatmaps (from gates.json) and gate sparsity over training (from train_log.jsonl)."""
    written = []
    for task in sorted({r.task for r in runs}):
        path = plot_metric_vs_n(results, model, task, folder / f"{_safe(task)}_vs_n.png")
        written += [path] if path else []
    for run in runs:
        title = f"{run.model}/{run.method}/{run.task}/n{run.n}/seed{run.seed}"
        gates_path = run.run_dir / GATES_FILE
        if gates_path.is_file():
            try:
                gates = json.loads(gates_path.read_text())
            except json.JSONDecodeError:
                gates = None
            if isinstance(gates, dict):
                path = plot_gates(
                    gates, f"gates at evaluation: {title}", folder / f"gates_{run.slug}.png"
                )
                written += [path] if path else []
        log_path = run.run_dir / TRAIN_LOG_FILE
        if log_path.is_file():
            entries = read_train_log(log_path)
            path = plot_sparsity(
                entries,
                f"gate sparsity during training: {title}",
                folder / f"sparsity_{run.slug}.png",
            )
            written += [path] if path else []
    return written
