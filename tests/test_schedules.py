import math

import pytest

from jola import schedules
from jola.schedules import (
    SCHEDULES,
    ConstantSchedule,
    CyclicSchedule,
    ExponSchedule,
    LinearSchedule,
    PerformanceSchedule,
    make_schedule,
)
from tests.helpers import module_imports


def test_registry_names():
    assert set(SCHEDULES) == {"expon", "linear", "cyclic", "performance", "constant"}
    assert SCHEDULES["expon"] is ExponSchedule
    for name, cls in SCHEDULES.items():
        assert isinstance(make_schedule(name), cls)


def test_expon_defaults():
    s = make_schedule("expon")
    assert s.value(0) == pytest.approx(0.1)
    assert s.value(100) == pytest.approx(0.1 * math.exp(-1))
    assert s.value(1) == pytest.approx(0.1 * math.exp(-0.01))
    assert s.value(50, total_steps=10) == pytest.approx(0.1 * math.exp(-0.5))


def test_expon_custom():
    s = make_schedule("expon", base=1.0, rate=0.5)
    assert s.value(2) == pytest.approx(math.exp(-1))


def test_linear_defaults():
    s = make_schedule("linear")
    assert s.value(0, total_steps=100) == 0.0
    assert s.value(50, total_steps=100) == pytest.approx(0.1)
    assert s.value(25, total_steps=100) == pytest.approx(0.05)
    assert s.value(100, total_steps=100) == pytest.approx(0.2)
    assert s.value(150, total_steps=100) == pytest.approx(0.2)


def test_linear_needs_total_steps():
    s = make_schedule("linear", start=1.0, end=0.0)
    assert s.value(3, total_steps=4) == pytest.approx(0.25)
    with pytest.raises(ValueError, match="total_steps"):
        s.value(3)
    with pytest.raises(ValueError, match="total_steps > 0"):
        s.value(3, total_steps=0)


def test_cyclic_defaults():
    s = make_schedule("cyclic")
    assert s.value(0) == pytest.approx(0.1)
    assert s.value(5) == pytest.approx(1.0)
    assert s.value(10) == pytest.approx(0.5)
    assert s.value(15) == pytest.approx(0.0, abs=1e-12)
    assert s.value(20) == pytest.approx(0.5)
    assert s.value(25) == pytest.approx(1.0)
    assert s.value(1) == pytest.approx(0.5 + 0.5 * math.sin(2 * math.pi / 20))


def test_cyclic_without_release_initial():
    s = make_schedule("cyclic", period=8, initial=None)
    assert s.value(0) == pytest.approx(0.5)
    assert s.value(2) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="period"):
        make_schedule("cyclic", period=0)


def test_performance_additive_follows_release():
    s = make_schedule("performance")
    assert s.value(0) == pytest.approx(0.1)
    s.observe(2.0)
    assert s.value(1) == pytest.approx(0.11)
    s.observe(1.5)
    assert s.value(2) == pytest.approx(0.12)
    s.observe(1.8)
    assert s.value(3) == pytest.approx(0.11)
    s.observe(1.7)
    assert s.value(4) == pytest.approx(0.12)
    s.observe(1.7)
    assert s.value(5) == pytest.approx(0.11)


def test_performance_multiplicative_against_best():
    s = make_schedule("performance", mode="multiplicative", compare_to="best")
    s.observe(2.0)
    assert s.value(0) == pytest.approx(0.11)
    s.observe(1.0)
    assert s.value(0) == pytest.approx(0.121)
    s.observe(1.5)
    assert s.value(0) == pytest.approx(0.1089)
    s.observe(1.2)
    assert s.value(0) == pytest.approx(0.09801)
    s.observe(0.9)
    assert s.value(0) == pytest.approx(0.107811)


def test_performance_clamps():
    s = make_schedule("performance", initial=0.995, step_size=0.01)
    s.observe(1.0)
    assert s.value(0) == 1.0
    low = make_schedule("performance", initial=0.005, mode="multiplicative", min_value=0.004)
    for metric in range(1, 12):
        low.observe(float(metric))
    assert low.value(0) == pytest.approx(0.004)
    assert make_schedule("performance", initial=5.0).value(0) == 1.0


def test_performance_rejects_bad_options():
    with pytest.raises(ValueError, match="'sideways'.*additive, multiplicative"):
        make_schedule("performance", mode="sideways")
    with pytest.raises(ValueError, match="'worst'.*previous, best"):
        make_schedule("performance", compare_to="worst")
    with pytest.raises(ValueError, match="min_value"):
        make_schedule("performance", min_value=0.5, max_value=0.1)


def test_observe_is_noop_for_step_schedules():
    for name in ("expon", "cyclic", "constant"):
        s = make_schedule(name)
        before = [s.value(t) for t in range(30)]
        for metric in (3.0, 1.0, 2.0):
            s.observe(metric)
        assert [s.value(t) for t in range(30)] == before
    s = make_schedule("linear")
    s.observe(1.0)
    assert s.value(10, total_steps=20) == pytest.approx(0.1)


def test_constant():
    assert make_schedule("constant").value(0) == pytest.approx(0.1)
    s = make_schedule("constant", value=0.25)
    assert s.value(0) == s.value(1000) == 0.25


def test_schedule_classes_direct():
    assert isinstance(make_schedule("linear"), LinearSchedule)
    assert CyclicSchedule().value(5) == pytest.approx(1.0)
    assert PerformanceSchedule(initial=0.3).value(0) == pytest.approx(0.3)
    assert ConstantSchedule(0.7).value(3) == 0.7


def test_unknown_schedule_lists_choices():
    with pytest.raises(ValueError) as err:
        make_schedule("cosine")
    msg = str(err.value)
    assert "'cosine'" in msg
    assert "choices: constant, cyclic, expon, linear, performance" in msg


def test_bad_kwargs_name_the_schedule():
    with pytest.raises(ValueError, match="'expon'.*decay"):
        make_schedule("expon", decay=0.5)


def test_module_imports_only_math():
    imported = module_imports(schedules)
    # the registry and its error are the standard library's only (tests/test_registry.py)
    ours = {m for m in imported if m.split(".")[0] == "jola"}
    assert ours <= {"jola.errors", "jola.registry"}
    assert {m.split(".")[0] for m in imported - ours} <= {"__future__", "math", "torch"}
