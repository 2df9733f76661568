"""JoLA written the way the authors' release writes it: a Python loop over heads.

This is the project's one copy of that implementation (our own code, the release's math). The
benchmark times it as the ``jola_loop`` baseline and reports how far it is from ours
(:func:`check_loop_equivalence`); the tests use it as the oracle that our vectorised hooks
(:mod:`jola.edits`, all heads of a layer in one op) compute the same logits and gradients.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from jola import gates
from jola.bench.models import clone_sharing_weights
from jola.edits import HeadEdits, attach, find_output_projections
from jola.models import LoadedModel, freeze
from jola.training import causal_lm_loss


class LoopJolaEdits(nn.Module):
    """Per layer: one ``[H, D]`` scale and offset and one ``[H]`` log_alpha per gate kind; in
    each attention output projection's input, a Python loop over heads writes
    ``(1 + g_m[h] m[h]) * z[..., h, :] + g_a[h] a[h]`` into a clone of the activation. Gates are
    drawn per layer and forward (sampled when training, deterministic otherwise).
    """

    def __init__(self, num_layers: int, num_heads: int, head_dim: int) -> None:
        super().__init__()
        self.num_layers, self.num_heads, self.head_dim = num_layers, num_heads, head_dim

        def per_layer(*shape: int) -> nn.ParameterList:
            return nn.ParameterList([nn.Parameter(torch.zeros(*shape)) for _ in range(num_layers)])

        self.scale = per_layer(num_heads, head_dim)
        self.offset = per_layer(num_heads, head_dim)
        self.log_alpha_mult = per_layer(num_heads)
        self.log_alpha_add = per_layer(num_heads)

    @classmethod
    def from_head_edits(cls, edits: HeadEdits) -> LoopJolaEdits:
        """The same parameter values as a fully enabled, gated :class:`HeadEdits`."""
        loop = cls(edits.num_layers, edits.num_heads, edits.head_dim).to(edits.device)
        with torch.no_grad():
            for layer in range(edits.num_layers):
                loop.scale[layer].copy_(edits.scale[layer])
                loop.offset[layer].copy_(edits.offset[layer])
                loop.log_alpha_mult[layer].copy_(edits.log_alpha_mult[layer])
                loop.log_alpha_add[layer].copy_(edits.log_alpha_add[layer])
        return loop

    def edit(self, layer: int, x: Tensor) -> Tensor:
        """The edited input of layer ``layer``'s output projection, one head at a time."""
        g_m = gates.gate_values(self.log_alpha_mult[layer], self.training)
        g_a = gates.gate_values(self.log_alpha_add[layer], self.training)
        scale, offset = self.scale[layer], self.offset[layer]
        z = x.view(*x.shape[:-1], self.num_heads, self.head_dim)
        out = z.clone()
        for h in range(self.num_heads):
            out[..., h, :] = (1 + g_m[h] * scale[h]) * z[..., h, :] + g_a[h] * offset[h]
        return out.view(x.shape)

    def penalty(self, lam: float) -> Tensor:
        """The release penalty, computed the release's way (a loop over layers)."""
        total_gates = self.num_layers * self.num_heads
        r_add = r_mult = 0.0
        for layer in range(self.num_layers):
            p_add = gates.prob_open(self.log_alpha_add[layer]).clamp(gates.EPS, 1 - gates.EPS)
            p_mult = gates.prob_open(self.log_alpha_mult[layer]).clamp(gates.EPS, 1 - gates.EPS)
            r_add = r_add + p_add.mean()
            r_mult = r_mult + p_mult.mean()
        return lam * r_add / total_gates + (1 - lam) * r_mult / total_gates


def head_layout(model: nn.Module) -> tuple[int, int, int]:
    """``(layers, heads, head_dim)`` of the inputs of the model's attention output projections."""
    proj = find_output_projections(model)
    return proj.num_layers, proj.num_heads, proj.head_dim


def attach_loop(model: nn.Module, loop: LoopJolaEdits) -> list:
    """Pre-hooks on every output projection that apply ``loop``; returns the hook handles."""
    proj = find_output_projections(model)
    model.add_module("jola_loop_edits", loop)
    handles = []
    for layer, module in enumerate(proj.modules):

        def hook(module, args, layer=layer):
            return (loop.edit(layer, args[0]), *args[1:])

        handles.append(module.register_forward_pre_hook(hook))
    return handles


def _stacked_grad(params: nn.ParameterList) -> Tensor:
    return torch.cat([p.grad.flatten() for p in params])


def check_loop_equivalence(bench: LoadedModel, batch: dict) -> dict:
    """Logits and edit gradients of ours vs the per-head loop, same parameters, eval gates.

    The edits are scaled up (x300) so that they move the logits noticeably; the result records
    by how much (``edit_effect_on_logits``) beside the two implementations' differences."""
    ours_model = freeze(clone_sharing_weights(bench.model))
    loop_model = freeze(clone_sharing_weights(bench.model))
    edits = HeadEdits(*head_layout(ours_model), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        edits.scale.mul_(300.0)
        edits.offset.mul_(300.0)
    handle = attach(ours_model, edits)
    loop = LoopJolaEdits.from_head_edits(handle.edits)
    attach_loop(loop_model, loop)
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask")}
    results = {}
    for model in (ours_model, loop_model):
        model.eval()
        logits = model(**inputs).logits.float()
        loss = causal_lm_loss(model, batch, answer_only_logits=True)
        loss.backward()
        results[id(model)] = logits.detach()
    ours_logits, loop_logits = results[id(ours_model)], results[id(loop_model)]
    grad_ours = torch.cat([edits.scale.grad.flatten(), edits.offset.grad.flatten()])
    grad_loop = torch.cat([_stacked_grad(loop.scale), _stacked_grad(loop.offset)])
    base_logits = clone_sharing_weights(bench.model).eval()(**inputs).logits.float()
    return {
        "max_abs_logit_diff": (ours_logits - loop_logits).abs().max().item(),
        "max_abs_logit": ours_logits.abs().max().item(),
        "edit_effect_on_logits": (ours_logits - base_logits).abs().max().item(),
        "max_abs_grad_diff": (grad_ours - grad_loop).abs().max().item(),
        "max_abs_grad": grad_ours.abs().max().item(),
    }
