import math

import pytest
import torch

from jola import gates
from jola.gates import (
    CLOSED_THRESHOLD,
    EPS,
    LIMIT_LEFT,
    LIMIT_RIGHT,
    PENALTIES,
    TEMPERATURE,
    closed_fraction,
    deterministic_gate,
    gate_values,
    init_log_alpha,
    paper_penalty,
    penalty,
    prob_open,
    release_penalty,
    sample_gate,
)
from tests.helpers import module_imports

LOG11 = math.log(11)


def _sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def _expected_gate(log_alpha: float, points: int = 1_000_000) -> float:
    """E[sample_gate] by the midpoint rule over u in (0, 1)."""
    u = (torch.arange(points, dtype=torch.float64) + 0.5) / points
    s = torch.sigmoid((torch.log(u) - torch.log1p(-u) + log_alpha) / TEMPERATURE)
    return (s * (LIMIT_RIGHT - LIMIT_LEFT) + LIMIT_LEFT).clamp(0, 1).mean().item()


def test_constants():
    assert (TEMPERATURE, LIMIT_LEFT, LIMIT_RIGHT, EPS) == (0.33, -0.1, 1.1, 1e-6)
    assert CLOSED_THRESHOLD == pytest.approx(-2.397895, abs=1e-6)


def test_deterministic_gate_values():
    x = torch.tensor([0.0, -2.398, CLOSED_THRESHOLD, -2.39, -10.0, 10.0, LOG11, 1.0])
    g = deterministic_gate(x)
    assert g[0].item() == pytest.approx(0.5)
    assert g[1].item() == 0.0
    assert g[2].item() == 0.0
    assert g[3].item() == pytest.approx(_sigmoid(-2.39) * 1.2 - 0.1, rel=1e-4)
    assert 0 < g[3].item() < 1e-3
    assert g[4].item() == 0.0
    assert g[5].item() == 1.0
    assert g[6].item() == pytest.approx(1.0, abs=1e-6)
    assert g[7].item() == pytest.approx(_sigmoid(1.0) * 1.2 - 0.1, rel=1e-6)


def test_deterministic_gate_keeps_dtype_and_shape():
    x = torch.zeros(3, 4, dtype=torch.bfloat16)
    g = deterministic_gate(x)
    assert g.dtype == torch.bfloat16
    assert g.shape == (3, 4)
    assert torch.all(g == 0.5)


def test_sample_gate_range_shape_and_noise():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        x = torch.linspace(-6, 6, 1000)
        s = sample_gate(x)
        s2 = sample_gate(x)
    assert s.shape == x.shape
    assert s.min().item() >= 0.0 and s.max().item() <= 1.0
    assert (s == 0).any() and (s == 1).any() and ((s > 0) & (s < 1)).any()
    assert not torch.equal(s, s2)


def test_sample_gate_uses_global_rng():
    x = torch.zeros(50)
    with torch.random.fork_rng():
        torch.manual_seed(123)
        a = sample_gate(x)
        torch.manual_seed(123)
        b = sample_gate(x)
    assert torch.equal(a, b)


def test_sample_gate_generator_is_reproducible():
    x = torch.zeros(50)
    a = sample_gate(x, generator=torch.Generator().manual_seed(7))
    b = sample_gate(x, generator=torch.Generator().manual_seed(7))
    assert torch.equal(a, b)


@pytest.mark.parametrize("log_alpha", [-2.0, 0.0, 1.5])
def test_sample_statistics_match_hard_concrete(log_alpha):
    n = 200_000
    with torch.random.fork_rng():
        torch.manual_seed(1)
        s = sample_gate(torch.full((n,), log_alpha, dtype=torch.float64))
    p_open = prob_open(torch.tensor(log_alpha)).item()
    assert p_open == pytest.approx(_sigmoid(log_alpha + TEMPERATURE * LOG11), rel=1e-6)
    assert (s > 0).double().mean().item() == pytest.approx(p_open, abs=0.005)
    p_one = _sigmoid(log_alpha - TEMPERATURE * LOG11)
    assert (s == 1).double().mean().item() == pytest.approx(p_one, abs=0.005)
    assert s.mean().item() == pytest.approx(_expected_gate(log_alpha), abs=0.005)


def test_sample_gate_gradient_flows():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        x = torch.zeros(200, requires_grad=True)
        s = sample_gate(x)
        s.sum().backward()
    inside = (s > 0) & (s < 1)
    assert inside.sum() > 50
    assert torch.all(x.grad[inside] > 0)
    assert torch.all(x.grad[~inside] == 0)


def test_deterministic_gate_and_prob_open_gradients():
    x = torch.tensor([0.0, -5.0], requires_grad=True)
    deterministic_gate(x).sum().backward()
    assert x.grad[0].item() == pytest.approx(0.3)
    assert x.grad[1].item() == 0.0

    y = torch.tensor(0.0, requires_grad=True)
    prob_open(y).backward()
    p = _sigmoid(TEMPERATURE * LOG11)
    assert y.grad.item() == pytest.approx(p * (1 - p), rel=1e-6)


def test_gate_values_switches_on_training():
    x = torch.tensor([0.0, 3.0, -3.0])
    assert torch.equal(gate_values(x, training=False), deterministic_gate(x))
    with torch.random.fork_rng():
        torch.manual_seed(5)
        a = gate_values(x, training=True)
        torch.manual_seed(5)
        b = sample_gate(x)
    assert torch.equal(a, b)


