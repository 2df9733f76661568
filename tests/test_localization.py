"""Localisation (issue 13): the gates' own learning rate through optimiser parameter groups, the
Lagrangian target on the expected open fraction, the equal-budget controls, pruned evaluation
and the gate statistics, on the tiny model."""

from __future__ import annotations

import json

import pytest
import torch

from jola import gates, training
from jola.config import EvalConfig
from jola.edits import load_edits
from jola.errors import UserError
from jola.evaluation import EVAL_MODES
from jola.methods import build_method
from jola.methods.fixed_heads import selected_head_count
from jola.methods.jola import attach_trained_edits
from jola.methods.jola_random_k import random_heads
from jola.methods.jola_topk_warmup import top_k_heads
from jola.models import load_model
from jola.runner import as_run_config, run, run_directory
from jola.training import train_method
from tasks import get_task, load_splits
from tests.helpers import compose_config, tiny_overrides

LAYERS, HEADS = 2, 4  # the tiny model
SHORT = (
    "method.train.max_steps=2",
    "method.train.batch_size=4",
    "method.train.warmup_steps=0",
    "method.train.logging_steps=1",
)


def prepared(tmp_path, *overrides):
    cfg = as_run_config(compose_config(tiny_overrides(tmp_path, *overrides)))
    loaded = load_model(cfg.model)
    cfg.method.validate(seed=cfg.seed)
    method = build_method(cfg.method, seed=cfg.seed)
    method.prepare(loaded)
    return cfg, loaded, method


