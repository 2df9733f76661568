"""The paper's published numbers in `make tables`: every one printed exactly as published, in rows
labelled 'published' (Markdown, CSV, LaTeX), below ours, never averaged with ours or counted as
runs; the data-size plot draws the paper's curves dashed. The expected numbers are typed here
from issue 15 (the authors' slides and poster), independently of jola/tables/published.py."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from jola.tables import (
    MAIN_COLUMNS,
    MISSING,
    PUBLISHED_CURVE_LABEL,
    Results,
    make_tables,
    metric_vs_n_figure,
    published_curves,
    scan_outputs,
)
from jola.tables.cli import main as cli_main
from jola.tables.published import MAIN_ORDER

MODEL = "tiny_model"
LLAMA = "Llama-3.1-8B-Instruct"
QWEN = "Qwen2.5-7B"
SUITE_OF = {
    "siqa": "commonsense",
    "winogrande": "commonsense",
    "mmlu_pro_law": "mmlu_pro",
    "mmlu_pro_physics": "mmlu_pro",
    "e2e_nlg": "gem",
    "web_nlg": "gem",
}

# Table 1, n=200: reasoning ACC / understanding ACC / BLEU / ROUGE-L / BERTScore.
TABLE1 = {
    "zero-shot": "53.70/40.00/12.56/36.70/77.23",
    "LoRA": "66.58/42.07/13.27/36.97/77.74",
    "BitFit": "63.05/35.02/9.25/28.81/74.83",
    "RED": "46.19/37.33/11.24/32.40/76.24",
    "RePE": "63.61/35.54/8.49/27.61/74.30",
    "ReFT": "65.95/40.89/12.60/36.89/77.21",
    "LoFiT": "56.19/27.76/11.88/32.09/76.71",
    "JoLA": "70.55/47.00/17.07/40.65/80.54",
}
MAIN_HEADERS = [
    "Reasoning ACC",
    "Understanding ACC",
    "Generation BLEU",
    "Generation ROUGE-L",
    "Generation BERTScore",
]
ABLATION_HEADERS = ["SIQA", "WinoGrande", "Law", "Physics", "E2E BLEU", "WebNLG BLEU"]
# Ablation 1 (Llama): row label -> SIQA / WinoGrande / Law / Physics / E2E / WebNLG.
ABLATION1 = {
    "MLP, no gates": "50.10/51.62/34.00/20.00/10.31/14.45",
    "MLP, gated": "52.46/52.43/36.00/23.00/11.23/16.25",
    "attention, no gates": "55.94/55.33/36.00/7.00/14.77/18.12",
    "attention, gated (JoLA)": "66.22/58.33/40.00/46.00/15.54/24.39",
    "attention+MLP, no gates": "52.17/48.74/23.00/13.00/8.23/12.36",
    "attention+MLP, gated": "53.28/52.07/27.00/16.00/10.42/14.83",
}
# Ablation 2, per column "shared/two".
ABLATION2 = {
    QWEN: "73.87/75.79, 67.46/69.69, 39.00/42.00, 53.00/55.00, 26.52/28.32, 33.11/35.32",
    LLAMA: "65.44/66.22, 57.72/58.33, 38.00/40.00, 43.00/46.00, 14.92/15.54, 23.01/24.39",
}
NS = (100, 200, 300, 400, 500, 600, 800, 1000)
# Data size (JoLA/LoRA per n) and zero-shot, read off the paper's figure.
DATASIZE = {
    "siqa": "62.3/60.1, 66.2/63.4, 69.9/65.5, 70.9/66.5, 71.5/68.1, 70.6/66.7, 73.1/68.4, 74.8/70.0",
    "winogrande": (
        "53.7/52.4, 58.3/54.0, 59.6/56.9, 68.6/63.8, 70.5/65.8, 70.6/64.7, 73.4/68.3, 74.3/71.2"
    ),
}
ZERO_SHOT = {"siqa": "42.78", "winogrande": "43.88"}


def pairs(text: str) -> list[tuple[str, str]]:
    return [tuple(item.strip().split("/")) for item in text.split(",")]


def write_run(root: Path, method: str, task: str, n: int, seed: int, metrics: dict) -> None:
    run_dir = root / MODEL / method / task / f"n{n}" / f"seed{seed}"
    run_dir.mkdir(parents=True)
    results = {
        "metrics": metrics,
        "method": method,
        "task": task,
        "suite": SUITE_OF[task],
        "suite_tasks": [t for t, s in SUITE_OF.items() if s == SUITE_OF[task]],
        "model": {"name": MODEL, "num_parameters": 1000},
        "n": n,
        "seed": seed,
        "data": {"n_test": 10},
        "config": {"seed": seed, "n": n},
    }
    (run_dir / "results.json").write_text(json.dumps(results, sort_keys=True))


def md_cells(path: Path) -> dict[str, dict[str, str]]:
    """Markdown table -> {row label: {column header: cell text}}."""
    lines = [ln for ln in path.read_text().splitlines() if ln.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines[2:]]
    assert len({r[0] for r in rows}) == len(rows), "row labels must be unique"
    return {r[0]: dict(zip(header, r)) for r in rows}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Our runs: JoLA on siqa (n=100, 200 with two seeds) and winogrande, one MLP-ablation run
    on siqa and e2e_nlg; no plots (the plot test draws its figure directly)."""
    base = tmp_path_factory.mktemp("published")
    out = base / "outputs"
    write_run(out, "jola", "siqa", 200, 1, {"acc": 0.40})
    write_run(out, "jola", "siqa", 200, 2, {"acc": 0.50})
    write_run(out, "jola", "siqa", 100, 1, {"acc": 0.30})
    write_run(out, "jola", "winogrande", 200, 1, {"acc": 0.60})
    write_run(out, "jola_mlp", "siqa", 200, 1, {"acc": 0.25})
    write_run(out, "jola_mlp", "e2e_nlg", 200, 1, {"bleu": 7.5, "rougeL": 20.0})
    report = make_tables(out, base / "tables", plots=False)
    return out, base / "tables", report


