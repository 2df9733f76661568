"""Batched evaluation, one function per ``eval.mode`` (:data:`EVAL_MODES`).

``generate`` (the paper's protocol): prompts are left-padded so that every prompt ends at the
same position and generation starts right after "### Response:\\n"; the attention mask hides the
padding, so a batched prediction equals the one-at-a-time prediction. Prompts are sorted by
length so that batches carry little padding; predictions are returned in the original order.
The first line of each response is parsed with the task's parser.

``loglik`` (choice tasks): every candidate target, in the run's target style ("answer1" or
"the correct answer is answer1", ...), is appended to the run's prompt and tokenised as in
training (prompt with special tokens, target
without), and scored by the summed log-probability of its tokens (no EOS); the argmax is the
prediction, so there are no parse failures. Sequences of several items share one left-padded
forward pass with explicit position ids, so batched scores equal unbatched ones. Candidates that
differ only in their last token (all of this project's label sets) are scored from one sequence
per item instead of one per candidate. Each sequence's prompt length is declared to the model
(:class:`jola.edits.positions.declared_prompts`), so that an edit of prompt positions (ReFT)
leaves the scored tokens alone, as it does in training; generation needs no declaration, its
first pass is the prompt.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from jola.config import EvalConfig
from jola.edits.positions import declared_prompts
from jola.errors import UserError
from jola.prompts import DEFAULT_FORMAT, PromptFormat, first_line
from jola.registry import Registry
from tasks.base import Example, Task


@dataclass
class Prediction:
    """One evaluated item: the raw response, its first line, and the parsed answer."""

    id: str
    response: str
    first_line: str
    parsed: str
    answer: str
    scores: dict[str, float] | None = None  # loglik: summed log-probability per label
    prompt: str = ""  # the exact prompt string (before truncation to the model's context)
    truncated: bool = False  # the prompt lost its beginning to fit the model's context

    @property
    def correct(self) -> bool:
        return self.parsed == self.answer


def length_sorted_batches(
    lengths: Sequence[int], batch_size: int, *, sort: bool = True
) -> list[list[int]]:
    """Indices grouped into batches of similar length (longest first: memory peaks early).

    ``sort=False`` keeps the original order (consecutive chunks): the unsorted baseline that
    the benchmark compares against."""
    if batch_size <= 0:
        raise ValueError(f"eval.batch_size must be positive, got {batch_size}")
    order = list(range(len(lengths)))
    if sort:
        order.sort(key=lambda i: (-lengths[i], i))
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


@contextmanager
def evaluation_pass(model, total: int, description: str, progress: bool, unit: str):
    """Eval mode and a progress bar for one pass over ``total`` items; yields the bar and
    restores the model's training mode afterwards, also on error."""
    bar = tqdm(total=total, desc=description, disable=not progress, unit=unit)
    was_training = model.training
    model.eval()
    try:
        yield bar
    finally:
        bar.close()
        model.train(was_training)


def context_length(model) -> int | None:
    """The number of positions the model was built for (None when it does not say)."""
    value = getattr(getattr(model, "config", None), "max_position_embeddings", None)
    return int(value) if isinstance(value, int) and value > 0 else None


def stop_token_ids(model, tokenizer) -> list[int]:
    """Every token that ends a response: the model's generation-config EOS ids (Llama 3.x
    Instruct lists three) and the tokenizer's EOS, as the release's ``generate`` stops on the
    model's generation config. Stopping on fewer would let text after an end-of-text token be
    decoded into the response."""
    ids: list[int] = []
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for value in (configured, tokenizer.eos_token_id):
        for token in value if isinstance(value, (list, tuple)) else [value]:
            if token is not None and token not in ids:
                ids.append(int(token))
    return ids


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
    sort_by_length: bool = True,
    truncated: list[int] | None = None,
) -> list[str]:
    """Generate a continuation for each prompt (greedy or beam search, no sampling).

    Batches hold prompts of similar length (``sort_by_length``), so little compute goes to
    padding; responses come back in the order of ``prompts`` either way. A prompt that would
    not fit the model's context with ``max_new_tokens`` keeps its end (as training keeps it);
    its index is appended to ``truncated``."""
    tokenizer.padding_side = "left"
    device = next(model.parameters()).device
    eos_ids = stop_token_ids(model, tokenizer)
    limit = context_length(model)
    room = None if limit is None else max(limit - max_new_tokens, 1)
    encoded = []
    for index, prompt in enumerate(prompts):
        ids = tokenizer(prompt, add_special_tokens=True)["input_ids"]
        if room is not None and len(ids) > room:
            ids = ids[-room:]
            if truncated is not None:
                truncated.append(index)
        encoded.append(ids)
    responses: list[str] = [""] * len(prompts)
    batches = length_sorted_batches([len(ids) for ids in encoded], batch_size, sort=sort_by_length)
    with evaluation_pass(model, len(prompts), description, progress, unit="ex") as bar:
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
                eos_token_id=eos_ids,
            )
            new_tokens = output[:, inputs["input_ids"].shape[1] :]
            for i, text in zip(batch, tokenizer.batch_decode(new_tokens, skip_special_tokens=True)):
                responses[i] = text
            bar.update(len(batch))
    return responses


