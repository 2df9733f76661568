"""LoFiT (jola/methods/lofit.py) on the tiny Llama: the head ranking, the L1 term, the switch
from step 1's scaling vectors to step 2's bias vectors on the chosen heads only, and a whole
run through the runner."""

from __future__ import annotations

import json
import math

import pytest
import torch

from jola.config import ModelConfig
from jola.errors import UserError
from jola.methods import build_method
from jola.methods.lofit import LofitConfig, head_budget, l1_term
from jola.models import load_model
from jola.results import GATES_FILE, RESULTS_FILE
from jola.runner import as_run_config, run
from jola.training import train_method
from tasks import load_splits
from tests.helpers import compose_config, tiny_overrides

TINY = ModelConfig(name="tiny_random", source="tiny_random")  # 2 layers x 4 heads, head_dim 16


def prepared(**settings):
    loaded = load_model(TINY)
    method = build_method(LofitConfig(**settings), seed=0)
    method.prepare(loaded)
    return loaded, method


def test_step_one_ranks_heads_by_the_l2_norm_of_their_scaling_vectors():
    loaded, method = prepared(k=3)
    edits = method.edits
    assert edits.scale.shape == (2, 4, 16) and edits.offset is None  # A on every head, no v
    # head (l, h) gets a vector of L2 norm norms[l][h]: concentrated on one coordinate (L1 =
    # the norm) for the three largest, spread evenly over all 16 (L1 = 4 x the norm) for the
    # rest, so that ranking by the L1 norm would pick another set
    norms = [[0.3, 2.0, 0.1, 1.1], [1.9, 0.2, 1.5, 0.4]]
    concentrated = {(0, 1), (1, 0), (1, 2)}
    with torch.no_grad():
        for layer in range(2):
            for head in range(4):
                if (layer, head) in concentrated:
                    vector = torch.zeros(16)
                    vector[head] = 1.0
                else:
                    vector = torch.full((16,), 0.25)  # unit L2 norm
                edits.scale[layer, head] = vector * norms[layer][head]
    l1_norms = edits.scale.detach().abs().sum(-1)
    method.before_training(lambda parameters, steps, lr, **options: [1.0])  # no step-1 update

    pairs = [(layer, head) for layer in range(2) for head in range(4)]
    by_l2 = sorted(pairs, key=lambda pair: -norms[pair[0]][pair[1]])[:3]
    by_l1 = sorted(pairs, key=lambda pair: -float(l1_norms[pair]))[:3]
    assert sorted(by_l2) == sorted(concentrated) and set(by_l1) != set(by_l2)
    assert method.edits.edit_config.heads == sorted([list(pair) for pair in by_l2])
    for row, expected in zip(method.selection["scores"], norms):
        assert row == pytest.approx(expected, abs=1e-6)
    assert method.final_stats()["head_selection"]["k"] == 3


def test_the_l1_term_is_lambda_times_the_sum_of_absolute_values():
    scale = torch.tensor([[[0.5, -1.5], [0.0, 2.0]], [[-0.25, 0.25], [1.0, -1.0]]])
    assert float(l1_term(scale, 1e-3)) == pytest.approx(1e-3 * (2.0 + 2.0 + 0.5 + 2.0))

    _, method = prepared(k=1, l1_lambda=0.5)
    seen = {}

    def short_train(parameters, steps, lr, *, epochs=None, regularizer=None, linear_decay=False):
        seen.update(params=parameters, epochs=epochs, decay=linear_decay, lr=lr, term=regularizer)
        seen["value"] = float(regularizer().detach())
        return [1.0]

    scale = method.edits.scale
    expected = 0.5 * float(scale.detach().abs().sum())
    method.before_training(short_train)
    assert seen["params"] == [scale]  # step 1 trains A alone
    assert (seen["epochs"], seen["lr"], seen["decay"]) == (5, 5e-3, True)
    assert seen["value"] == pytest.approx(expected)


def trained(tmp_path, *extra):
    """A LoFiT method, prepared on the tiny model, with the run's config and data splits."""
    overrides = tiny_overrides(
        tmp_path,
        "method=lofit",
        "method.k=2",
        "method.selection_epochs=2",
        "method.train.max_steps=3",
        "method.train.batch_size=4",
        "method.train.logging_steps=1",
        *extra,
    )
    cfg = as_run_config(compose_config(overrides))
    loaded = load_model(cfg.model)
    method = build_method(cfg.method, seed=cfg.seed)
    method.prepare(loaded)
    return cfg, loaded, method, load_splits(cfg.task, cfg.n, cfg.seed)


