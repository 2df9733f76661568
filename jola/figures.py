"""Figures drawn both during a run (the tracker's gate heatmaps) and by ``make tables``: the
figure and PNG conventions, and the gate heatmaps of a gates.json. Matplotlib only, imported
lazily; nothing here reads results folders (that is :mod:`jola.tables`)."""

from __future__ import annotations

from pathlib import Path

PLOT_DPI = 100
MIN_Y_SPAN = 5.0  # points on the printed 0-100 scale
PNG_METADATA = {"Software": None}  # no version string; matplotlib writes no timestamp into PNGs


def new_figure(width: float, height: float, layout: str | None = None):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=PLOT_DPI, layout=layout)


def save_png(fig, path: Path) -> Path:
    import matplotlib

    path.parent.mkdir(parents=True, exist_ok=True)
    with matplotlib.rc_context({"svg.hashsalt": "jola-tables", "path.simplify": True}):
        fig.savefig(path, format="png", dpi=PLOT_DPI, metadata=PNG_METADATA)
    return path


def gate_matrix(values) -> list[list[float]] | None:
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
    matrices = {(k, q): gate_matrix(gates[k].get(q)) for k in kinds for q, _ in quantities}
    sample = next((m for m in matrices.values() if m), None)
    if not sample:
        return None
    layers, heads = len(sample), len(sample[0])
    height = 1.2 + 3.6 * len(quantities)
    fig = new_figure(4.2 * len(kinds) + 1.2, height, layout="constrained")
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
                detail = f"mean {sum(values) / len(values):.3f}"
            ax.set_title(f"{kind}: {quantity_label} ({detail})", fontsize=9)
            ax.set_xlabel("head")
            ax.set_ylabel("layer")
            ax.set_xticks(range(0, heads, max(1, heads // 8)))
            ax.set_yticks(range(0, layers, max(1, layers // 10)))
    if image is not None:
        fig.colorbar(image, ax=[ax for line in axes for ax in line], shrink=0.8)
    fig.suptitle(title, fontsize=10)
    return fig
