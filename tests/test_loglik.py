"""eval.mode=loglik: planted answers win, batched scores equal unbatched ones, runner wiring."""

import json

import pytest
import torch

from jola.config import EvalConfig, ModelConfig
from jola.errors import UserError
from jola.evaluation import (
    check_eval_mode,
    evaluate_loglik,
    score_candidates,
    score_continuations,
)
from jola.models import load_model
from jola.prompts import PromptFormat, build_prompt
from jola.runner import as_run_config, run, run_directory
from tasks import get_task
from tasks.base import Example
from tests.helpers import compose_config


def tiny(attn="sdpa"):
    return load_model(
        ModelConfig(name="tiny_random", source="tiny_random", attn_implementation=attn)
    )


def plant_token(loaded, text: str, strength: float = 50.0):
    """Give lm_head a bias that makes the single token of ``text`` overwhelmingly likely."""
    (token,) = loaded.tokenizer(text, add_special_tokens=False)["input_ids"]
    old = loaded.model.lm_head
    new = torch.nn.Linear(old.in_features, old.out_features, bias=True)
    with torch.no_grad():
        new.weight.copy_(old.weight)
        new.bias.zero_()
        new.bias[token] = strength
    loaded.model.lm_head = new


EXAMPLES = [
    Example(id=f"q{i}", instruction=text, target="t", answer="answer2")
    for i, text in enumerate(["Short?", "A much longer question " * 5, "Medium question here."])
]


@pytest.mark.parametrize("digit", ["1", "2", "3"])
def test_the_planted_answer_wins(digit):
    loaded = tiny()
    plant_token(loaded, digit)
    predictions = evaluate_loglik(
        loaded.model, loaded.tokenizer, get_task("siqa"), EXAMPLES, EvalConfig(progress=False)
    )
    assert [p.parsed for p in predictions] == [f"answer{digit}"] * len(EXAMPLES)
    assert [p.id for p in predictions] == [ex.id for ex in EXAMPLES]
    for p in predictions:
        assert set(p.scores) == {"answer1", "answer2", "answer3"}
        assert max(p.scores, key=p.scores.get) == p.parsed
        assert p.response == p.first_line == f"answer{digit}"  # the release's bare label


def test_sentence_style_scores_the_sentence_candidates():
    loaded = tiny()
    plant_token(loaded, "2")
    sentence = PromptFormat(target="sentence")
    (prediction,) = evaluate_loglik(
        loaded.model,
        loaded.tokenizer,
        get_task("siqa"),
        EXAMPLES[:1],
        EvalConfig(progress=False),
        sentence,
    )
    assert prediction.parsed == "answer2"
    assert prediction.response == "the correct answer is answer2"
    assert prediction.prompt == sentence.prompt(EXAMPLES[0].instruction)


def test_per_item_candidates_are_respected():
    loaded = tiny()
    plant_token(loaded, "5")
    arc = get_task("arc_c")
    four = Example(id="a", instruction="q", target="t", answer="answer1", labels=arc.labels[:4])
    five = Example(id="b", instruction="q", target="t", answer="answer1")
    p4, p5 = evaluate_loglik(
        loaded.model, loaded.tokenizer, arc, [four, five], EvalConfig(progress=False)
    )
    assert set(p4.scores) == {"answer1", "answer2", "answer3", "answer4"}
    assert p5.parsed == "answer5"


def pairs_for(task, examples):
    return [
        (build_prompt(ex.instruction), text)
        for ex in examples
        for text in task.candidates(ex).values()
    ]


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_batched_scores_equal_unbatched(attn):
    loaded = tiny(attn)
    pairs = pairs_for(get_task("siqa"), EXAMPLES) + pairs_for(
        get_task("mmlu_pro_law"),
        [Example(id="m", instruction="Pick.", target="C", answer="C", labels=tuple("ABCD"))],
    )
    kwargs = dict(progress=False)
    one = score_continuations(loaded.model, loaded.tokenizer, pairs, batch_size=1, **kwargs)
    many = score_continuations(loaded.model, loaded.tokenizer, pairs, batch_size=64, **kwargs)
    some = score_continuations(loaded.model, loaded.tokenizer, pairs, batch_size=5, **kwargs)
    assert many == pytest.approx(one, abs=1e-4)
    assert some == pytest.approx(one, abs=1e-4)
    assert len(set(round(s, 3) for s in one)) > 3  # the scores actually differ