@pytest.fixture()
def captured_trainers(monkeypatch):
    """Every MethodTrainer that train_method builds (to look at its optimiser)."""
    built = []

    class Recording(training.MethodTrainer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            built.append(self)

    monkeypatch.setattr(training, "MethodTrainer", Recording)
    return built


# ------------------------------------------------------------------------ parameter groups


def test_gate_lr_reaches_the_optimiser_as_its_own_group_without_weight_decay(
    tmp_path, captured_trainers
):
    cfg, loaded, method = prepared(
        tmp_path,
        "method=jola",
        "method.gate_lr=0.05",
        "method.train.weight_decay=0.1",
        "method.train.lr_scheduler=linear",
        *SHORT,
    )
    splits = load_splits(cfg.task, cfg.n, cfg.seed)
    info = train_method(method, loaded, splits, cfg, tmp_path / "run")
    (trainer,) = captured_trainers
    groups = {g["name"]: g for g in trainer.optimizer.param_groups}
    assert set(groups) == {"edits", "gates"}
    edits = method.edits
    assert {id(p) for p in groups["gates"]["params"]} == {
        id(edits.log_alpha_add),
        id(edits.log_alpha_mult),
    }
    assert {id(p) for p in groups["edits"]["params"]} == {id(edits.scale), id(edits.offset)}
    assert groups["gates"]["weight_decay"] == 0.0  # never on log_alpha
    assert groups["edits"]["weight_decay"] == 0.1
    assert groups["gates"]["initial_lr"] == 0.05 and groups["edits"]["initial_lr"] == 0.005
    # the scheduler (a multiplier) scales both groups alike: their ratio stays 10
    assert groups["gates"]["lr"] == pytest.approx(10 * groups["edits"]["lr"])
    assert groups["gates"]["lr"] < 0.05  # linear decay did act
    assert info["param_groups"] == [
        {"name": "edits", "lr": 0.005, "weight_decay": 0.1, "parameters": 2 * 2 * 4 * 16},
        {"name": "gates", "lr": 0.05, "weight_decay": 0.0, "parameters": 2 * 2 * 4},
    ]


def test_default_gate_lr_is_the_training_lr(tmp_path, captured_trainers):
    cfg, loaded, method = prepared(tmp_path, "method=jola", *SHORT)
    train_method(method, loaded, load_splits(cfg.task, cfg.n, cfg.seed), cfg, tmp_path / "r")
    lrs = {g["name"]: g["initial_lr"] for g in captured_trainers[0].optimizer.param_groups}
    assert lrs == {"edits": 0.005, "gates": 0.005}


@pytest.mark.parametrize("name, group, decay", [("lora", "all", 0.1), ("bitfit", "biases", 0.0)])
def test_lora_and_bitfit_keep_one_group(tmp_path, captured_trainers, name, group, decay):
    cfg, loaded, method = prepared(
        tmp_path, f"method={name}", "method.train.weight_decay=0.1", *SHORT
    )
    train_method(method, loaded, load_splits(cfg.task, cfg.n, cfg.seed), cfg, tmp_path / "r")
    (only,) = captured_trainers[0].optimizer.param_groups
    assert only["name"] == group and only["weight_decay"] == decay  # biases: never decayed
    assert only["initial_lr"] == cfg.method.train.lr
    assert {id(p) for p in only["params"]} == {
        id(p) for p in method.trainable_parameters(loaded.model)
    }


def test_bad_localisation_values_are_refused(tmp_path):
    def build(*extra):
        cfg = as_run_config(compose_config(tiny_overrides(tmp_path, "method=jola", *extra)))
        build_method(cfg.method)

    with pytest.raises(UserError, match="gate_lr must be positive"):
        build("method.gate_lr=0")
    with pytest.raises(UserError, match="target_open must be a fraction"):
        build("method.target_open=1.5")
    with pytest.raises(UserError, match="needs method.target_open"):
        build("method.target_lr=0.1")
    with pytest.raises(UserError, match="needs gates"):
        build("method.target_open=0.1", "method.gated=false")
    with pytest.raises(UserError, match="target_check must be one of expected, eval_gates"):
        build("method.target_open=0.1", "method.target_check=gates")
    # the preset sets target_check; its penalty variant needs only target_open=null
    penalty = compose_config(
        tiny_overrides(tmp_path, "method=jola_sparse", "method.target_open=null")
    )
    assert build_method(as_run_config(penalty).method).controller is None


def test_release_config_and_its_directory_are_unchanged():
    """New fields default to null, so a finished run of method=jola keeps its directory and
    its recorded config compares equal."""
    cfg = as_run_config(compose_config(["method=jola", "model=tiny_random"]))
    assert run_directory(cfg).as_posix().endswith("tiny_random/jola/siqa/n200/seed42")
    assert (cfg.method.gate_lr, cfg.method.target_open) == (None, None)
    sparse = as_run_config(compose_config(["method=jola_sparse", "model=tiny_random"]))
    assert run_directory(sparse).as_posix().endswith("tiny_random/jola_sparse/siqa/n200/seed42")
    assert (sparse.method.gate_lr, sparse.method.penalty) == (0.05, "paper")
    assert (sparse.method.target_open, sparse.method.target_check) == (0.05, "eval_gates")
    assert sparse.method.schedule_args == {"value": 0.001}


# ----------------------------------------------------------------------- Lagrangian target


def test_lagrangian_controller_reaches_targets_above_and_below_on_a_toy_problem():
    """100 gates under Adam with a task term that wants some open and others closed: the
    multipliers find the force that leaves the asked-for fraction open, from above and below."""
    for target in (0.1, 0.9):
        torch.manual_seed(0)
        log_alpha = torch.nn.Parameter(torch.zeros(100))
        want = torch.randn(100)  # > 0: the task wants the gate open
        optimizer = torch.optim.Adam([log_alpha], lr=0.1)
        controller = gates.LagrangianController(target, lr=0.01, warmup_steps=50)
        for step in range(400):
            task = -(want * gates.prob_open(log_alpha)).mean()
            loss = task + controller.term(gates.expected_open_fraction(log_alpha), step)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            final = float(gates.expected_open_fraction(log_alpha))
        assert final == pytest.approx(target, abs=0.04), target
        assert controller.lambda2 > 0
        assert (controller.lambda1 > 0) == (target < 0.5)  # pushes closed / open
    assert controller.target_at(0) == pytest.approx(controller.start)
    assert controller.target_at(25) == pytest.approx((controller.start + 0.9) / 2)
    assert controller.target_at(50) == controller.target_at(4000) == 0.9


TARGET = 0.2
TARGET_RUN = (
    "method=jola",
    "n=16",
    f"method.target_open={TARGET}",
    "method.gate_lr=0.3",
    "method.target_lr=0.1",
    "method.target_warmup=20",
    "method.train.max_steps=60",
    "method.train.batch_size=4",
    "method.train.warmup_steps=0",
    "method.train.lr_scheduler=constant",
    "method.train.patience=0",
    "method.train.logging_steps=5",
    "eval.prune_closed=true",
)


@pytest.fixture(scope="module")
def target_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("target")
    cfg = compose_config(tiny_overrides(tmp, *TARGET_RUN))
    results = run(cfg)
    return as_run_config(cfg), results, run_directory(as_run_config(cfg))


def test_the_lagrangian_drives_the_expected_open_fraction_to_the_target(target_run):
    cfg, results, run_dir = target_run
    log = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
    steps = [e for e in log if "loss" in e and "eval_loss" not in e]
    assert len(steps) == 12
    for entry in steps:  # the multipliers and the expected fraction at every logging step
        assert {"lagrangian_lambda1", "lagrangian_lambda2", "expected_open_frac"} <= set(entry)
        assert "lambda" not in entry  # the target replaces the penalty
    assert steps[0]["expected_open_frac"] > 0.5  # it starts near 2/3 open
    assert abs(steps[-1]["expected_open_frac"] - TARGET) <= 0.05, steps[-1]
    assert max(e["lagrangian_lambda1"] for e in steps) > 0.5  # it had to push gates closed
    assert all(b["lagrangian_lambda2"] > a["lagrangian_lambda2"] for a, b in zip(steps, steps[1:]))
    target = results["method_stats"]["target"]
    assert abs(target["expected_open_frac"] - TARGET) <= 0.05
    assert results["method_stats"]["penalty"] == "target"
    history = results["training"]["dev_history"]
    assert all("eligible" in h for h in history) and not history[0]["eligible"]
    assert results["training"]["kept"] == "best"
    best = min((h for h in history if h["eligible"]), key=lambda h: (h["dev_loss"], h["step"]))
    assert results["training"]["best_dev_loss"] == best["dev_loss"]


def test_eval_gates_check_refuses_a_checkpoint_whose_evaluation_gates_exceed_the_budget(tmp_path):
    """At the target in expectation but with more evaluation gates open than the budget: the
    expectation check accepts the checkpoint, the evaluation-gate check does not until the
    gates really close."""
    checks = {}
    for check in ("expected", "eval_gates"):
        _, _, method = prepared(
            tmp_path / check,
            "method=jola_sparse",
            "method.target_open=0.2",
            "method.target_tolerance=0.06",
            f"method.target_check={check}",
        )
        checks[check] = method
        method.controller.last_step = method.controller.warmup_steps  # past the ramp
    for method in checks.values():
        with torch.no_grad():  # every gate just above the closing threshold: open at eval,
            for la in method._log_alphas().values():  # P(open) about 0.2 under noise
                la.fill_(-2.2)
        assert abs(method.expected_open_fraction() - 0.2) <= 0.06
        assert method.evaluation_open_fraction() == 1.0
    assert checks["expected"].accepts_checkpoint() is True
    assert checks["eval_gates"].accepts_checkpoint() is False
    method = checks["eval_gates"]
    with torch.no_grad():  # three quarters of the gates firmly closed, a quarter wide open
        for la in method._log_alphas().values():
            flat = la.view(-1)
            flat.fill_(-8.0)
            flat[: flat.numel() // 4] = 8.0
    assert method.evaluation_open_fraction() == pytest.approx(0.25)
    assert abs(method.expected_open_fraction() - 0.2) <= 0.06
    assert method.accepts_checkpoint() is True
    assert method.localisation_stats()["target"]["check"] == "eval_gates"


def test_no_eligible_evaluation_warns_and_keeps_the_last_parameters(tmp_path):
    cfg = compose_config(
        tiny_overrides(
            tmp_path,
            "method=jola_sparse",
            "method.target_open=0.0",
            "method.target_tolerance=0.001",
            "method.target_check=eval_gates",
            "method.target_warmup=0",
            *SHORT,
        )
    )
    with pytest.warns(UserWarning, match="no evaluation met the method's condition"):
        results = run(cfg)
    training_info = results["training"]
    assert training_info["kept"] == "last"
    history = training_info["dev_history"]
    assert history and not any(h["eligible"] for h in history)


def test_gate_statistics_in_results(target_run):
    _, results, run_dir = target_run
    stats = results["method_stats"]
    per_kind = LAYERS * HEADS
    closed = stats["closed_gates"]
    assert closed["per_kind"] == per_kind
    assert closed["multiplicative"] == round(stats["closed_frac_mult"] * per_kind)
    assert closed["additive"] == round(stats["closed_frac_add"] * per_kind)
    hist = stats["prob_open_hist"]
    assert len(hist["edges"]) == 11 and hist["edges"][0] == 0.0 and hist["edges"][-1] == 1.0
    assert sum(hist["additive"]) == sum(hist["multiplicative"]) == per_kind
    table = json.loads((run_dir / "gates.json").read_text())
    either = sum(
        a != 0 or m != 0
        for row_a, row_m in zip(
            table["additive"]["eval_gate"], table["multiplicative"]["eval_gate"]
        )
        for a, m in zip(row_a, row_m)
    )
    assert stats["edited_heads"]["either"] == either == selected_head_count(run_dir)
    assert stats["gate_lr"] == 0.3


def test_prune_closed_gives_identical_predictions(target_run):
    """The run evaluated with eval.prune_closed=true; the same edits without pruning (and
    pruned again) predict the same, in both evaluation modes."""
    cfg, results, run_dir = target_run
    fresh = load_model(cfg.model)
    pruned = attach_trained_edits(fresh.model, run_dir, prune_closed=True)
    skipped = LAYERS * HEADS - results["method_stats"]["edited_heads"]["either"]
    assert skipped > 0  # pruning has heads to skip
    task = get_task("siqa")
    test = load_splits(cfg.task, cfg.n, cfg.seed).test
    saved = [json.loads(line) for line in (run_dir / "predictions.jsonl").read_text().splitlines()]
    outputs = {}
    for prune in (True, False):
        if not prune:
            pruned.detach()
            attach_trained_edits(fresh.model, run_dir, prune_closed=False)
        for mode in ("generate", "loglik"):
            eval_cfg = EvalConfig(mode=mode, num_beams=1, max_new_tokens=8, progress=False)
            outputs[(prune, mode)] = EVAL_MODES[mode](
                fresh.model, fresh.tokenizer, task, test, eval_cfg
            )
    assert [p.response for p in outputs[(False, "generate")]] == [s["response"] for s in saved]
    for mode in ("generate", "loglik"):
        a, b = outputs[(True, mode)], outputs[(False, mode)]
        assert [p.parsed for p in a] == [p.parsed for p in b]
        assert [p.response for p in a] == [p.response for p in b]
    for a, b in zip(outputs[(True, "loglik")], outputs[(False, "loglik")]):
        assert a.scores == b.scores


# -------------------------------------------------------------------- equal-budget controls


def edited_heads_of(run_dir) -> set[tuple[int, int]]:
    table = json.loads((run_dir / "gates.json").read_text())
    return {
        (layer, head)
        for kind in ("additive", "multiplicative")
        for layer, row in enumerate(table[kind]["eval_gate"])
        for head, value in enumerate(row)
        if value != 0
    }


@pytest.mark.parametrize("name", ["jola_random_k", "jola_topk_warmup"])
def test_controls_edit_exactly_k_heads(tmp_path, name):
    extra = ["method.selection_steps=3"] if name == "jola_topk_warmup" else []
    cfg = compose_config(tiny_overrides(tmp_path, f"method={name}", "method.k=3", *SHORT, *extra))
    results = run(cfg)
    run_dir = run_directory(as_run_config(cfg))
    counts = results["method_stats"]["edited_heads"]
    assert (counts["additive"], counts["multiplicative"], counts["either"]) == (3, 3, 3)
    selection = results["method_stats"]["head_selection"]
    assert selection["k"] == 3 and len(selection["heads"]) == 3
    assert selection["edited_parameters"] == 3 * 16 * 2  # k heads x head_dim x both kinds
    assert edited_heads_of(run_dir) == {tuple(h) for h in selection["heads"]}
    # only the selected heads' vectors trained; the edits reload with their head set
    edits = load_edits(run_dir / "edits")
    assert edits.edit_config.heads == selection["heads"]
    assert edits.head_counts()["either"] == 3
    if name == "jola_topk_warmup":
        assert top_k_heads(torch.tensor(selection["scores"]), 3) == selection["heads"]
        assert selection["selection_steps"] == 3


def test_random_heads_are_seeded_and_distinct():
    first = random_heads(30, 9, 40, seed=1)
    assert first == random_heads(30, 9, 40, seed=1) != random_heads(30, 9, 40, seed=2)
    assert len({tuple(h) for h in first}) == 40
    assert all(0 <= layer < 30 and 0 <= head < 9 for layer, head in first)


def test_top_k_heads_breaks_ties_by_index():
    scores = torch.tensor([[1.0, 3.0, 3.0], [0.5, 2.0, 3.0]])
    assert top_k_heads(scores, 2) == [[0, 1], [0, 2]]
    assert top_k_heads(scores, 4) == [[0, 1], [0, 2], [1, 1], [1, 2]]


def write_gates(run_dir, open_heads):
    run_dir.mkdir(parents=True)
    gate = [[1.0 if (i, h) in open_heads else 0.0 for h in range(HEADS)] for i in range(LAYERS)]
    closed = [[0.0] * HEADS for _ in range(LAYERS)]
    table = {"additive": {"eval_gate": gate}, "multiplicative": {"eval_gate": closed}}
    (run_dir / "gates.json").write_text(json.dumps(table))


def test_k_from_takes_the_budget_of_the_run_with_the_same_seed(tmp_path):
    learned = tmp_path / "learned" / "n8"
    write_gates(learned / "seed42", {(0, 1), (1, 2)})
    write_gates(learned / "seed43", {(0, 0), (0, 1), (1, 3)})
    assert selected_head_count(learned / "seed43") == 3
    assert selected_head_count(learned / "seed43" / "gates.json") == 3
    for seed, k in ((42, 2), (43, 3)):
        cfg, loaded, method = prepared(
            tmp_path, "method=jola_random_k", f"method.k_from={learned}", f"seed={seed}"
        )
        assert method.k == k and method.k_source == str(learned / f"seed{seed}")
        assert method.edits.head_counts()["either"] == k
    # the seeds of one sweep share one variant directory
    dirs = {
        run_directory(
            as_run_config(
                compose_config(
                    tiny_overrides(
                        tmp_path, "method=jola_random_k", f"method.k_from={learned}", f"seed={s}"
                    )
                )
            )
        ).parent
        for s in (42, 43)
    }
    assert len(dirs) == 1


def test_controls_refuse_a_missing_or_double_budget(tmp_path):
    def build(*extra):
        cfg = as_run_config(compose_config(tiny_overrides(tmp_path, *extra)))
        cfg.method.validate(seed=cfg.seed)

    with pytest.raises(UserError, match="exactly one of method.k"):
        build("method=jola_random_k")
    with pytest.raises(UserError, match="exactly one of method.k"):
        build("method=jola_topk_warmup", "method.k=2", f"method.k_from={tmp_path}")
    with pytest.raises(UserError, match="cannot read"):
        build("method=jola_random_k", f"method.k_from={tmp_path / 'nothing'}")
    with pytest.raises(UserError, match="without gates"):
        build("method=jola_random_k", "method.k=2", "method.gated=true")
    write_gates(tmp_path / "closed" / "seed42", set())
    with pytest.raises(UserError, match="edits no head"):
        build("method=jola_random_k", f"method.k_from={tmp_path / 'closed'}")
    with pytest.raises(UserError, match="more than the model's"):
        prepared(tmp_path, "method=jola_random_k", "method.k=9")


# --------------------------------------------------------------- head-set overlap (tables)


def test_jaccard_and_its_chance_level_on_constructed_sets():
    from jola.tables import chance_jaccard, jaccard, pairwise_jaccard

    a, b, c = {(0, 0), (0, 1)}, {(0, 0), (1, 1)}, {(0, 1), (0, 0)}
    assert jaccard(a, b) == pytest.approx(1 / 3) and jaccard(a, c) == 1.0
    assert jaccard(set(), set()) == 1.0 and jaccard(a, set()) == 0.0
    assert pairwise_jaccard([a, b, c]) == pytest.approx([1 / 3, 1.0, 1 / 3])
    # two random 2-sets of 8 heads: P(i shared) = 15/28, 12/28, 1/28 for i = 0, 1, 2
    assert chance_jaccard(8, 2, 2) == pytest.approx(12 / 28 * 1 / 3 + 1 / 28)
    assert chance_jaccard(8, 8, 8) == 1.0 and chance_jaccard(8, 0, 0) == 1.0
    assert chance_jaccard(8, 0, 3) == 0.0
    generator = torch.Generator().manual_seed(0)  # the formula against a simulation
    draws = [
        jaccard(
            set(torch.randperm(20, generator=generator)[:5].tolist()),
            set(torch.randperm(20, generator=generator)[:8].tolist()),
        )
        for _ in range(4000)
    ]
    assert sum(draws) / len(draws) == pytest.approx(chance_jaccard(20, 5, 8), abs=0.01)


def write_gate_run(root, method, seed, open_add, open_mult, learned=True, dev_loss=0.5):
    run_dir = root / "tiny" / method / "siqa" / "n200" / f"seed{seed}"
    run_dir.mkdir(parents=True)
    results = {
        "metrics": {"acc": 0.3 + 0.01 * seed},
        "method": method,
        "task": "siqa",
        "suite": "commonsense",
        "suite_tasks": ["siqa"],
        "model": {"name": "tiny"},
        "n": 200,
        "seed": seed,
        "training": {"best_dev_loss": dev_loss},
        "metric_info": {"acc": {"scale": "fraction 0-1"}},
    }
    (run_dir / "results.json").write_text(json.dumps(results))
    table = {"num_layers": LAYERS, "num_heads": HEADS}
    for kind, heads in (("additive", open_add), ("multiplicative", open_mult)):
        gate = [[0.7 if (i, h) in heads else 0.0 for h in range(HEADS)] for i in range(LAYERS)]
        table[kind] = {"eval_gate": gate}
        if learned:
            table[kind]["log_alpha"] = gate
    (run_dir / "gates.json").write_text(json.dumps(table))


def test_make_tables_reports_closed_gates_and_head_set_overlap_across_seeds(tmp_path):
    from jola.tables import make_tables

    out = tmp_path / "out"
    sets = [{(0, 0), (0, 1)}, {(0, 0), (1, 1)}, {(0, 1), (0, 0)}]
    for seed, heads in zip((1, 2, 3), sets):  # additive on the set, multiplicative on (0, 0)
        write_gate_run(out, "jola_sparse", seed, heads, {(0, 0)}, dev_loss=0.1 * seed)
        write_gate_run(out, "jola_random_k", seed, heads, heads, learned=False)
    report = make_tables(out, tmp_path / "tables")
    assert report.warnings == []
    folder = tmp_path / "tables" / "tiny"
    assert folder / "localization.md" in report.files
    text = (folder / "localization.md").read_text()
    rows = {
        line.split("|")[1].strip(): [c.strip() for c in line.strip("|").split("|")]
        for line in text.splitlines()
        if line.startswith("| jola")
    }
    sparse, control = rows["jola_sparse"], rows["jola_random_k"]
    assert sparse[3] == "3"  # seeds
    # 6/8 additive, 7/8 multiplicative, 13/16 of all evaluation gates closed in every seed
    assert sparse[4:7] == ["75.0 ± 0.0", "87.5 ± 0.0", "81.2 ± 0.0"]
    assert sparse[7] == "2.0 ± 0.0 / 8"
    assert sparse[8] == "0.56 ± 0.38 (3 pairs)"  # Jaccard 1/3, 1, 1/3
    assert sparse[9] == "0.18"  # chance for two 2-sets of 8 heads
    assert sparse[10] == "0.2000 ± 0.1000"
    assert sparse[11] == "ACC 32.00 ± 1.00"
    assert control[4] == control[5] == "–"  # no learned gates
    assert control[6] == "75.0 ± 0.0" and control[7] == "2.0 ± 0.0 / 8"
    frame = pd_read(folder / "localization.csv")
    assert set(frame["method"]) == {"jola_sparse", "jola_random_k"}
    assert frame.set_index("method").loc["jola_sparse", "jaccard"] == pytest.approx(5 / 9)
    plots = tmp_path / "tables" / "plots" / "tiny"
    for plot in (plots / "localization_siqa_n200.png", plots / "localization_detail_siqa_n200.png"):
        assert plot in report.files and plot.read_bytes()[:4] == b"\x89PNG"


def pd_read(path):
    import pandas as pd

    return pd.read_csv(path)