def test_main_table_prints_every_published_row_as_published(built):
    _, folder, _ = built
    cells = md_cells(folder / MODEL / "main_n200.md")
    for method, numbers in TABLE1.items():
        row = cells[f"{method} (published, {LLAMA})"]
        assert [row[h] for h in MAIN_HEADERS] == numbers.split("/"), method
        assert row["seeds"] == MISSING  # not a run of ours
    labels = list(cells)
    first_published = min(i for i, label in enumerate(labels) if "published" in label)
    assert all("published" in label for label in labels[first_published:])  # below ours


def test_published_rows_never_enter_our_numbers(built):
    _, folder, report = built
    cells = md_cells(folder / MODEL / "main_n200.md")
    # our JoLA: siqa 40/50 and winogrande 60 -> mean of the task means (45 + 60) / 2 = 52.50
    assert cells["JoLA"]["Reasoning ACC"].startswith("52.50")
    assert cells["JoLA"]["Understanding ACC"] == MISSING  # the published 47.00 fills nothing
    for ours in ("LoRA", "RED", "ReFT"):
        assert ours not in cells or set(cells[ours].values()) == {ours, MISSING}
    assert report.runs == 6
    summary = pd.read_csv(folder / "summary.csv")
    assert not summary["method"].str.contains("published").any()
    assert len(summary) == 6  # jola siqa n=200 and n=100, winogrande; jola_mlp siqa, e2e x2


def test_published_rows_are_labelled_in_csv_and_latex(built):
    _, folder, _ = built
    frame = pd.read_csv(folder / MODEL / "main_n200.csv")
    published = frame[frame["published"]]
    assert len(published) == len(TABLE1)
    assert published["label"].str.endswith(f"(published, {LLAMA})").all()
    jola = published[published["method"] == "jola_published"].iloc[0]
    assert [f"{jola[h]:.2f}" for h in MAIN_HEADERS] == TABLE1["JoLA"].split("/")
    tex = (folder / MODEL / "main_n200.tex").read_text()
    line = next(ln for ln in tex.splitlines() if ln.startswith(f"JoLA (published, {LLAMA})"))
    assert line.split(" & ")[1:6] == TABLE1["JoLA"].split("/")
    lines = tex.splitlines()
    first = next(i for i, ln in enumerate(lines) if "(published" in ln)
    assert lines[first - 1] == "\\midrule"  # a rule between ours and the paper's


def test_main_columns_match_the_published_order():
    assert tuple(key for key, *_ in MAIN_COLUMNS) == MAIN_ORDER


def test_ablation_table_prints_both_ablations_exactly(built):
    _, folder, report = built
    cells = md_cells(folder / MODEL / "ablation_n200.md")
    assert [h for h in next(iter(cells.values())) if h not in ("method", "seeds")] == (
        ABLATION_HEADERS
    )
    for label, numbers in ABLATION1.items():
        row = cells[f"{label} (published, {LLAMA})"]
        assert [row[h] for h in ABLATION_HEADERS] == numbers.split("/"), label
    for model, columns in ABLATION2.items():
        shared = cells[f"attention, one shared gate (published, {model})"]
        two = cells[f"attention, two gates (published, {model})"]
        got = [(shared[h], two[h]) for h in ABLATION_HEADERS]
        assert got == pairs(columns), model
    # ours: one row per ablation configuration, filled from our runs only
    assert cells["MLP, gated"]["SIQA"] == "25.00"
    assert cells["MLP, gated"]["E2E BLEU"] == "7.50"
    assert cells["MLP, gated"]["WinoGrande"] == MISSING
    assert cells["attention, gated (JoLA)"]["SIQA"] == "45.00 ± 7.07"
    assert set(cells["MLP, no gates"].values()) == {"MLP, no gates", MISSING}
    assert len(report.ablation_markdown) == 1
    assert "Ablations: tiny_model, n=200" in report.ablation_markdown[0]


