"""The registries: one Registry class for every name -> object map, one registration per method
(from which the runner's lookup and Hydra's schemas are derived), method configs that check
themselves, and an import graph without cycles."""

from __future__ import annotations

import ast
import dataclasses
import json
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from hydra.core.config_store import ConfigStore

from jola import gates, schedules
from jola.config import MethodConfig, TrainConfig
from jola.errors import UnknownChoice, UserError, unknown_choice
from jola.evaluation import EVAL_MODES
from jola.hydra_glue import register_configs
from jola.methods import METHODS, Method, build_method, method_entry, register_method
from jola.methods.fixed_heads import FixedHeadsConfig
from jola.methods.jola import Jola, JolaConfig, Penalty, Schedule
from jola.methods.jola_random_k import JolaRandomKConfig
from jola.methods.lora import LoraMethodConfig
from jola.methods.zero_shot import ZeroShotConfig
from jola.models import DTYPES, MODEL_SOURCES
from jola.registry import Choice, Registry

REPO = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------------------ Registry


def test_registry_lookup_and_errors():
    reg: Registry[int] = Registry("widget")
    reg.add("b", 2)
    reg.register("a")(1)
    assert reg.get("a") == reg["a"] == 1
    assert list(reg) == reg.names() == ["a", "b"]
    assert reg.items() == [("a", 1), ("b", 2)]
    assert "a" in reg and "c" not in reg and len(reg) == 2
    with pytest.raises(UnknownChoice) as err:
        reg["c"]
    assert str(err.value) == "unknown widget 'c'; choices: a, b"
    assert isinstance(err.value, UserError) and isinstance(err.value, ValueError)
    with pytest.raises(ValueError, match="registered twice"):
        reg.add("a", 3)


def test_unknown_choice_sorts_unless_told_not_to():
    assert str(unknown_choice("x", "q", ["b", "a"])) == "unknown x 'q'; choices: a, b"
    assert str(unknown_choice("x", "q", ["b", "a"], sort=False)) == "unknown x 'q'; choices: b, a"


def test_choice_enums_are_the_registry_names_and_serialise_as_plain_strings():
    assert [m.value for m in Penalty] == gates.PENALTIES.names() == ["paper", "release"]
    assert [m.value for m in Schedule] == schedules.SCHEDULES.names()
    assert issubclass(Penalty, Choice)
    assert Penalty.parse("paper", "method.penalty") is Penalty.paper
    assert Penalty.parse(Penalty.paper, "method.penalty") is Penalty.paper
    assert Penalty.paper == "paper" and f"{Penalty.paper}" == str(Penalty.paper) == "paper"
    assert json.dumps({"penalty": Penalty.paper}) == json.dumps({"penalty": "paper"})
    with pytest.raises(
        UnknownChoice, match=r"unknown method.penalty 'l1'; choices: paper, release"
    ):
        Penalty.parse("l1", "method.penalty")


def test_every_name_map_is_a_registry():
    for registry in (gates.PENALTIES, schedules.SCHEDULES, EVAL_MODES, DTYPES, MODEL_SOURCES):
        assert isinstance(registry, Registry)
    assert DTYPES.names() == ["bfloat16", "float16", "float32"]
    with pytest.raises(UserError, match="unknown eval.mode 'beam'; choices: generate, loglik"):
        EVAL_MODES.get("beam")


# ------------------------------------------------------------------------- method registry


def test_each_method_is_registered_once_with_its_config_and_hydra_schema():
    register_configs()
    store = ConfigStore.instance().repo["method"]
    expected = {
        "bitfit",
        "jola",
        "jola_random_k",
        "jola_sites",
        "jola_topk_warmup",
        "lofit",
        "lora",
        "red",
        "reft",
        "repe",
        "zero_shot",
    }
    assert set(METHODS) == expected
    for name, entry in METHODS.items():
        assert entry.name == name == entry.method_class.name
        assert entry.config_class().name == name  # every default config builds
        assert f"{name}_schema.yaml" in store
        assert (REPO / "conf" / "method" / f"{name}.yaml").exists()


def test_method_entry_by_config_type_then_by_name():
    assert method_entry(JolaConfig(name="jola_add_only")).method_class is Jola
    assert method_entry(MethodConfig(name="lora")).name == "lora"
    assert method_entry(ZeroShotConfig()).trains is False
    assert isinstance(build_method(LoraMethodConfig(), seed=3), METHODS["lora"].method_class)
    with pytest.raises(UnknownChoice, match=r"unknown method 'nope'; choices: bitfit, jola"):
        method_entry(MethodConfig(name="nope"))


