"""Checks that need a CUDA device; every test here skips without one.

``make gpu-check`` (:mod:`jola.bench.gpu_check`) runs this file on a GPU machine, with the
benchmark rows that need a GPU and a short JoLA run on CUDA. The CPU versions of these
properties are in test_editing.py and test_evaluation.py; here they are checked with CUDA
kernels (SDPA, bf16 matmuls), which the CPU suite never exercises.
"""

from __future__ import annotations

import pytest
import torch

from jola.config import ModelConfig
from jola.edits import EditConfig, attach, merge_into_model
from jola.evaluation import generate_responses
from jola.models import load_model
from tests.test_editing import randomize  # non-trivial edits: mixed gates, large vectors
from tests.test_evaluation import PROMPTS  # prompts of very different lengths

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def tiny_on_cuda(dtype: str = "float32"):
    """The tiny random Llama on the GPU, frozen, in eval mode."""
    loaded = load_model(
        ModelConfig(name="tiny_random", source="tiny_random", device="cuda", dtype=dtype)
    )
    for p in loaded.model.parameters():
        p.requires_grad_(False)
    return loaded


def token_ids(device, batch: int = 2, length: int = 12) -> torch.Tensor:
    ids = torch.randint(3, 200, (batch, length), generator=torch.Generator().manual_seed(1))
    return ids.to(device)


def test_bf16_base_with_fp32_edits_trains_on_cuda():
    loaded = tiny_on_cuda("bfloat16")
    model = loaded.model
    assert loaded.dtype == torch.bfloat16 and next(model.parameters()).is_cuda
    edits = attach(model, EditConfig()).edits
    assert all(p.dtype == torch.float32 and p.is_cuda for p in edits.parameters())
    frozen = {n: p.detach().clone() for n, p in model.named_parameters() if "jola" not in n}
    model.train()
    optimizer = torch.optim.AdamW(list(edits.parameters()), lr=1e-2)
    before = edits.scale.detach().clone()
    ids = token_ids(loaded.device)
    out = model(ids, labels=ids)
    assert out.logits.dtype == torch.bfloat16 and torch.isfinite(out.loss)
    out.loss.backward()
    assert edits.scale.grad.dtype == torch.float32
    assert torch.isfinite(edits.scale.grad).all() and edits.scale.grad.abs().sum() > 0
    optimizer.step()
    assert not torch.equal(before, edits.scale)
    for name, p in model.named_parameters():
        if name in frozen:
            assert torch.equal(frozen[name], p), name


def test_merged_logits_equal_hooked_logits_on_cuda():
    model = tiny_on_cuda().model
    edits = randomize(attach(model, EditConfig()).edits)
    ids = token_ids(next(model.parameters()).device)
    with torch.no_grad():
        hooked = model(ids).logits
        merge_into_model(model, edits)
        merged = model(ids).logits
    assert not hasattr(model, "jola_edits")
    torch.testing.assert_close(merged, hooked, atol=1e-4, rtol=0)


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_batched_generation_equals_unbatched_on_cuda(attn):
    loaded = load_model(
        ModelConfig(
            name="tiny_random", source="tiny_random", device="cuda", attn_implementation=attn
        )
    )
    randomize(attach(loaded.model, EditConfig()).edits)
    kwargs = dict(max_new_tokens=12, num_beams=1, progress=False)
    batched = generate_responses(loaded.model, loaded.tokenizer, PROMPTS, batch_size=5, **kwargs)
    single = generate_responses(loaded.model, loaded.tokenizer, PROMPTS, batch_size=1, **kwargs)
    assert batched == single
    assert any(len(r) > 0 for r in batched)
