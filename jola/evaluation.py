"""Batched evaluation: generate answers and parse them with the task's parser.

Prompts are left-padded so that every prompt ends at the same position and generation starts
right after "### Response:\\n"; the attention mask hides the padding, so a batched prediction
equals the one-at-a-time prediction. Prompts are sorted by length so that batches carry little
padding; predictions are returned in the original order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from jola.config import EvalConfig
from jola.prompts import build_prompt, first_line
from tasks.base import Example, Task


@dataclass
class Prediction:
    """One evaluated item: the raw response, its first line, and the parsed answer."""

    id: str
    response: str
    first_line: str
    parsed: str
    answer: str

    @property
    def correct(self) -> bool:
        return self.parsed == self.answer


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices grouped into batches of similar length (longest first: memory peaks early)."""
    if batch_size <= 0:
        raise ValueError(f"eval.batch_size must be positive, got {batch_size}")
    order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


@torch.no_grad()
def generate_responses(
    model,
    tokenizer,
    prompts: Sequence[str],
    *,
    max_new_tokens: int,
    num_beams: int = 1,
    batch_size: int = 16,
    progress: bool = True,
    description: str = "generate",
) -> list[str]:
    """Generate a continuation for each prompt (greedy or beam search, no sampling)."""
    tokenizer.padding_side = "left"
    device = next(model.parameters()).device
    encoded = [tokenizer(p, add_special_tokens=True)["input_ids"] for p in prompts]
    responses: list[str] = [""] * len(prompts)
    batches = length_sorted_batches([len(ids) for ids in encoded], batch_size)
    bar = tqdm(total=len(prompts), desc=description, disable=not progress, unit="ex")
    was_training = model.training
    model.eval()
    try:
        for batch in batches:
            inputs = tokenizer.pad(
                {"input_ids": [encoded[i] for i in batch]}, padding=True, return_tensors="pt"
            ).to(device)
            output = model.generate(
                **inputs,
                max_new_tokens=max_new_tokens,
                num_beams=num_beams,
                do_sample=False,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
            )
            new_tokens = output[:, inputs["input_ids"].shape[1] :]
            for i, text in zip(batch, tokenizer.batch_decode(new_tokens, skip_special_tokens=True)):
                responses[i] = text
            bar.update(len(batch))
    finally:
        bar.close()
        model.train(was_training)
    return responses


def evaluate_generate(
    model, tokenizer, task: Task, examples: Sequence[Example], cfg: EvalConfig
) -> list[Prediction]:
    """The paper's protocol: generate, keep the first line, parse with the task's parser."""
    max_new_tokens = cfg.max_new_tokens or task.default_max_new_tokens
    responses = generate_responses(
        model,
        tokenizer,
        [build_prompt(ex.instruction) for ex in examples],
        max_new_tokens=max_new_tokens,
        num_beams=cfg.num_beams,
        batch_size=cfg.batch_size,
        progress=cfg.progress,
        description=f"eval {task.name}",
    )
    predictions = []
    for ex, response in zip(examples, responses):
        line = first_line(response)
        predictions.append(
            Prediction(
                id=ex.id,
                response=response,
                first_line=line,
                parsed=task.parse(line),
                answer=ex.answer,
            )
        )
    return predictions


EVAL_MODES = {"generate": evaluate_generate}
