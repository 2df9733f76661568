"""JoLA's gated vector edits placed at any set of sites: the paper's ablations of edit placement
(ablation 1: attention heads, the MLP output, or both; each gated or not) and of the gate
(ablation 2: one shared gate per head for both edits instead of two).

At every site of ``method.sites`` (:data:`jola.edits.SITES`: ``heads``, ``mlp``) each unit
(an attention head; the MLP output of a layer) gets JoLA's edit

    z' = (1 + g_m m) * z + g_a a

with its own Hard-Concrete gates g_m, g_a per unit (``shared_gate: false``), or ONE gate g per
unit for both edits (``shared_gate: true``):

    z' = g * ((1 + m) * z - z) + z + g * a   (= (1 + g m) * z + g a, the same sample g twice)

The penalty, the Lagrangian target, ``gate_lr`` and the gate statistics cover every gate of
every site. The penalty is the sum over sites of the configured penalty of each site's gates
(:func:`jola.gates.penalty` on that site's ``[layers, units]`` tensors), so ``sites: [heads]``
is exactly JoLA's; a shared gate enters as both kinds' gate (``penalty(g, g)``: release
``lam * R + (1 - lam) * R = R``, paper ``2 * lam * sum P(open)``), i.e. as two tied gates. The
target's expected open fraction is over all gates together.

The paper describes these ablations (Section 5 / Table 4 of JoLA, ICML 2025) but the authors'
release (github.com/wenlai-lavine/jola, jola 0.0.1) has no code for them: the MLP site here
follows the only MLP-output editor among the baselines, RED (github.com/mbzuai-nlp/red:
``ActivationLLama`` wraps every ``mlp.down_proj``), and the gate's init and sampling are JoLA's
(one unit per layer: log_alpha ~ U(-sqrt(3), sqrt(3)), the release's xavier bound for one unit).
``sites: [heads]`` with ``shared_gate: false`` computes exactly what ``method=jola`` does (the
same init, gates and penalty; tests/test_edit_sites.py) but saves its artifact in the sites
format. Merging is exact at both sites (:func:`jola.edits.merge_site_edits`); evaluation with
``eval.prune_closed`` keeps every hook (pruning is an optimisation of the per-head path only).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from jola import edits as editing
from jola import gates
from jola.config import TrainConfig
from jola.errors import UserError, unknown_choice
from jola.methods.jola import EDITS_DIR, Jola, JolaConfig
from jola.methods.registry import register_method
from jola.models import LoadedModel, freeze
from jola.results import GATES_FILE

GATE_KINDS = ("add", "mult", "shared")
"""Gate kinds in the order statistics and the target read them (``add`` first, as JoLA)."""


@dataclass
class JolaSitesConfig(JolaConfig):
    """JoLA's options (:class:`~jola.methods.jola.JolaConfig`) plus where the edits go.

    ``sites``: the edit sites, in order (names of :data:`jola.edits.SITES`: ``heads``, the
    input of each attention output projection per head; ``mlp``, the output of each MLP down
    projection, one unit per layer). ``shared_gate``: one Hard-Concrete gate per unit for both
    edit kinds (needs ``gated``).
    """

    name: str = "jola_sites"
    sites: list[str] = field(default_factory=lambda: ["heads"])
    shared_gate: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        self.sites = list(self.sites)
        if not self.sites:
            raise UserError(f"method.sites is empty; choices: {', '.join(sorted(editing.SITES))}")
        for site in self.sites:
            if site not in editing.SITES:
                raise unknown_choice("edit site (method.sites)", site, editing.SITES)
        if len(set(self.sites)) != len(self.sites):
            raise UserError(f"method.sites names a site twice: {self.sites}")
        if self.shared_gate and not self.gated:
            raise UserError("method.shared_gate needs gates (method.gated=true)")


def site_gate_table(edits: editing.HeadEdits, site: str) -> dict:
    """One site's gates at evaluation, P(open) and log_alpha per kind, laid out as JoLA's
    gates.json (``additive`` / ``multiplicative``: ``[layers][units]``; a shared gate appears
    under both kinds, with ``shared_gate: true``)."""
    table: dict[str, Any] = {
        "site": site,
        "num_layers": edits.num_layers,
        "num_heads": edits.num_heads,
    }
    log_alphas = edits.log_alphas()
    with torch.no_grad():
        gate_mult, gate_add = edits.gate_pair(training=False)
        for kind, name, gate in (
            ("add", "additive", gate_add),
            ("mult", "multiplicative", gate_mult),
        ):
            log_alpha = log_alphas.get("shared", log_alphas.get(kind))
            entry = {"eval_gate": gate.cpu().tolist()}
            if log_alpha is not None:
                entry["prob_open"] = gates.prob_open(log_alpha).cpu().tolist()
                entry["log_alpha"] = log_alpha.detach().cpu().tolist()
            table[name] = entry
    if edits.shared_gate:
        table["shared_gate"] = True
    return table


class JolaSites(Jola):
    """Attach :class:`~jola.edits.SiteEdits` at ``method.sites``; train only them."""

    supports_merge = True

    @property
    def site_edits(self) -> editing.SiteEdits:
        """The attached edits, by site."""
        return self.edits

    def edit_config(self) -> editing.EditConfig:
        """JoLA's edit settings, with one gate per unit for both edits when ``shared_gate``."""
        return dataclasses.replace(super().edit_config(), shared_gate=self.cfg.shared_gate)

    def prepare(self, loaded: LoadedModel) -> None:
        """Freeze the whole base model (lm_head included) and attach fresh edits at every site."""
        freeze(loaded.model)
        try:
            self.handle = editing.attach_sites(
                loaded.model, {site: self.edit_config() for site in self.cfg.sites}
            )
        except ValueError as err:
            raise UserError(str(err)) from err

    def parameter_groups(self, model: torch.nn.Module, train: TrainConfig) -> list[dict]:
        """``edits`` (every m and a: ``train.lr``, ``train.weight_decay``) and, when gated,
        ``gates`` (every log_alpha of every site: ``gate_lr``, never weight decay)."""
        log_alphas = [la for tensors in self.site_edits.log_alphas().values() for la in tensors]
        return self.edit_and_gate_groups(self.site_edits.vectors(), log_alphas, train)

    def _log_alphas(self) -> dict[str, torch.Tensor]:
        """Every gate of every site by kind (``add``, ``mult`` or ``shared``), flattened and
        concatenated over the sites: what the statistics and the target read."""
        by_kind = self.site_edits.log_alphas()
        return {
            kind: torch.cat([la.flatten() for la in by_kind[kind]])
            for kind in GATE_KINDS
            if kind in by_kind
        }

    def regularizer(self, model: torch.nn.Module, step: int) -> torch.Tensor | None:
        if not self.cfg.gated:
            return None
        if self.controller is not None:  # a target budget replaces the penalty
            fraction = gates.expected_open_fraction(*self._log_alphas().values())
            return self.controller.term(fraction, step)
        lam = self.schedule.value(step, self.total_steps)
        self.last_lambda = lam
        terms = []
        for _, edits in self.site_edits.items():
            log_alphas = edits.log_alphas()
            shared = log_alphas.get("shared")
            if shared is not None:  # one gate serving both kinds: two tied gates
                add, mult = shared, shared
            else:
                add, mult = log_alphas.get("add"), log_alphas.get("mult")
            terms.append(gates.penalty(self.cfg.penalty, add, mult, lam))
        return sum(terms[1:], terms[0])  # one site: exactly JoLA's term

    def closed_gate_counts(self) -> dict[str, int]:
        """Evaluation gates exactly 0 per kind (``add``, ``mult`` or ``shared``), over every
        site."""
        with torch.no_grad():
            return {
                kind: int((gates.deterministic_gate(la) == 0).sum())
                for kind, la in self._log_alphas().items()
            }

    def final_stats(self) -> dict:
        counts = self.site_edits.unit_counts()
        stats: dict[str, Any] = {
            "sites": list(self.cfg.sites),
            "shared_gate": self.cfg.shared_gate,
            "edited_units": counts,
        }
        if "heads" in counts:
            stats["edited_heads"] = counts["heads"]
        return {
            **stats,
            **self.gate_statistics(),
            **self.localisation_stats(),
            "penalty": "target" if self.controller is not None else self.cfg.penalty,
            "schedule": self.cfg.schedule,
            "edit_parameters": self.site_edits.num_parameters(),
        }

    def gate_values(self) -> dict:
        """gates.json: one site's table as JoLA's (:func:`site_gate_table`), or
        ``{"sites": {site: table}}`` for several."""
        tables = {site: site_gate_table(e, site) for site, e in self.site_edits.items()}
        return next(iter(tables.values())) if len(tables) == 1 else {"sites": tables}

    def save(self, run_dir: Path) -> list[Path]:
        folder = editing.save_site_edits(
            self.site_edits,
            Path(run_dir) / EDITS_DIR,
            extra={"method": dict(self.cfg.__dict__, train=None)},
        )
        gates_path = Path(run_dir) / GATES_FILE
        gates_path.write_text(json.dumps(self.gate_values()) + "\n")
        return [folder / editing.EDITS_FILE, folder / editing.CONFIG_FILE, gates_path]

    def load(self, loaded: LoadedModel, run_dir: Path) -> None:
        """Attach the edits of ``run_dir/edits`` to the fresh model, frozen and in eval mode."""
        freeze(loaded.model)
        edits = editing.load_site_edits(Path(run_dir) / EDITS_DIR)
        loaded.model.eval()
        self.handle = editing.attach_sites(loaded.model, edits)

    def merge(self, loaded: LoadedModel) -> None:
        """Fold the evaluation-mode edits into the weights (:func:`jola.edits.merge_site_edits`:
        the heads into the attention output projections' input columns, the MLP edits into the
        down projections' output rows; exact) and take the hooks off."""
        editing.merge_site_edits(loaded.model, self.site_edits)

    def before_evaluation(self, loaded: LoadedModel, prune_closed: bool) -> None:
        """Nothing: ``eval.prune_closed`` only skips closed heads of the per-head path, and the
        outputs are the same with every hook in place."""


register_method("jola_sites", JolaSitesConfig, JolaSites)
