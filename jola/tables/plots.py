"""Plots (PNG): metric vs n per task, gate heatmaps and gate sparsity over training.

The metric-vs-n plot of a task in the paper's data-size figure also draws that figure's curves
(:data:`jola.tables.published.PUBLISHED_DATASIZE`, read off it by eye), dashed and labelled as
such, beside ours.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from jola.figures import gate_figure, new_figure, save_png
from jola.results import GATES_FILE, TRAIN_LOG_FILE
from jola.tables.collect import Results, Run
from jola.tables.labels import METHOD_ORDER, _safe, method_label, order_methods
from jola.tables.published import PUBLISHED_DATASIZE, PUBLISHED_ZERO_SHOT_DATASIZE
from jola.tables.scales import display

MIN_Y_SPAN = 5.0  # points on the printed 0-100 scale


def _colors(methods: Sequence[str]) -> dict[str, str]:
    palette = [f"C{i}" for i in range(10)]
    known = {m: palette[i % 10] for i, m in enumerate(METHOD_ORDER)}
    others = [m for m in methods if m not in known]
    known.update({m: palette[(len(METHOD_ORDER) + i) % 10] for i, m in enumerate(others)})
    return known


PUBLISHED_CURVE_LABEL = "published (read from the paper's figure)"


def published_curves(task: str, metric: str) -> list[tuple[str, list[int], list[float]]]:
    """(method, ns, values) of the paper's data-size figure for ``task`` (acc only), in method
    order; zero-shot, which does not depend on n, as a flat line over the figure's n."""
    curves = PUBLISHED_DATASIZE.get(task, {}) if metric == "acc" else {}
    ns = sorted({n for curve in curves.values() for n in curve})
    out = [(m, sorted(curves[m]), [curves[m][n] for n in sorted(curves[m])]) for m in curves]
    if ns and task in PUBLISHED_ZERO_SHOT_DATASIZE:
        out.append(("zero_shot", ns, [PUBLISHED_ZERO_SHOT_DATASIZE[task]] * len(ns)))
    order = order_methods(m for m, _, _ in out)
    return sorted(out, key=lambda curve: order.index(curve[0]))


def plot_metric_vs_n(results: Results, model: str, task: str, path: Path) -> Path | None:
    """Metric (acc when present) vs n per method, error bars = std over seeds, and the
    paper's curves for the task (:func:`published_curves`) dashed; None without runs."""
    fig = metric_vs_n_figure(results, model, task)
    return None if fig is None else save_png(fig, path)


def metric_vs_n_figure(results: Results, model: str, task: str):
    """The figure :func:`plot_metric_vs_n` saves (a matplotlib Figure), None without runs."""
    runs = [r for r in results.runs if r.model == model and r.task == task]
    if not runs:
        return None
    metric_names = {m for r in runs for m in r.metrics}
    if not metric_names:
        return None
    metric = "acc" if "acc" in metric_names else min(metric_names)
    methods = order_methods({r.method for r in runs})
    curves = published_curves(task, metric)
    colors = _colors(order_methods(set(methods) | {m for m, _, _ in curves}))
    fig = new_figure(6.4, 4.2)
    ax = fig.add_subplot()
    all_ns = sorted({r.n for r in runs} | {n for _, ns, _ in curves for n in ns})
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
    for method, ns, values in curves:
        ax.plot(
            ns,
            values,
            linestyle="--",
            marker="x" if method != "zero_shot" else None,
            color=colors[method],
            alpha=0.8,
            label=f"{method_label(method)}: {PUBLISHED_CURVE_LABEL}",
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
    return fig


def plot_gates(gates: dict, title: str, path: Path) -> Path | None:
    """:func:`gate_figure` saved as a PNG at ``path``; None (nothing written) without gates."""
    fig = gate_figure(gates, title)
    return None if fig is None else save_png(fig, path)


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
    fig = new_figure(7.0, 4.2)
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
    return save_png(fig, path)


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
