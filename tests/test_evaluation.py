"""Batched, left-padded generation equals one-at-a-time generation; response post-processing."""

import pytest
import torch

from jola.config import EvalConfig, ModelConfig
from jola.evaluation import evaluate_generate, generate_responses, length_sorted_batches
from jola.models import load_model
from jola.prompts import build_prompt, first_line
from tasks import get_task
from tasks.base import Example


@pytest.fixture(scope="module")
def tiny():
    return load_model(ModelConfig(name="tiny_random", source="tiny_random"))


PROMPTS = [
    build_prompt("Short question?"),
    build_prompt("A much longer instruction that pads the other prompts in its batch " * 3),
    build_prompt("Medium length instruction, with punctuation: yes."),
    build_prompt("x"),
    build_prompt("Another one of a different length entirely, to vary padding."),
]


@pytest.mark.parametrize("attn", ["sdpa", "eager"])
def test_batched_greedy_equals_unbatched(attn):
    loaded = load_model(
        ModelConfig(name="tiny_random", source="tiny_random", attn_implementation=attn)
    )
    kwargs = dict(max_new_tokens=12, num_beams=1, progress=False)
    batched = generate_responses(loaded.model, loaded.tokenizer, PROMPTS, batch_size=5, **kwargs)
    single = generate_responses(loaded.model, loaded.tokenizer, PROMPTS, batch_size=1, **kwargs)
    assert batched == single
    assert any(len(r) > 0 for r in batched)


def test_generated_tokens_follow_the_prompt(tiny):
    """Greedy decoding reproduces the argmax of a plain forward pass on the unpadded prompt."""
    tok = tiny.tokenizer
    prompt = PROMPTS[0]
    ids = tok(prompt, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        first = tiny.model(ids).logits[0, -1].argmax().item()
    out = generate_responses(
        tiny.model, tok, [prompt, PROMPTS[1]], max_new_tokens=1, batch_size=2, progress=False
    )
    assert out[0] == tok.decode([first], skip_special_tokens=True)


def test_length_sorted_batches_cover_every_index_once():
    batches = length_sorted_batches([5, 1, 9, 3, 7], batch_size=2)
    assert sorted(i for b in batches for i in b) == [0, 1, 2, 3, 4]
    assert batches[0] == [2, 4]
    assert length_sorted_batches([5, 1, 9, 3, 7], 2, sort=False) == [[0, 1], [2, 3], [4]]
    with pytest.raises(ValueError):
        length_sorted_batches([1], 0)


def test_unsorted_batches_give_the_same_responses(tiny):
    prompts = [PROMPTS[1], PROMPTS[0], PROMPTS[1] * 3, PROMPTS[0] * 2]
    kwargs = dict(max_new_tokens=3, batch_size=2, progress=False)
    sorted_out = generate_responses(tiny.model, tiny.tokenizer, prompts, **kwargs)
    unsorted_out = generate_responses(
        tiny.model, tiny.tokenizer, prompts, sort_by_length=False, **kwargs
    )
    assert sorted_out == unsorted_out
    assert sorted_out == [
        generate_responses(tiny.model, tiny.tokenizer, [p], **kwargs)[0] for p in prompts
    ]


@pytest.mark.parametrize(
    "response, expected",
    [
        ("the correct answer is answer1\nmore text", "the correct answer is answer1"),
        ("\n\n  answer2  \nx", "answer2"),
        ("", ""),
    ],
)
def test_first_line(response, expected):
    assert first_line(response) == expected


def test_evaluate_generate_parses_first_line(tiny, monkeypatch):
    task = get_task("siqa")
    examples = [Example(id="a", instruction="q", target="t", answer="answer2")] * 2
    monkeypatch.setattr(
        "jola.evaluation.generate_responses",
        lambda *a, **k: ["the correct answer is answer2\nanswer1", "answer1"],
    )
    preds = evaluate_generate(tiny.model, tiny.tokenizer, task, examples, EvalConfig())
    assert [p.parsed for p in preds] == ["answer2", "answer1"]
    assert [p.correct for p in preds] == [True, False]


def test_generation_stops_on_every_eos_the_model_declares():
    from types import SimpleNamespace

    from jola.evaluation import stop_token_ids

    tokenizer = SimpleNamespace(eos_token_id=7)
    llama3 = SimpleNamespace(generation_config=SimpleNamespace(eos_token_id=[128001, 128008, 7]))
    assert stop_token_ids(llama3, tokenizer) == [128001, 128008, 7]
    single = SimpleNamespace(generation_config=SimpleNamespace(eos_token_id=3))
    assert stop_token_ids(single, tokenizer) == [3, 7]
    assert stop_token_ids(SimpleNamespace(), tokenizer) == [7]