def test_prob_open_values():
    x = torch.tensor([0.0, -TEMPERATURE * LOG11, -100.0, 100.0])
    p = prob_open(x)
    assert p[0].item() == pytest.approx(0.6881, abs=1e-4)
    assert p[1].item() == pytest.approx(0.5)
    assert p[2].item() == pytest.approx(0.0, abs=1e-12)
    assert p[3].item() == pytest.approx(1.0)


def test_init_log_alpha_shape_and_bound():
    la = init_log_alpha(30, 9, generator=torch.Generator().manual_seed(0))
    bound = math.sqrt(6 / 10)
    assert la.shape == (30, 9)
    assert la.dtype == torch.float32
    assert la.abs().max().item() <= bound
    assert la.abs().max().item() > 0.9 * bound
    assert abs(la.mean().item()) < 0.1
    same = init_log_alpha(30, 9, generator=torch.Generator().manual_seed(0))
    assert torch.equal(la, same)
    assert closed_fraction(la) == 0.0


def test_init_log_alpha_rejects_bad_sizes():
    with pytest.raises(ValueError, match="positive"):
        init_log_alpha(0, 4)


def test_closed_fraction():
    x = torch.tensor([[-3.0, -2.398, -2.39, 0.0], [5.0, -10.0, CLOSED_THRESHOLD, 1.0]])
    assert closed_fraction(x) == pytest.approx(4 / 8)
    assert closed_fraction(torch.empty(0)) == 0.0
    assert isinstance(closed_fraction(x), float)


def _p(x: float) -> float:
    return _sigmoid(x + TEMPERATURE * LOG11)


ADD = [[0.0, 1.0, -1.0], [2.0, -2.0, 0.5]]
MULT = [[-0.5, 0.0, 3.0], [1.0, -3.0, 0.25]]


def _release_by_hand(add, mult, lam):
    num = len(ADD) * len(ADD[0])
    r_add = sum(sum(_p(v) for v in row) / len(row) for row in add) if add else 0.0
    r_mult = sum(sum(_p(v) for v in row) / len(row) for row in mult) if mult else 0.0
    return lam * r_add / num + (1 - lam) * r_mult / num


def test_release_penalty_matches_hand_computation():
    add, mult = torch.tensor(ADD), torch.tensor(MULT)
    got = release_penalty(add, mult, 0.1)
    assert got.dim() == 0
    assert got.item() == pytest.approx(_release_by_hand(ADD, MULT, 0.1), rel=1e-6)
    assert got.item() == pytest.approx(0.2186189, rel=1e-6)
    assert release_penalty(add, None, 0.1).item() == pytest.approx(
        _release_by_hand(ADD, None, 0.1), rel=1e-6
    )
    assert release_penalty(None, mult, 0.1).item() == pytest.approx(
        _release_by_hand(None, MULT, 0.1), rel=1e-6
    )
    assert release_penalty(None, None, 0.1).item() == 0.0


def test_release_penalty_clamps_like_the_release():
    la = torch.full((2, 4), 50.0, dtype=torch.float64)
    assert release_penalty(la, None, 1.0).item() == pytest.approx((1 - EPS) * 2 / 8, rel=1e-12)


def test_paper_penalty_matches_hand_computation():
    add, mult = torch.tensor(ADD), torch.tensor(MULT)
    s_add = sum(_p(v) for row in ADD for v in row)
    s_mult = sum(_p(v) for row in MULT for v in row)
    assert paper_penalty(add, mult, 0.01).item() == pytest.approx(0.01 * (s_add + s_mult), rel=1e-6)
    assert paper_penalty(add, None, 0.5).item() == pytest.approx(0.5 * s_add, rel=1e-6)
    assert paper_penalty(None, mult, 2.0).item() == pytest.approx(2.0 * s_mult, rel=1e-6)
    assert paper_penalty(None, None, 1.0).item() == 0.0


def test_penalties_are_differentiable():
    add = torch.tensor(ADD, requires_grad=True)
    mult = torch.tensor(MULT, requires_grad=True)
    for name in ("paper", "release"):
        add.grad = mult.grad = None
        penalty(name, add, mult, 0.3).backward()
        assert torch.all(add.grad > 0) and torch.all(mult.grad > 0)


def test_penalty_registry_and_lookup():
    assert set(PENALTIES) == {"paper", "release"}
    add, mult = torch.tensor(ADD), torch.tensor(MULT)
    assert penalty("release", add, mult, 0.2).item() == pytest.approx(
        release_penalty(add, mult, 0.2).item()
    )
    assert penalty("paper", add, mult, 0.2).item() == pytest.approx(
        paper_penalty(add, mult, 0.2).item()
    )
    with pytest.raises(ValueError) as err:
        penalty("x", add, mult, 0.2)
    assert str(err.value) == "unknown penalty 'x'; choices: paper, release"


def test_module_imports_only_torch_and_math():
    imported = module_imports(gates)
    # the registry and its error are the standard library's only (tests/test_registry.py)
    ours = {m for m in imported if m.split(".")[0] == "jola"}
    assert ours <= {"jola.errors", "jola.registry"}
    others = {m.split(".")[0] for m in imported - ours}
    assert others <= {"__future__", "collections", "math", "torch"}
