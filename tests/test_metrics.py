"""Metrics equal direct sacrebleu / rouge-score / bert-score calls; scales; offline BERTScore."""

import pytest
import sacrebleu
from rouge_score import rouge_scorer

from jola.config import EvalConfig
from jola.errors import UserError
from jola.metrics import (
    METRICS,
    bleu_streams,
    compute_metrics,
    describe_metrics,
    metric_options,
    packaged_bertscore_dir,
    resolve_bertscore_model,
)

HYPS = [
    "The cat sat on the mat.",
    "A dog runs across the park quickly.",
    "Rain fell all night over the quiet town.",
]
REFS = [
    ["The cat is sitting on the mat.", "A cat sat on a mat."],
    ["A dog is running through the park."],
    ["It rained all night in the small town.", "Rain fell over the town.", "Night rain."],
]


def test_accuracy_is_a_fraction():
    assert METRICS.get("acc")(["a", "b", "c", "d"], ["a", "x", "c", "y"]) == 0.5


def test_bleu_equals_direct_sacrebleu_with_ragged_references():
    streams = [
        [REFS[0][0], REFS[1][0], REFS[2][0]],
        [REFS[0][1], None, REFS[2][1]],
        [None, None, REFS[2][2]],
    ]
    assert bleu_streams(REFS) == streams
    direct = sacrebleu.corpus_bleu(HYPS, streams).score
    assert METRICS.get("bleu")(HYPS, REFS) == pytest.approx(direct, abs=1e-9)
    assert 0 < direct < 100


def test_bleu_single_references_as_strings_or_lists():
    single = [refs[0] for refs in REFS]
    direct = sacrebleu.corpus_bleu(HYPS, [single]).score
    assert METRICS.get("bleu")(HYPS, single) == pytest.approx(direct)
    assert METRICS.get("bleu")(HYPS, [[r] for r in single]) == pytest.approx(direct)


def test_bleu_and_rouge_are_100_on_identical_strings():
    refs = [[h] for h in HYPS]
    assert METRICS.get("bleu")(HYPS, refs) == pytest.approx(100.0)
    assert METRICS.get("rougeL")(HYPS, refs) == pytest.approx(100.0)


def test_rouge_l_equals_direct_rouge_score_best_over_references():
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)
    best = [
        max(scorer.score(ref, hyp)["rougeL"].fmeasure for ref in refs)
        for hyp, refs in zip(HYPS, REFS)
    ]
    expected = 100 * sum(best) / len(best)
    assert METRICS.get("rougeL")(HYPS, REFS) == pytest.approx(expected)
    assert 0 < expected < 100


def test_empty_predictions_score_zero_not_crash():
    assert METRICS.get("bleu")(["", ""], [["a b c"], ["d e f"]]) == 0.0
    assert METRICS.get("rougeL")(["", ""], [["a b c"], ["d e f"]]) == 0.0


def test_length_mismatch_and_missing_references_are_errors():
    with pytest.raises(ValueError, match="2 predictions for 1 references"):
        METRICS.get("bleu")(["a", "b"], [["a"]])
    with pytest.raises(ValueError, match="item 0 needs at least one reference"):
        METRICS.get("rougeL")(["a"], [[]])


def test_bertscore_offline_with_the_packaged_encoder(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    resolved = resolve_bertscore_model("auto")
    assert resolved.model_type == str(packaged_bertscore_dir()) and resolved.num_layers == 6
    same = METRICS.get("bertscore")(HYPS, [[h] for h in HYPS])
    assert same == pytest.approx(100.0, abs=0.01)
    different = METRICS.get("bertscore")(HYPS, REFS)
    assert 30 < different < same


def test_bertscore_equals_a_direct_bert_score_call(monkeypatch):
    import bert_score

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _, _, f1 = bert_score.score(
        HYPS, REFS, model_type=str(packaged_bertscore_dir()), num_layers=6, batch_size=8
    )
    ours = METRICS.get("bertscore")(HYPS, REFS, bertscore_model="packaged")
    assert ours == pytest.approx(100 * float(f1.mean()), abs=1e-4)


def test_bertscore_model_choice_is_resolved_and_described(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    hub = resolve_bertscore_model("auto")
    assert (hub.model_type, hub.num_layers) == ("roberta-large", 17)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    info = describe_metrics(["acc", "bleu", "rougeL", "bertscore"], {})
    assert info["bertscore"]["model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert info["bertscore"]["num_layers"] == 6 and info["bertscore"]["version"]
    assert info["bleu"]["version"] == sacrebleu.__version__
    assert {i["scale"] for n, i in info.items() if n != "acc"} == {"0-100"}
    with pytest.raises(UserError, match="bertscore_num_layers"):
        resolve_bertscore_model("my-own/encoder")
    assert resolve_bertscore_model("my-own/encoder", 4).num_layers == 4


def test_compute_metrics_passes_eval_options(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    options = metric_options(EvalConfig(bertscore_model="packaged", bertscore_batch_size=2))
    values = compute_metrics(["bleu", "rougeL", "bertscore"], HYPS, [[h] for h in HYPS], options)
    assert values["bleu"] == pytest.approx(100) and values["bertscore"] == pytest.approx(
        100, abs=0.01
    )


def test_unknown_metric_lists_the_choices():
    with pytest.raises(UserError, match=r"unknown metric 'meteor'; choices: acc, bertscore, bleu"):
        compute_metrics(["meteor"], ["a"], ["a"])
