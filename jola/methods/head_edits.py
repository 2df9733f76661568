"""What every method whose artifact is per-head edits shares (JoLA, its controls and LoFiT):
the attached handle, the ``edits/`` folder and ``gates.json``, loading onto a fresh model,
merging into the output projections, and the pruned re-attachment for evaluation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from jola import edits as editing
from jola import gates
from jola.methods.base import Method
from jola.models import LoadedModel, freeze
from jola.results import GATES_FILE

EDITS_DIR = "edits"


def gate_table(edits: editing.HeadEdits) -> dict:
    """Every layer/head gate at evaluation, its P(open) and log_alpha, per kind (gates.json)."""
    table: dict[str, Any] = {"num_layers": edits.num_layers, "num_heads": edits.num_heads}
    with torch.no_grad():
        for kind, log_alpha, gate in (
            ("additive", edits.log_alpha_add, edits.gate_add(training=False)),
            ("multiplicative", edits.log_alpha_mult, edits.gate_mult(training=False)),
        ):
            entry = {"eval_gate": gate.cpu().tolist()}
            if log_alpha is not None:
                entry["prob_open"] = gates.prob_open(log_alpha).cpu().tolist()
                entry["log_alpha"] = log_alpha.detach().cpu().tolist()
            table[kind] = entry
    return table


def attach_trained_edits(model: torch.nn.Module, run_dir: str | Path, prune_closed: bool = False):
    """Load the edits saved in ``run_dir/edits`` onto a fresh base model (for inference, on the
    model's device, in eval mode); the implementation of :meth:`HeadEditsMethod.load`."""
    device = next(model.parameters()).device
    edits = editing.load_edits(Path(run_dir) / EDITS_DIR, device=device)
    model.eval()
    return editing.attach(model, edits, prune_closed=prune_closed)


class HeadEditsMethod(Method):
    """A method whose trained state is :class:`~jola.edits.HeadEdits` attached through hooks."""

    handle: editing.EditHandle | None = None

    @property
    def edits(self) -> editing.HeadEdits:
        if self.handle is None:
            raise RuntimeError(
                f"{self.name} edits are not attached; call prepare() or load() first"
            )
        return self.handle.edits

    def gate_values(self) -> dict:
        return gate_table(self.edits)

    def save_extra(self) -> dict:
        """What ``edit_config.json`` records under ``extra`` beside the edits' own settings."""
        return {"method": dict(self.cfg.__dict__, train=None)}

    def save(self, run_dir: Path) -> list[Path]:
        """``edits/`` (tensors and config, never base weights) and ``gates.json``."""
        folder = editing.save_edits(self.edits, Path(run_dir) / EDITS_DIR, extra=self.save_extra())
        gates_path = Path(run_dir) / GATES_FILE
        gates_path.write_text(json.dumps(self.gate_values()) + "\n")
        return [folder / editing.EDITS_FILE, folder / editing.CONFIG_FILE, gates_path]

    def load(self, loaded: LoadedModel, run_dir: Path) -> None:
        """Attach the edits of ``run_dir/edits`` (:func:`attach_trained_edits`) to the fresh
        model, frozen and in eval mode; the gates and head set are the saved ones."""
        freeze(loaded.model)
        self.handle = attach_trained_edits(loaded.model, run_dir)

    def merge(self, loaded: LoadedModel) -> None:
        """Fold the evaluation-mode edits into the attention output projections
        (:func:`jola.edits.merge_into_model`: ``W diag(1 + g_m m)``, bias ``+ W g_a a``; exact)
        and take the hooks off."""
        editing.merge_into_model(loaded.model, self.edits)

    def before_evaluation(self, loaded: LoadedModel, prune_closed: bool) -> None:
        """With ``eval.prune_closed`` re-attach so that heads with both gates closed (or outside
        a fixed head set) are skipped."""
        if prune_closed:
            edits = self.edits
            self.handle.detach()
            loaded.model.eval()
            self.handle = editing.attach(loaded.model, edits, prune_closed=True)