def test_register_method_refuses_mismatches_without_registering():
    @dataclass
    class OtherConfig(MethodConfig):
        name: str = "other"

    class Other(Method):
        pass

    with pytest.raises(ValueError, match="defaults to 'other'"):
        register_method("something_else", OtherConfig, Other)
    with pytest.raises(TypeError, match="not a MethodConfig"):
        register_method("other", TrainConfig, Other)
    with pytest.raises(TypeError, match="not a Method"):
        register_method("other", OtherConfig, object)
    with pytest.raises(ValueError, match="registered twice"):
        register_method("jola", JolaConfig, Jola)
    assert "other" not in METHODS and "something_else" not in METHODS


# --------------------------------------------------------------- configs check themselves


@pytest.mark.parametrize(
    "build, message",
    [
        (lambda: JolaConfig(penalty="l1"), "unknown method.penalty 'l1'; choices: paper, release"),
        (lambda: JolaConfig(schedule="cosine"), "unknown method.schedule 'cosine'"),
        (lambda: JolaConfig(additive=False, multiplicative=False), "cannot both be false"),
        (lambda: JolaConfig(schedule_args={"decay": 1}), "bad arguments for lambda schedule"),
        (lambda: JolaConfig(gate_lr=0), "gate_lr must be positive"),
        (lambda: JolaConfig(target_warmup=5), "needs method.target_open"),
        (lambda: JolaConfig(target_open=0.1, target_lr=-1), r"method.target_\*"),
        (lambda: LoraMethodConfig(r=0), "method.r must be positive"),
        (lambda: JolaRandomKConfig(gated=True), "without gates"),
        (lambda: JolaRandomKConfig(k=0), "at least 1"),
    ],
)
def test_a_bad_value_is_refused_when_the_config_is_built(build, message):
    with pytest.raises(UserError, match=message):
        build()


def test_names_become_enums_and_the_config_serialises_as_before():
    cfg = JolaConfig(penalty="paper", schedule="constant")
    assert cfg.penalty is Penalty.paper and cfg.schedule is Schedule.constant
    plain = dataclasses.asdict(cfg)
    expected = {**plain, "penalty": "paper", "schedule": "constant"}
    assert json.dumps(plain) == json.dumps(expected)


def test_run_level_checks_are_in_validate():
    cfg = JolaRandomKConfig()  # the YAML leaves the budget open: the config builds
    with pytest.raises(UserError, match="exactly one of method.k"):
        cfg.validate(seed=1)
    JolaRandomKConfig(k=2).validate(seed=1)
    assert issubclass(JolaRandomKConfig, FixedHeadsConfig)


# ---------------------------------------------------------------------------- import graph


def _modules() -> dict[str, Path]:
    found = {}
    for package in ("jola", "tasks"):
        for path in sorted((REPO / package).rglob("*.py")):
            name = ".".join(path.relative_to(REPO).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def _imports(path: Path, deferred: bool) -> set[str]:
    """The project modules ``path`` imports at module level (and inside functions when
    ``deferred``); a package's own submodules resolve to themselves, not to the package."""
    tree = ast.parse(path.read_text())
    nodes = ast.walk(tree) if deferred else tree.body
    names = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # "from a import b": the module a.b when there is one, else a (see resolve below)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {n for n in names if n.split(".")[0] in ("jola", "tasks")}


def _cycles(deferred: bool) -> list[list[str]]:
    modules = _modules()

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph = {
        name: {r for r in map(resolve, _imports(path, deferred)) if r and r != name}
        for name, path in modules.items()
    }
    # Tarjan's strongly connected components
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10_000))
    try:
        for node in graph:
            if node not in index:
                visit(node)
    finally:
        sys.setrecursionlimit(limit)
    return cycles


def test_module_level_imports_have_no_cycle():
    assert _cycles(deferred=False) == []


def test_no_cycle_even_through_deferred_imports():
    """Imports inside functions count too: a deferred import that closes a loop is a layering
    fault hidden from the interpreter, not a fix."""
    assert _cycles(deferred=True) == []


def test_config_imports_nothing_of_the_project_and_the_registry_only_the_stdlib():
    modules = _modules()
    assert _imports(modules["jola.config"], deferred=True) == set()
    assert _imports(modules["jola.registry"], deferred=True) == {"jola.errors.unknown_choice"}
    assert _imports(modules["jola.errors"], deferred=True) == set()
    for name in ("jola.registry", "jola.errors"):
        tree = ast.parse(modules[name].read_text())
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                module = node.module if isinstance(node, ast.ImportFrom) else node.names[0].name
                root = module.split(".")[0]
                assert root == "jola" or root in sys.stdlib_module_names, (name, module)