def new_token_budget(cfg: EvalConfig, task: Task) -> int:
    """``eval.max_new_tokens``, or the task's default when it is null (never when it is 0:
    validation refuses 0)."""
    return task.default_max_new_tokens if cfg.max_new_tokens is None else cfg.max_new_tokens


def evaluate_generate(
    model,
    tokenizer,
    task: Task,
    examples: Sequence[Example],
    cfg: EvalConfig,
    prompt_format: PromptFormat | None = None,
) -> list[Prediction]:
    """The paper's protocol: generate, keep the first line, parse with the task's parser."""
    prompt_format = prompt_format or DEFAULT_FORMAT
    max_new_tokens = new_token_budget(cfg, task)
    prompts = [prompt_format.prompt(ex.instruction) for ex in examples]
    truncated: list[int] = []
    responses = generate_responses(
        model,
        tokenizer,
        prompts,
        truncated=truncated,
        max_new_tokens=max_new_tokens,
        num_beams=cfg.num_beams,
        batch_size=cfg.batch_size,
        progress=cfg.progress,
        description=f"eval {task.name}",
    )
    predictions = []
    cut = set(truncated)
    for index, (ex, prompt, response) in enumerate(zip(examples, prompts, responses)):
        line = first_line(response)
        predictions.append(
            Prediction(
                id=ex.id,
                response=response,
                first_line=line,
                parsed=task.parse(line),
                answer=ex.answer,
                prompt=prompt,
                truncated=index in cut,
            )
        )
    return predictions


def continuation_ids(
    tokenizer, prompt: str, continuation: str, limit: int | None = None
) -> tuple[list[int], list[int]]:
    """Prompt and continuation token ids, tokenised separately as the training data is; with a
    context ``limit`` the prompt keeps its end so that both fit (as training truncates)."""
    prompt_ids = tokenizer(prompt, add_special_tokens=True)["input_ids"]
    target_ids = tokenizer(continuation, add_special_tokens=False)["input_ids"]
    if not target_ids:
        raise ValueError(f"candidate {continuation!r} tokenises to nothing")
    if limit is not None and len(prompt_ids) + len(target_ids) > limit:
        prompt_ids = prompt_ids[-max(limit - len(target_ids), 1) :]
    return prompt_ids, target_ids


@dataclass(frozen=True)
class ScoringRequest:
    """One forward sequence: the summed log-probability of its last ``n_scored`` tokens, and
    the log-probability of each of ``next_tokens`` right after it."""

    ids: list[int]
    n_scored: int
    next_tokens: tuple[int, ...] = ()


def _forward_last_logits(model, input_ids, attention_mask, position_ids, keep: int):
    """Logits of the last ``keep`` positions (all positions if the model cannot restrict)."""
    kwargs = dict(attention_mask=attention_mask, position_ids=position_ids, use_cache=False)
    try:
        out = model(input_ids=input_ids, logits_to_keep=keep, **kwargs)
    except TypeError:
        out = model(input_ids=input_ids, **kwargs)
    return out.logits[:, -keep:, :]


@torch.no_grad()
def run_requests(
    model,
    tokenizer,
    requests: Sequence[ScoringRequest],
    *,
    batch_size: int = 16,
    progress: bool = True,
    description: str = "loglik",
) -> list[tuple[float, list[float]]]:
    """(summed log-probability of the scored tokens, next-token log-probabilities) per request.

    Sequences are left-padded, so every sequence ends at the last position and only the last
    (longest scored part + 1) logits are computed; position ids count real tokens only, so a
    batched result equals the one-at-a-time result.
    """
    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    results: list[tuple[float, list[float]]] = [(0.0, [])] * len(requests)
    batches = length_sorted_batches([len(r.ids) for r in requests], batch_size)
    with evaluation_pass(model, len(requests), description, progress, unit="seq") as bar:
        for batch in batches:
            width = max(len(requests[i].ids) for i in batch)
            keep = max(requests[i].n_scored for i in batch) + 1
            ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for row, i in enumerate(batch):
                seq = requests[i].ids
                ids[row, width - len(seq) :] = torch.tensor(seq)
                mask[row, width - len(seq) :] = 1
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            # the prompt of each row is all but its scored tokens (for prompt-position edits)
            prompts = [len(requests[i].ids) - requests[i].n_scored for i in batch]
            with declared_prompts(model, prompts):
                logits = _forward_last_logits(
                    model, ids.to(device), mask.to(device), positions.to(device), keep
                )
            logprobs = torch.log_softmax(logits.float(), dim=-1).cpu()
            for row, i in enumerate(batch):
                request = requests[i]
                scored = request.ids[len(request.ids) - request.n_scored :]
                # window index j predicts the token at window index j + 1; the last index
                # (keep - 1) predicts the token after the sequence
                steps = torch.arange(keep - 1 - request.n_scored, keep - 1)
                total = float(logprobs[row, steps, scored].sum()) if scored else 0.0
                following = [float(logprobs[row, keep - 1, t]) for t in request.next_tokens]
                results[i] = (total, following)
            bar.update(len(batch))
    return results


