"""RePE (Zou et al. 2023, "Representation Engineering: A Top-Down Approach to AI Transparency"),
the JoLA paper's inference-time baseline: a reading vector per layer from contrast pairs of the
training set, added to the residual stream at test time, ``h' = h + alpha * v_l`` for the
layers of a window, with ``alpha`` and the window chosen on the dev set. No gradient training.

Followed: the RepE code (github.com/andyzoujm/representation-engineering): ``repe/rep_readers.py``
(``ClusterMeanRepReader``, ``PCARepReader`` with ``get_signs``), ``rep_reading_pipeline.py``
(hidden states at ``rep_token=-1``, differences of the pairs) and ``rep_control_reading_vec.py``
(``WrappedBlock``: the controller added to the decoder block's output at every non-padding
position, on every forward, so generated tokens too). The math lives in
:mod:`jola.edits.steering`.

Choices (docs/methods.md, "RePE"):

- contrast pairs: choice tasks pair the prompt + the correct candidate (the run's target style)
  with the prompt + each incorrect candidate; generation tasks pair the prompt + its reference
  with the prompt + the reference of another training item (a seeded derangement), so the
  direction separates "a continuation that fits this prompt" from one that does not;
- the reader defaults to ``mean_difference`` (RepE's cluster-mean reader): with a few hundred
  pairs whose difference has a consistent sign it is the low-variance estimate, and PCA of
  randomly flipped differences recovers the same axis only when that axis dominates the
  variance (``reader: pca`` runs RepE's PCA reader);
- ``v_l`` is the unit direction times the layer's mean residual norm at the read tokens, so the
  ``alpha`` grid is relative; the grid is ``alphas`` x ``layer_windows`` (fractions of the depth,
  ``[start, end)``), scored by the dev loss (the answer-token cross-entropy the shared trainer
  early-stops on), the lowest kept (ties: the earlier point). 0 is not in the default grid: the
  baseline is the steered model (the paper's RePE falls below zero-shot on two suites, which a
  grid allowing "no steering" would not do);
- merging is exact where the layer's output is ``h + down_proj(...)`` (Llama, Qwen2, Mistral,
  GPT-2, ...): ``alpha * v_l`` becomes the bias of layer ``l``'s down projection.

``fit_without_gradients`` is this method's hook into the run (the runner calls it for methods
that do not train); the choice and the whole grid go to results.json.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

from jola.config import MethodConfig
from jola.edits.residual import ResidualHandle, attach_residual, find_decoder_layers
from jola.edits.steering import READERS, SteeringVectors, last_token_states
from jola.errors import MergeNotSupported, UserError
from jola.methods.base import Method
from jola.methods.registry import register_method
from jola.models import LoadedModel, freeze
from jola.registry import Choice

MLP_WRITES_RESIDUAL = frozenset({"gemma", "gpt2", "llama", "mistral", "phi3", "qwen2", "qwen3"})
"""Model types whose decoder layer ends ``h + mlp(norm(h))`` with the MLP's down projection as
its last op (dropout aside, off in evaluation): a bias there adds a vector to the layer's
output exactly (:meth:`Repe.merge`)."""
REPE_DIR = "repe"
VECTORS_FILE = "steering.safetensors"
REPE_CONFIG_FILE = "repe_config.json"

Reader = Choice("Reader", [(name, name) for name in sorted(READERS)], module=__name__)
Reader.__doc__ = "``method.reader``: the names of :data:`jola.edits.steering.READERS`."


@dataclass
class RepeConfig(MethodConfig):
    """RePE's reader and dev-set grid (see the module docstring for each default's reason).

    ``alphas``: strengths relative to each layer's mean residual norm; ``layer_windows``:
    ``[start, end)`` fractions of the decoder depth (layer ``l`` of ``L`` is in it when
    ``floor(start L) <= l < max(ceil(end L), floor(start L) + 1)``); ``batch_size``: sequences
    per forward when reading and scoring the dev set.
    """

    name: str = "repe"
    reader: str = Reader.mean_difference
    alphas: list[float] = field(default_factory=lambda: [0.01, 0.02, 0.05, 0.1, 0.2])
    layer_windows: list[list[float]] = field(
        default_factory=lambda: [[0.25, 0.5], [0.5, 0.75], [0.25, 0.75]]
    )
    batch_size: int = 16

    def __post_init__(self) -> None:
        super().__post_init__()
        self.reader = Reader.parse(self.reader, "method.reader")
        if not self.alphas:
            raise UserError("method.alphas is empty; give at least one strength")
        bad = [a for a in self.alphas if not (math.isfinite(a) and a >= 0)]
        if bad:
            raise UserError(f"method.alphas must be finite and >= 0, got {bad}")
        if not self.layer_windows:
            raise UserError("method.layer_windows is empty; give at least one [start, end]")
        for window in self.layer_windows:
            if len(window) != 2 or not 0.0 <= window[0] < window[1] <= 1.0:
                raise UserError(
                    f"method.layer_windows: {list(window)} is not [start, end] with "
                    "0 <= start < end <= 1 (fractions of the depth)"
                )
        if self.batch_size <= 0:
            raise UserError(f"method.batch_size must be positive, got {self.batch_size}")


def window_layers(window: Sequence[float], num_layers: int) -> list[int]:
    """The layer indices of a ``[start, end)`` depth fraction (at least one layer)."""
    start = math.floor(window[0] * num_layers)
    end = max(math.ceil(window[1] * num_layers), start + 1)
    return list(range(min(start, num_layers - 1), min(end, num_layers)))


def grid_search(points: Sequence[dict], score: Callable[[dict], float]) -> tuple[int, list[float]]:
    """Score every grid point; the index of the lowest score (ties: the first) and the scores."""
    scores = [float(score(point)) for point in points]
    best = min(range(len(points)), key=lambda i: (scores[i], i))
    return best, scores


def contrast_pairs(task, examples, prompt_format, seed: int) -> list[tuple[str, str, str]]:
    """``(prompt, positive continuation, negative continuation)`` triples (module docstring)."""
    pairs = []
    if task.output_type == "choice":
        for ex in examples:
            prompt = prompt_format.prompt(ex.instruction)
            candidates = prompt_format.candidate_texts(task, ex) or {}
            positive = candidates.get(ex.answer, prompt_format.target_text(task, ex))
            pairs.extend(
                (prompt, positive, text) for label, text in candidates.items() if label != ex.answer
            )
        return pairs
    if len(examples) < 2:
        raise UserError("RePE needs at least 2 training examples to contrast references (n >= 2)")
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    for k, index in enumerate(order):  # each item against the next one in a shuffled cycle
        other = examples[order[(k + 1) % len(order)]]
        ex = examples[index]
        pairs.append(
            (
                prompt_format.prompt(ex.instruction),
                prompt_format.target_text(task, ex),
                prompt_format.target_text(task, other),
            )
        )
    return pairs


def dev_loss(loaded, task, examples, prompt_format, max_length: int, batch: int) -> float:
    """The shared trainer's dev loss (:func:`jola.training.dev_loss`, imported on first use so
    that the method registry stays light): the grid's criterion, on the trainers' axis."""
    from jola.training import dev_loss as trainer_dev_loss

    return trainer_dev_loss(loaded, task, examples, prompt_format, max_length, batch)


class Repe(Method):
    """Read steering vectors from the training set, pick their strength and layers on the dev
    set, and add them to the residual stream at test time."""

    trains = False
    supports_merge = True  # for the architectures of MLP_WRITES_RESIDUAL (merge raises elsewhere)

    def __init__(self, cfg: RepeConfig):
        super().__init__(cfg)
        self.handle: ResidualHandle | None = None
        self.vectors: torch.Tensor | None = None  # [layers, hidden]: unit direction * norm
        self.norms: torch.Tensor | None = None
        self.choice: dict | None = None
        self.record: dict = {}
        self.model_type: str | None = None

    def prepare(self, loaded: LoadedModel) -> None:
        """Freeze the model; nothing is attached until the vectors are read."""
        try:
            self.model_type = find_decoder_layers(loaded.model).model_type
        except ValueError as err:
            raise UserError(str(err)) from err
        freeze(loaded.model)

    def _attach(self, loaded: LoadedModel, layers: list[int], alpha: float) -> ResidualHandle:
        edit = SteeringVectors(self.vectors[layers], layers, alpha)
        return attach_residual(loaded.model, edit)

    def fit_without_gradients(
        self, loaded, train_examples, dev_examples, *, task, prompt_format, seed: int
    ) -> dict:
        """Read the vectors from contrast pairs of ``train_examples``, score the grid on
        ``dev_examples`` and attach the best point; returns the record for results.json."""
        from jola.evaluation import context_length, continuation_ids

        cfg = self.cfg
        model, tokenizer = loaded.model, loaded.tokenizer
        limit = min(cfg.train.max_length, context_length(model) or cfg.train.max_length)
        pairs = contrast_pairs(task, train_examples, prompt_format, seed)
        if not pairs:
            raise UserError(f"RePE found no contrast pair in the training set of {task.name}")
        sequences = []
        for prompt, *texts in pairs:
            for text in texts:
                prompt_ids, target_ids = continuation_ids(tokenizer, prompt, text, limit)
                sequences.append(prompt_ids + target_ids)
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
        states = last_token_states(model, sequences, pad, cfg.batch_size)
        positive, negative = states[0::2], states[1::2]
        generator = torch.Generator().manual_seed(seed)
        directions = READERS[cfg.reader](positive, negative, generator)
        self.norms = states.norm(dim=-1).mean(0)
        self.vectors = directions * self.norms[:, None]

        num_layers = states.shape[1]
        windows = []
        for window in cfg.layer_windows:
            layers = window_layers(window, num_layers)
            if all(layers != w["layers"] for w in windows):  # equal windows on a shallow model
                windows.append({"window": list(window), "layers": layers})
        points = [{**w, "alpha": float(a)} for w in windows for a in cfg.alphas]

        def score(point: dict) -> float:
            if point["alpha"] == 0.0:
                return base
            handle = self._attach(loaded, point["layers"], point["alpha"])
            try:
                return dev_loss(loaded, task, dev_examples, prompt_format, limit, cfg.batch_size)
            finally:
                handle.detach()

        base = dev_loss(loaded, task, dev_examples, prompt_format, limit, cfg.batch_size)
        best, scores = grid_search(points, score)
        self.choice = points[best]
        self.handle = self._attach(loaded, self.choice["layers"], self.choice["alpha"])
        self.record = {
            "reader": str(cfg.reader),
            "pairs": len(pairs),
            "criterion": "dev_loss",
            "dev_loss_unsteered": base,
            "grid": [{**p, "dev_loss": s} for p, s in zip(points, scores)],
            "chosen": {**self.choice, "dev_loss": scores[best]},
            "best_dev_loss": scores[best],
        }
        return self.record

    def final_stats(self) -> dict:
        if self.choice is None:
            return {"fitted": False}
        return {
            "fitted": True,
            "reader": str(self.cfg.reader),
            "alpha": self.choice["alpha"],
            "window": self.choice["window"],
            "layers": self.choice["layers"],
            "pairs": self.record.get("pairs"),
            "dev_loss": self.record["chosen"]["dev_loss"],
            "dev_loss_unsteered": self.record.get("dev_loss_unsteered"),
            "vector_values": int(self.vectors[self.choice["layers"]].numel()),
        }

    def save(self, run_dir: Path) -> list[Path]:
        """``repe/steering.safetensors`` (every layer's vector and norm) and
        ``repe/repe_config.json`` (the chosen alpha and layers); a method that was never
        fitted writes the JSON alone (no steering)."""
        folder = Path(run_dir) / REPE_DIR
        folder.mkdir(parents=True, exist_ok=True)
        meta = {
            "fitted": self.choice is not None,
            "model_type": self.model_type,
            "method": dict(self.cfg.__dict__, train=None),
            **(self.choice or {}),
        }
        files = []
        if self.choice is not None:
            from safetensors.torch import save_file

            tensors = {"vectors": self.vectors.contiguous(), "norms": self.norms.contiguous()}
            save_file(tensors, str(folder / VECTORS_FILE), metadata={"format": "pt"})
            files.append(folder / VECTORS_FILE)
        (folder / REPE_CONFIG_FILE).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        return [*files, folder / REPE_CONFIG_FILE]

    def load(self, loaded: LoadedModel, run_dir: Path) -> None:
        """Attach the steering saved in ``run_dir/repe`` to a fresh model (eval mode)."""
        folder = Path(run_dir) / REPE_DIR
        meta = json.loads((folder / REPE_CONFIG_FILE).read_text())
        self.prepare(loaded)
        loaded.model.eval()
        if not meta["fitted"]:
            return
        from safetensors.torch import load_file

        tensors = load_file(str(folder / VECTORS_FILE))
        self.vectors, self.norms = tensors["vectors"], tensors["norms"]
        self.choice = {k: meta[k] for k in ("window", "layers", "alpha")}
        self.handle = self._attach(loaded, list(meta["layers"]), float(meta["alpha"]))

    def merge(self, loaded: LoadedModel) -> None:
        """Fold ``alpha * v_l`` into the bias of layer ``l``'s MLP down projection: in the
        architectures of :data:`MLP_WRITES_RESIDUAL` the layer's output is
        ``h + down_proj(...)``, so that bias adds the vector at every position (padding too,
        which no real token attends to). Elsewhere (e.g. Gemma 2's norm after the MLP) raises
        ``MergeNotSupported``. Afterwards no hook is left."""
        if self.handle is None:  # never fitted: the model is the base model
            return
        model_type = find_decoder_layers(loaded.model).model_type
        if model_type not in MLP_WRITES_RESIDUAL:
            raise MergeNotSupported(
                f"method=repe: in {model_type} the MLP's output does not reach the residual "
                "stream unchanged (or is not known to), so no bias reproduces the steering; "
                f"merging is exact for {', '.join(sorted(MLP_WRITES_RESIDUAL))}. Keep the "
                "steering attached (Method.load) instead"
            )
        from jola.edits.folding import fold_output
        from jola.edits.site_registry import get_site

        down = get_site("mlp").locate(loaded.model).modules
        edit = self.handle.edit
        self.handle.detach()
        self.handle = None
        for row, layer in enumerate(edit.layers):
            fold_output(down[layer], None, edit.alpha * edit.vectors[row])


register_method("repe", RepeConfig, Repe)