def test_ablation_table_needs_an_ablation_run(tmp_path):
    write_run(tmp_path / "out", "jola", "siqa", 200, 1, {"acc": 0.5})
    report = make_tables(tmp_path / "out", tmp_path / "tables", plots=False)
    assert not list((tmp_path / "tables").rglob("ablation_*"))
    assert report.ablation_markdown == []


def test_cli_prints_the_ablation_table(built, tmp_path, capsys):
    outputs, _, _ = built
    assert cli_main(["--outputs", str(outputs), "--tables", str(tmp_path), "--no-plots"]) == 0
    printed = capsys.readouterr().out
    assert f"attention, gated (JoLA) (published, {LLAMA})" in printed
    assert f"JoLA (published, {LLAMA})" in printed


@pytest.mark.parametrize("task", ["siqa", "winogrande"])
def test_datasize_table_has_the_figure_curves(built, tmp_path, task):
    outputs, folder, _ = built
    if task != "siqa":
        folder = tmp_path
        make_tables(outputs, folder, datasize_task=task, plots=False)
    path = folder / MODEL / f"datasize_{task}.md"
    cells = md_cells(path)
    how = "read from the figure, ±0.5"
    jola = cells[f"JoLA (published, {LLAMA}, {how})"]
    lora = cells[f"LoRA (published, {LLAMA}, {how})"]
    zero = cells[f"zero-shot (published, {LLAMA}, {how})"]
    got = [(f"{float(jola[f'n={n}']):.1f}", f"{float(lora[f'n={n}']):.1f}") for n in NS]
    assert got == pairs(DATASIZE[task])
    assert {zero[f"n={n}"] for n in NS} == {ZERO_SHOT[task]}
    # ours beside them, at our n only
    if task == "siqa":
        assert cells["JoLA"]["n=100"] == "30.00" and cells["JoLA"]["n=200"] == "45.00 ± 7.07"
    else:
        assert cells["JoLA"]["n=200"] == "60.00" and cells["JoLA"]["n=100"] == MISSING
    assert cells["JoLA"]["n=300"] == MISSING and cells["JoLA"]["seeds"] != MISSING
    assert "read by eye from the JoLA paper's data-size figure" in path.read_text()
    frame = pd.read_csv(path.with_suffix(".csv"))
    assert frame["published"].sum() == 3
    assert frame[frame["published"]]["label"].str.contains(how).all()
    tex = path.with_suffix(".tex").read_text()
    assert f"JoLA (published, {LLAMA}, read from the figure, $\\pm$0.5)" in tex


def _lines(fig):
    """Legend label -> plotted line (an error-bar series: its data line)."""
    (ax,) = fig.axes
    lines = {line.get_label(): line for line in ax.get_lines()}
    lines.update({c.get_label(): c.lines[0] for c in ax.containers})
    return lines


def test_plot_draws_the_published_curves_dashed(built):
    outputs, _, _ = built
    results = Results(scan_outputs(outputs).runs)
    for task in ("siqa", "winogrande"):
        lines = _lines(metric_vs_n_figure(results, MODEL, task))
        dashed = {label: line for label, line in lines.items() if PUBLISHED_CURVE_LABEL in label}
        assert PUBLISHED_CURVE_LABEL == "published (read from the paper's figure)"
        assert set(dashed) == {
            f"{m}: {PUBLISHED_CURVE_LABEL}" for m in ("zero-shot", "JoLA", "LoRA")
        }
        assert all(line.get_linestyle() == "--" for line in dashed.values())
        jola = dashed[f"JoLA: {PUBLISHED_CURVE_LABEL}"]
        lora = dashed[f"LoRA: {PUBLISHED_CURVE_LABEL}"]
        zero = dashed[f"zero-shot: {PUBLISHED_CURVE_LABEL}"]
        assert list(jola.get_xdata()) == list(NS) == list(lora.get_xdata())
        got = [(f"{a:.1f}", f"{b:.1f}") for a, b in zip(jola.get_ydata(), lora.get_ydata())]
        assert got == pairs(DATASIZE[task])
        assert {f"{y:.2f}" for y in zero.get_ydata()} == {ZERO_SHOT[task]}
        ours = [line for label, line in lines.items() if label.startswith("JoLA (seeds")]
        assert ours and all(line.get_linestyle() != "--" for line in ours)
    siqa_ours = next(
        line
        for label, line in _lines(metric_vs_n_figure(results, MODEL, "siqa")).items()
        if label.startswith("JoLA (seeds")
    )
    assert list(siqa_ours.get_xdata()) == [100, 200]
    assert list(siqa_ours.get_ydata()) == pytest.approx([30.0, 45.0])


def test_no_published_curves_where_the_paper_has_none():
    assert published_curves("e2e_nlg", "bleu") == []
    assert published_curves("siqa", "bleu") == []
    assert published_curves("piqa", "acc") == []
    assert [m for m, _, _ in published_curves("siqa", "acc")] == ["zero_shot", "jola", "lora"]