def test_the_l1_penalty_shrinks_the_scaling_vectors_during_selection(tmp_path):
    """AdamW's step is about lr per coordinate in the gradient's sign: with a dominant L1 term
    every coordinate moves towards 0, without it as the task loss says."""
    sums = {}
    for lam in (0.0, 100.0):
        cfg, loaded, method, splits = trained(
            tmp_path / str(lam),
            f"method.l1_lambda={lam}",
            "method.selection_lr=1e-4",
            "method.selection_epochs=4",
        )
        before = float(method.edits.scale.detach().abs().sum())
        train_method(method, loaded, splits, cfg, tmp_path / str(lam) / "run")
        sums[lam] = method.selection["scale_abs_sum"]
    assert sums[100.0] < 0.7 * min(before, sums[0.0])


def test_step_two_trains_only_the_chosen_heads_additive_vectors(tmp_path):
    cfg, loaded, method, splits = trained(tmp_path)

    initial = {}
    start = method.start_bias_tuning

    def record_start(heads):
        start(heads)
        initial["offset"] = method.edits.offset.detach().clone()

    method.start_bias_tuning = record_start
    record = train_method(method, loaded, splits, cfg, tmp_path / "run")

    edits = method.edits
    assert edits.scale is None and edits.log_alpha_add is None  # A discarded, no gates
    heads = edits.edit_config.heads
    assert len(heads) == 2
    chosen = torch.zeros(2, 4, dtype=torch.bool)
    for layer, head in heads:
        chosen[layer, head] = True
    assert torch.count_nonzero(initial["offset"][~chosen]) == 0  # v starts at 0 off the set
    assert torch.count_nonzero(edits.offset[~chosen]) == 0  # ... and stays there
    assert not torch.equal(edits.offset[chosen], initial["offset"][chosen])  # v trained
    assert torch.equal(edits.gate_add(training=False), chosen.float())
    # step 1: 2 passes over n=8 examples in batches of 4 -> 4 steps; step 2: the trainer
    assert method.selection["selection_steps"] == math.ceil(2 * 8 / 4)
    assert method.selection["scale_abs_sum"] > 0
    assert record["steps"] == 3
    assert [g["parameters"] for g in record["param_groups"]] == [2 * 4 * 16]  # v alone


def test_a_run_records_the_selected_heads(tmp_path):
    results = run(compose_config(tiny_overrides(tmp_path, "method=lofit", "method.train.epochs=1")))
    stats = results["method_stats"]
    selection = stats["head_selection"]
    assert selection["rule"] == "lofit" and selection["k"] == 1  # round(8 / 32) -> at least 1
    assert len(selection["heads"]) == 1
    assert stats["edited_parameters"] == 16 and stats["selection_parameters"] == 2 * 4 * 16
    assert results["trainable_parameters"] == 2 * 4 * 16  # step 1's A on every head
    run_dirs = list(tmp_path.rglob(RESULTS_FILE))
    assert len(run_dirs) == 1
    gates = json.loads((run_dirs[0].parent / GATES_FILE).read_text())
    open_heads = [
        [layer, head]
        for layer, row in enumerate(gates["additive"]["eval_gate"])
        for head, value in enumerate(row)
        if value
    ]
    assert open_heads == selection["heads"]


def test_budget_and_bad_values():
    assert head_budget(LofitConfig(), 32, 32) == 32  # Llama-3.1-8B: their 32 of 1024
    assert head_budget(LofitConfig(), 30, 9) == 8  # SmolLM2-135M: round(270 / 32)
    assert head_budget(LofitConfig(k=5), 2, 4) == 5
    with pytest.raises(UserError, match="more than the model's 2 x 4"):
        head_budget(LofitConfig(k=9), 2, 4)
    for bad in ({"k": 0}, {"k_fraction": 0}, {"l1_lambda": -1}, {"selection_lr": 0}):
        with pytest.raises(UserError, match="method\\."):
            LofitConfig(**bad)
