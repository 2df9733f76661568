"""Steering vectors on the residual stream (RePE: Zou et al. 2023, "Representation Engineering:
A Top-Down Approach to AI Transparency"): reading a direction per layer from contrast pairs,
and adding it at test time.

Reading (:data:`READERS`): from the residual stream at the last token of each pair's positive
and negative sequence (``pos``, ``neg``: ``[pairs, layers, hidden]``), one unit direction per
layer:

- ``mean_difference``: ``mean(pos - neg)`` normalised, the RepE code's ``ClusterMeanRepReader``
  (difference of the class means) with its sign fixed by construction;
- ``pca``: the RepE code's ``PCARepReader`` as its examples use it: each pair's difference
  with the pair's order flipped at random (RepE's examples shuffle the statements of a pair),
  recentred, the first principal component; its sign chosen so that the positive member
  projects higher in most pairs (``get_signs``). Without the random flips, recentring would
  remove the very mean difference the direction should capture.

Steering (:class:`SteeringVectors`): ``h' = h + alpha * v_l`` at every real token of the layers
chosen, the prompt and every generated token (RepE's ``WrappedBlock`` adds its controller to the
decoder block's output on every forward, masking padding); ``v_l`` is the unit direction scaled
by the layer's mean residual-stream norm at the read tokens, so that one ``alpha`` means the
same relative push on every layer and model (RepE's coefficients are absolute, tuned per model).

This module imports only torch and the other modules of :mod:`jola.edits`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from jola.edits.positions import TokenPositions
from jola.edits.residual import ResidualEdit, find_decoder_layers

Reader = Callable[[Tensor, Tensor, torch.Generator], Tensor]


def _unit(v: Tensor) -> Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp_min(1e-12)


def mean_difference(pos: Tensor, neg: Tensor, generator: torch.Generator | None = None) -> Tensor:
    """Per layer, the unit vector along the mean of ``pos - neg`` (``[layers, hidden]``)."""
    return _unit((pos.double() - neg.double()).mean(0)).float()


def first_principal_component(
    pos: Tensor, neg: Tensor, generator: torch.Generator | None = None
) -> Tensor:
    """Per layer, the first principal component of the pair differences, each pair's order
    flipped at random (``generator``), signed so that ``pos`` projects above ``neg`` in most
    pairs (ties: +)."""
    diff = pos.double() - neg.double()  # [pairs, layers, hidden]
    flips = torch.randint(0, 2, (diff.shape[0],), generator=generator).double() * 2 - 1
    diff = diff * flips[:, None, None]
    centred = diff - diff.mean(0, keepdim=True)
    directions = []
    for layer in range(diff.shape[1]):
        _, _, vh = torch.linalg.svd(centred[:, layer], full_matrices=False)
        v = vh[0]
        higher = ((pos[:, layer].double() - neg[:, layer].double()) @ v > 0).double().mean()
        directions.append(v if higher >= 0.5 else -v)
    return _unit(torch.stack(directions)).float()


READERS: dict[str, Reader] = {
    "mean_difference": mean_difference,
    "pca": first_principal_component,
}
"""Reading methods by name: ``fn(pos, neg, generator) -> [layers, hidden]`` unit directions."""


class SteeringVectors(ResidualEdit):
    """``h' = h + alpha * vectors[l]`` at every real token of each layer ``l`` in ``layers``
    (``vectors``: ``[len(layers), hidden]``, float32 buffers, in the order of ``layers``)."""

    def __init__(self, vectors: Tensor, layers: Sequence[int], alpha: float) -> None:
        super().__init__()
        layers = [int(layer) for layer in layers]
        if vectors.dim() != 2 or vectors.shape[0] != len(layers):
            raise ValueError(
                f"steering vectors of shape {tuple(vectors.shape)} for {len(layers)} layers"
            )
        if len(set(layers)) != len(layers):
            raise ValueError(f"steering layers repeat: {layers}")
        self.layers = tuple(layers)
        self.positions = TokenPositions("all")
        self.alpha = float(alpha)
        self.register_buffer("vectors", vectors.detach().to(torch.float32).clone())
        self._row = {layer: row for row, layer in enumerate(self.layers)}

    def edit(self, layer: int, hidden: Tensor, masks: dict[str, Tensor]) -> Tensor:
        shift = (self.alpha * self.vectors[self._row[layer]]).to(hidden.dtype)
        return torch.where(masks["all"].unsqueeze(-1), hidden + shift, hidden)


@torch.no_grad()
def last_token_states(
    model: nn.Module, sequences: Sequence[Sequence[int]], pad_id: int, batch_size: int = 16
) -> Tensor:
    """The residual stream after every decoder layer at the last token of each sequence,
    ``[sequences, layers, hidden]`` float32 (on the CPU).

    Sequences are left-padded into batches with explicit position ids, as log-likelihood
    scoring does, so the states do not depend on the batch (up to float rounding)."""
    layers = find_decoder_layers(model)
    device = next(model.parameters()).device
    captured: list[Tensor] = []

    def capture(module: nn.Module, args: tuple, output) -> None:
        hidden = output[0] if isinstance(output, tuple) else output
        captured.append(hidden[:, -1].float().cpu())

    hooks = [m.register_forward_hook(capture) for m in layers.modules]
    was_training = model.training
    model.eval()
    states = []
    try:
        for start in range(0, len(sequences), batch_size):
            batch = [list(s) for s in sequences[start : start + batch_size]]
            width = max(len(s) for s in batch)
            ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, seq in enumerate(batch):
                ids[row, width - len(seq) :] = torch.tensor(seq, dtype=torch.long)
                mask[row, width - len(seq) :] = 1
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            captured.clear()
            # the backbone alone: the states are all that is read (no LM head over the vocab)
            layers.backbone(
                input_ids=ids.to(device),
                attention_mask=mask.to(device),
                position_ids=positions.to(device),
                use_cache=False,
            )
            states.append(torch.stack(captured, dim=1))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    return torch.cat(states)
