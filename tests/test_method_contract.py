"""The Method contract (jola/methods/base.py), for every registered method.

For each entry of :data:`jola.methods.METHODS` (read at collection time, so a method registered
by a new module is covered without touching this file) on the tiny random Llama:

1. build the method from its config class with its defaults (plus :data:`OVERRIDES`), prepare a
   model, run its warm-up hook with a stand-in ``short_train`` that moves the parameters it is
   given, and move every trainable parameter by seeded noise: a stand-in for training that makes
   the edits non-identity (the logits must differ from the base model's);
2. ``save(run_dir)``; on a fresh, unprepared model a freshly built method ``load``s the run
   directory: the logits equal the trained model's (atol 1e-6);
3. where ``supports_merge``: ``merge`` gives the same logits as the hooked / adapted model
   (atol 1e-5) and leaves a plain model (the base model's class and module tree, no more hooks
   than a fresh model has); where not: ``merge`` raises ``MergeNotSupported``.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch

from jola.config import ModelConfig
from jola.errors import MergeNotSupported, UserError
from jola.methods import METHODS, build_method
from jola.models import LoadedModel, load_model

SEED = 0
IDS = torch.tensor(
    [[3, 40, 41, 42, 43, 44, 45, 46, 47, 48], [3, 50, 51, 52, 53, 54, 55, 56, 57, 58]]
)
NOISE = 0.1

OVERRIDES: dict[str, dict] = {
    # the equal-budget controls leave the head budget open (method.k or method.k_from)
    "jola_random_k": {"k": 3},
    "jola_topk_warmup": {"k": 3, "selection_steps": 1},
}
"""Config settings for methods that cannot be built from their config class's defaults."""

TINY = ModelConfig(name="tiny_random", source="tiny_random")


def method_names() -> list[str]:
    return [name for name, _ in METHODS.items()]


def fresh_model() -> LoadedModel:
    return load_model(dataclasses.replace(TINY))


def logits(loaded: LoadedModel) -> torch.Tensor:
    loaded.model.eval()
    with torch.no_grad():
        return loaded.model(IDS).logits.float()


def build(name: str):
    """The method ``name`` with its defaults and :data:`OVERRIDES`; a method that cannot be
    built so fails with what to add here."""
    entry = METHODS.get(name)
    try:
        cfg = entry.config_class(**OVERRIDES.get(name, {}))
        cfg.validate(SEED)
        return build_method(cfg, seed=SEED)
    except (UserError, TypeError) as err:
        if name in OVERRIDES:
            raise
        pytest.fail(
            f"method {name!r} cannot be built from its config defaults ({err}); add its "
            "settings to OVERRIDES in tests/test_method_contract.py"
        )


def perturb(parameters, generator: torch.Generator) -> None:
    with torch.no_grad():
        for p in parameters:
            noise = torch.randn(p.shape, generator=generator, dtype=torch.float32)
            p.add_((NOISE * noise).to(device=p.device, dtype=p.dtype))


def trained(name: str, run_dir):
    """A prepared method whose trainable parameters were moved, and its logits."""
    method = build(name)
    loaded = fresh_model()
    base = logits(loaded)
    method.prepare(loaded)
    generator = torch.Generator().manual_seed(1234)

    def short_train(parameters, steps, lr, **options) -> list[float]:
        """The warm-up hook's stand-in: moves the parameters it is given (see
        Method.before_training for its keyword options)."""
        perturb(parameters, generator)
        return [0.0]

    method.before_training(short_train)
    trainable = method.trainable_parameters(loaded.model)
    perturb(trainable, generator)
    after = logits(loaded)
    if trainable:
        assert not torch.allclose(after, base, atol=1e-4), "the perturbed edits are the identity"
    files = method.save(run_dir)
    assert all(f.exists() for f in files)
    if trainable:
        assert files, f"method {name!r} trains but saved no artifact"
    return method, loaded, after


def module_tree(model: torch.nn.Module) -> list[str]:
    return [name for name, _ in model.named_modules()]


def hook_count(model: torch.nn.Module) -> int:
    return sum(len(m._forward_pre_hooks) + len(m._forward_hooks) for m in model.modules())


@pytest.mark.parametrize("name", method_names())
def test_save_load_merge(name, tmp_path):
    _, _, trained_logits = trained(name, tmp_path / "run")

    reloaded = fresh_model()
    method = build(name)
    method.load(reloaded, tmp_path / "run")
    loaded_logits = logits(reloaded)
    torch.testing.assert_close(loaded_logits, trained_logits, rtol=0, atol=1e-6)

    assert isinstance(type(method).supports_merge, bool)
    if not method.supports_merge:
        with pytest.raises(MergeNotSupported):
            method.merge(reloaded)
        return
    method.merge(reloaded)
    plain = fresh_model().model
    assert type(reloaded.model) is type(plain)
    assert module_tree(reloaded.model) == module_tree(plain)
    assert hook_count(reloaded.model) == hook_count(plain)
    torch.testing.assert_close(logits(reloaded), loaded_logits, rtol=0, atol=1e-5)


def test_every_registered_method_is_covered():
    """The parametrisation reads the registry, so every method registered is checked."""
    assert set(method_names()) >= {"zero_shot", "jola", "lora", "bitfit"}
    assert all(isinstance(e.method_class.supports_merge, bool) for _, e in METHODS.items())


def test_the_base_merge_refuses_when_merge_is_not_supported():
    from jola.methods.base import Method

    class Unmergeable(Method):
        supports_merge = False

    with pytest.raises(MergeNotSupported, match="cannot be folded"):
        Unmergeable(None).merge(fresh_model())