def score_continuations(
    model, tokenizer, pairs: Sequence[tuple[str, str]], **kwargs
) -> list[float]:
    """Summed log-probability of each continuation after its prompt: one sequence per pair."""
    requests = []
    for prompt, text in pairs:
        prompt_ids, target_ids = continuation_ids(tokenizer, prompt, text)
        requests.append(ScoringRequest(prompt_ids + target_ids, len(target_ids)))
    return [total for total, _ in run_requests(model, tokenizer, requests, **kwargs)]


def common_prefix(sequences: Sequence[list[int]]) -> list[int]:
    """The longest token prefix all sequences share."""
    prefix = []
    for tokens in zip(*sequences):
        if any(t != tokens[0] for t in tokens):
            break
        prefix.append(tokens[0])
    return prefix


def score_candidates(
    model, tokenizer, items: Sequence[tuple[str, Sequence[str]]], **kwargs
) -> list[list[float]]:
    """Summed log-probability of every candidate of every (prompt, candidates) item.

    When an item's candidates share all tokens but a last, different one ("... answer1" /
    "... answer2", or single letters), one sequence (prompt + shared tokens) scores all of them:
    the shared tokens' log-probabilities plus each last token's log-probability at the end.
    Other items score each candidate as its own sequence. Both give the same numbers as
    :func:`score_continuations`.
    """
    requests, plans = [], []
    limit = context_length(model)
    for prompt, texts in items:
        encoded = [continuation_ids(tokenizer, prompt, text, limit) for text in texts]
        prompt_ids, targets = encoded[0][0], [target for _, target in encoded]
        shared = common_prefix(targets)
        lasts = [target[-1] for target in targets]
        if all(len(t) == len(shared) + 1 for t in targets):
            plans.append(("shared", len(requests), lasts))
            requests.append(ScoringRequest(prompt_ids + shared, len(shared), tuple(lasts)))
        else:
            plans.append(("each", len(requests), len(targets)))
            requests.extend(ScoringRequest(prompt_ids + t, len(t)) for t in targets)
    results = run_requests(model, tokenizer, requests, **kwargs)
    scores = []
    for kind, first, extra in plans:
        if kind == "shared":
            total, following = results[first]
            scores.append([total + value for value in following])
        else:
            scores.append([results[first + k][0] for k in range(extra)])
    return scores


def evaluate_loglik(
    model,
    tokenizer,
    task: Task,
    examples: Sequence[Example],
    cfg: EvalConfig,
    prompt_format: PromptFormat | None = None,
) -> list[Prediction]:
    """Pick, per item, the candidate answer with the highest summed log-probability; the
    candidates are written in the run's target style, as training wrote them."""
    check_eval_mode("loglik", task)
    prompt_format = prompt_format or DEFAULT_FORMAT
    candidates = [prompt_format.candidate_texts(task, ex) for ex in examples]
    prompts = [prompt_format.prompt(ex.instruction) for ex in examples]
    items = [(prompt, list(options.values())) for prompt, options in zip(prompts, candidates)]
    scores = score_candidates(
        model,
        tokenizer,
        items,
        batch_size=cfg.batch_size,
        progress=cfg.progress,
        description=f"loglik {task.name}",
    )
    limit = context_length(model)
    predictions = []
    for ex, prompt, options, values in zip(examples, prompts, candidates, scores):
        by_label = dict(zip(options, values))
        best = max(by_label, key=by_label.get)
        predictions.append(
            Prediction(
                id=ex.id,
                response=options[best],
                first_line=options[best],
                parsed=best,
                answer=ex.answer,
                scores=by_label,
                prompt=prompt,
                truncated=limit is not None
                and any(
                    sum(map(len, continuation_ids(tokenizer, prompt, text))) > limit
                    for text in options.values()
                ),
            )
        )
    return predictions


@dataclass(frozen=True)
class EvalMode:
    """An evaluation protocol:
    ``fn(model, tokenizer, task, examples, cfg, prompt_format) -> predictions``."""

    fn: Callable[..., list[Prediction]]
    needs_candidates: bool = False  # only for tasks with a fixed answer set

    def __call__(self, model, tokenizer, task, examples, cfg, prompt_format=None):
        return self.fn(model, tokenizer, task, examples, cfg, prompt_format)


EVAL_MODES: Registry[EvalMode] = Registry("eval.mode")
EVAL_MODES.add("generate", EvalMode(evaluate_generate))
EVAL_MODES.add("loglik", EvalMode(evaluate_loglik, needs_candidates=True))


def check_eval_mode(mode: str, task: Task) -> None:
    """Fail early, with a clear message, when ``mode`` cannot evaluate ``task``."""
    if EVAL_MODES.get(mode).needs_candidates and task.output_type != "choice":
        raise UserError(
            f"eval.mode={mode} scores a fixed set of answer candidates, but task '{task.name}' "
            f"is a generation task (suite {task.suite}); use eval.mode=generate"
        )