def test_shared_prefix_scoring_equals_one_sequence_per_candidate(monkeypatch):
    import jola.evaluation as evaluation

    loaded = tiny()
    items = [
        (build_prompt("Which?"), [f"the correct answer is answer{i}" for i in (1, 2, 3)]),
        (build_prompt("Letter?"), list("ABCDEFGHIJ")),
        (build_prompt("Mixed?"), ["the correct answer is true", "no", "maybe not"]),
    ]
    seen = []
    original = evaluation.run_requests
    monkeypatch.setattr(
        evaluation,
        "run_requests",
        lambda model, tok, requests, **kw: (
            seen.append(len(requests)) or original(model, tok, requests, **kw)
        ),
    )
    fast = score_candidates(loaded.model, loaded.tokenizer, items, progress=False)
    assert seen == [1 + 1 + 3]  # one sequence for each shared item, one per mixed candidate
    flat = [(prompt, text) for prompt, texts in items for text in texts]
    slow = score_continuations(loaded.model, loaded.tokenizer, flat, batch_size=1, progress=False)
    assert [x for row in fast for x in row] == pytest.approx(slow, abs=1e-4)


def test_score_is_the_summed_log_probability_of_the_continuation():
    loaded = tiny()
    tok, model = loaded.tokenizer, loaded.model
    prompt, text = build_prompt("Is the sky blue?"), "the correct answer is true"
    prompt_ids = tok(prompt, add_special_tokens=True)["input_ids"]
    target_ids = tok(text, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([prompt_ids + target_ids])
    with torch.no_grad():
        logprobs = torch.log_softmax(model(ids).logits[0].float(), dim=-1)
    expected = sum(
        logprobs[len(prompt_ids) - 1 + i, token].item() for i, token in enumerate(target_ids)
    )
    (score,) = score_continuations(model, tok, [(prompt, text)], progress=False)
    assert score == pytest.approx(expected, abs=1e-4)


def test_generation_tasks_refuse_loglik_with_a_clear_message():
    with pytest.raises(UserError, match=r"eval.mode=loglik .* task 'xsum' is a generation task"):
        check_eval_mode("loglik", get_task("xsum"))
    check_eval_mode("loglik", get_task("boolq"))
    check_eval_mode("generate", get_task("xsum"))
    with pytest.raises(UserError, match="unknown eval.mode 'beam'"):
        check_eval_mode("beam", get_task("boolq"))


def overrides(tmp_path, task, *extra):
    return [
        "model=tiny_random",
        f"task={task}",
        "n=4",
        "task.test_limit=5",
        "eval.progress=false",
        f"output_root={tmp_path}",
        *extra,
    ]


@pytest.mark.parametrize("task", ["siqa", "mmlu_pro_physics"])
def test_runner_records_the_loglik_mode(tmp_path, task):
    cfg = compose_config(overrides(tmp_path, task, "eval.mode=loglik"))
    results = run(cfg)
    assert results["eval"]["mode"] == "loglik" and results["eval"]["parse_failures"] == 0
    assert 0.0 <= results["metrics"]["acc"] <= 1.0
    lines = (run_directory(as_run_config(cfg)) / "predictions.jsonl").read_text().splitlines()
    rows = [json.loads(line) for line in lines]
    assert len(rows) == results["data"]["n_test"] and all(r["scores"] for r in rows)
    assert results["metrics"]["acc"] == sum(r["parsed"] == r["answer"] for r in rows) / len(rows)


def test_runner_records_generate_mode_and_metric_info(tmp_path):
    results = run(compose_config(overrides(tmp_path, "boolq", "eval.num_beams=1")))
    assert results["eval"]["mode"] == "generate"
    assert results["metric_info"] == {"acc": {"scale": "fraction 0-1"}}


def test_runner_refuses_loglik_for_generation_before_loading_anything(tmp_path):
    cfg = compose_config(overrides(tmp_path, "xsum", "eval.mode=loglik"))
    with pytest.raises(UserError, match="generation task"):
        run(cfg)
    assert not list(tmp_path.rglob("results.json"))
