"""The one training path every trainable method shares: HF Trainer + the method's hooks.

A method supplies its optimiser parameter groups (each with its own learning rate and weight
decay), an optional regulariser, an optional warm-up before training, an optional rule for which
evaluations may be kept, and statistics to log; this module supplies the data (the run's prompt +
target, loss on answer tokens only), AdamW over those groups with a cosine schedule and warmup
(a multiplier of every group's lr), early stopping on dev loss with the best parameters
restored, and a jsonl training log.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

import torch
import torch.nn.functional as F
from transformers import Trainer, TrainingArguments

from jola.config import TrainConfig
from jola.edits.positions import declared_prompts, prompt_lengths_from_labels
from jola.errors import TrainingDiverged
from jola.evaluation import context_length
from jola.prompts import PromptFormat
from jola.results import TRAIN_LOG_FILE
from jola.training_callbacks import BestParametersCallback, JsonlLogCallback
from tasks import get_task
from tasks.base import Example

IGNORE_INDEX = -100


def encode_example(tokenizer, prompt: str, target: str, max_length: int, eos: bool = False) -> dict:
    """Prompt and target tokenised separately (as at evaluation), loss only on the target
    (+ EOS when ``eos``). Too long a sequence keeps its end, where the answer is."""
    prompt_ids = tokenizer(prompt, add_special_tokens=True)["input_ids"]
    target_ids = tokenizer(target, add_special_tokens=False)["input_ids"]
    if eos:
        target_ids = target_ids + [tokenizer.eos_token_id]
    input_ids = (prompt_ids + target_ids)[-max_length:]
    labels = ([IGNORE_INDEX] * len(prompt_ids) + target_ids)[-max_length:]
    truncated = len(prompt_ids) + len(target_ids) > max_length
    return {"input_ids": input_ids, "labels": labels, "truncated": truncated}


def encode_examples(
    tokenizer, task, examples: Sequence[Example], prompt_format: PromptFormat, max_length: int
) -> list[dict]:
    """Every example rendered with the run's prompt format and tokenised for training (each
    sequence keeps its last ``max_length`` tokens)."""
    return [
        encode_example(
            tokenizer,
            prompt_format.prompt(ex.instruction),
            prompt_format.target_text(task, ex),
            max_length,
            eos=prompt_format.eos,
        )
        for ex in examples
    ]


class PadCollator:
    """Right-pads a batch; padding gets attention 0 and label IGNORE_INDEX."""

    def __init__(self, pad_token_id: int):
        self.pad_token_id = pad_token_id

    def __call__(self, features: Sequence[dict]) -> dict[str, torch.Tensor]:
        width = max(len(f["input_ids"]) for f in features)
        batch = {"input_ids": [], "attention_mask": [], "labels": []}
        for f in features:
            pad = width - len(f["input_ids"])
            batch["input_ids"].append(f["input_ids"] + [self.pad_token_id] * pad)
            batch["attention_mask"].append([1] * len(f["input_ids"]) + [0] * pad)
            batch["labels"].append(f["labels"] + [IGNORE_INDEX] * pad)
        return {key: torch.tensor(value) for key, value in batch.items()}


def supports_answer_only_logits(model) -> bool:
    """True when logits are a plain linear map of the decoder's last hidden state."""
    config = model.config
    if getattr(config, "final_logit_softcapping", None) or getattr(config, "logit_scale", None):
        return False
    try:
        return model.get_decoder() is not None and model.get_output_embeddings() is not None
    except (AttributeError, NotImplementedError):
        return False


def causal_lm_loss(model, inputs: dict, answer_only_logits: bool) -> torch.Tensor:
    """Mean cross-entropy over answer tokens.

    With ``answer_only_logits`` the LM head is applied only at positions that predict an answer
    token, instead of over the full vocabulary at every position (same loss, less compute).
    Each row's prompt (its tokens before the first labelled one) is declared to the model for
    the forward, so that an edit of prompt positions (ReFT) edits the prompt only
    (:class:`jola.edits.positions.declared_prompts`; other methods ignore it).
    """
    labels = inputs["labels"]
    prompts = prompt_lengths_from_labels(labels, inputs.get("attention_mask"))
    with declared_prompts(model, prompts):
        if not answer_only_logits:
            return model(**inputs).loss
        hidden = model.get_decoder()(
            input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"]
        ).last_hidden_state
    targets = labels[:, 1:]
    selected = targets != IGNORE_INDEX
    logits = model.get_output_embeddings()(hidden[:, :-1][selected])
    return F.cross_entropy(logits.float(), targets[selected])


@torch.no_grad()
def dev_loss(
    loaded, task, examples: Sequence[Example], prompt_format, max_length: int, batch_size: int
) -> float:
    """The dev loss of the model as it is, computed as the shared trainer's evaluation does
    (HF Trainer's rule): the answer-token cross-entropy of each batch of ``batch_size``
    examples, in order, averaged over the batches weighted by their number of examples. So a
    method that learns without gradients (RePE) or not at all (zero-shot) is on the trainers'
    axis."""
    model, tokenizer = loaded.model, loaded.tokenizer
    limit = min(max_length, context_length(model) or max_length)
    data = encode_examples(tokenizer, task, examples, prompt_format, limit)
    collator = PadCollator(tokenizer.pad_token_id)
    answer_only = supports_answer_only_logits(model)
    was_training = model.training
    model.eval()
    total, rows = 0.0, 0
    try:
        for start in range(0, len(data), batch_size):
            batch = collator(data[start : start + batch_size])
            inputs = {k: v.to(loaded.device) for k, v in batch.items()}
            total += float(causal_lm_loss(model, inputs, answer_only)) * len(inputs["labels"])
            rows += len(inputs["labels"])
    finally:
        model.train(was_training)
    return total / rows if rows else math.nan


def check_finite(what: str, value: torch.Tensor, step: int) -> None:
    """Stop training on a NaN/Inf loss: nothing diverged may be saved or evaluated."""
    if not torch.isfinite(value.detach()).all():
        raise TrainingDiverged(
            f"training diverged: {what} is {value.item()} at step {step}; lower method.train.lr"
        )


def check_finite_parameters(parameters: Sequence[torch.nn.Parameter]) -> None:
    """The trained parameters, before they are saved, must all be finite."""
    bad = sum(int((~torch.isfinite(p.detach())).sum()) for p in parameters)
    if bad:
        raise TrainingDiverged(f"training diverged: {bad} trained parameter values are NaN/Inf")


class MethodTrainer(Trainer):
    """HF Trainer whose loss is the task loss plus the method's regulariser (training only),
    and whose optimiser gets the method's parameter groups (each with its own lr and weight
    decay; the lr scheduler, a multiplier, scales every group alike)."""

    def __init__(self, *args, method, answer_only_logits: bool, param_groups=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.method = method
        self.answer_only_logits = answer_only_logits
        self.param_groups = param_groups
        self.last_terms: dict[str, float] = {}

    def create_optimizer(self, model=None):
        """AdamW (the class and settings of ``args.optim``) over the method's groups."""
        if self.param_groups is None:
            return super().create_optimizer(model)
        if self.optimizer is None:
            optimizer_cls, kwargs = self.get_optimizer_cls_and_kwargs(
                self.args, self.model if model is None else model
            )
            groups = [dict(group, params=list(group["params"])) for group in self.param_groups]
            self.optimizer = optimizer_cls(groups, **kwargs)
        return self.optimizer

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        task_loss = causal_lm_loss(model, inputs, self.answer_only_logits)
        loss = task_loss
        if model.training:
            check_finite("training loss", task_loss, self.state.global_step)
            self.method.observe_training_loss(task_loss.item())
            reg = self.method.regularizer(model, self.state.global_step)
            if reg is not None:
                check_finite("regulariser", reg, self.state.global_step)
                loss = task_loss + reg
                self.last_terms = {"task_loss": task_loss.item(), "regularizer": reg.item()}
        return (loss, {"loss": loss}) if return_outputs else loss


def assert_only_trainable(model: torch.nn.Module, trainable: Sequence[torch.nn.Parameter]) -> None:
    """Fail loudly if any parameter outside the method's own requires a gradient."""
    allowed = {id(p) for p in trainable}
    leaking = [
        name for name, p in model.named_parameters() if p.requires_grad and id(p) not in allowed
    ]
    if leaking:
        raise RuntimeError(f"parameters outside the method are trainable: {leaking[:5]}")
    if not trainable:
        raise RuntimeError("the method has no trainable parameters")


def checked_parameter_groups(method, model, train_cfg: TrainConfig) -> list[dict]:
    """The method's parameter groups, which must hold each trainable parameter exactly once."""
    groups = method.parameter_groups(model, train_cfg)
    in_groups = [id(p) for group in groups for p in group["params"]]
    trainable = {id(p) for p in method.trainable_parameters(model)}
    if len(in_groups) != len(set(in_groups)) or set(in_groups) != trainable:
        raise RuntimeError(
            f"{method.name}: the parameter groups must hold every trainable parameter once "
            f"({len(in_groups)} in groups, {len(trainable)} trainable)"
        )
    for group in groups:
        if group["lr"] <= 0 or group["weight_decay"] < 0:
            raise RuntimeError(f"{method.name}: bad parameter group {group.get('name')}")
    return groups


def describe_groups(groups: Sequence[dict]) -> list[dict]:
    """What results.json records of each parameter group (no tensors)."""
    return [
        {
            "name": group.get("name", str(i)),
            "lr": group["lr"],
            "weight_decay": group["weight_decay"],
            "parameters": sum(p.numel() for p in group["params"]),
        }
        for i, group in enumerate(groups)
    ]


def short_training(
    model,
    parameters: Sequence[torch.nn.Parameter],
    data: Sequence[dict],
    collator,
    *,
    steps: int,
    lr: float,
    batch_size: int,
    seed: int,
    answer_only_logits: bool,
    device: torch.device,
    regularizer: Callable[[], torch.Tensor] | None = None,
    linear_decay: bool = False,
) -> list[float]:
    """``steps`` plain AdamW steps (constant ``lr``, gradient clipping at 1.0 as the Trainer)
    of the task loss on ``data``, in an order drawn from ``seed``; returns the task losses. Used
    for a method's warm-up before the real training; the model is left in eval mode.

    ``regularizer()`` (optional) is added to every step's loss (e.g. LoFiT's L1 term);
    ``linear_decay`` lowers the lr linearly from ``lr`` to 0 over the steps (HF's ``linear``
    schedule without warm-up)."""
    parameters = list(parameters)
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=0.0)
    decay = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: max(0.0, 1.0 - step / max(steps, 1)) if linear_decay else 1.0
    )
    generator = torch.Generator().manual_seed(seed)
    order: list[int] = []
    losses = []
    model.train()
    for _ in range(steps):
        if len(order) < batch_size:
            order += torch.randperm(len(data), generator=generator).tolist()
        batch = collator([data[i] for i in order[:batch_size]])
        order = order[batch_size:]
        batch = {k: v.to(device) for k, v in batch.items()}
        loss = causal_lm_loss(model, batch, answer_only_logits)
        check_finite("warm-up loss", loss, len(losses))
        total = loss if regularizer is None else loss + regularizer()
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        torch.nn.utils.clip_grad_norm_(parameters, 1.0)
        optimizer.step()
        decay.step()
        losses.append(loss.item())
    optimizer.zero_grad(set_to_none=True)
    model.eval()
    return losses


def train_method(method, loaded, splits, cfg, run_dir: Path, tracker=None) -> dict:
    """Train ``method``'s parameters on ``splits.train`` with early stopping on ``splits.dev``
    (the run's task, prompt, training settings and seed)."""
    return fit(
        method,
        loaded,
        splits.train,
        splits.dev,
        task=get_task(cfg.task.name, cfg.task),
        train_cfg=cfg.method.train,
        prompt_format=PromptFormat.from_config(cfg.prompt),
        seed=cfg.seed,
        run_dir=run_dir,
        tracker=tracker,
    )


def fit(
    method,
    loaded,
    train_examples: Sequence[Example],
    dev_examples: Sequence[Example],
    *,
    task,
    train_cfg: TrainConfig,
    prompt_format: PromptFormat,
    seed: int,
    run_dir: Path,
    tracker=None,
) -> dict:
    """The shared training path on any examples of any task (:func:`train_method` for a run;
    :func:`jola.api.train` for a user's own pairs); returns the training record."""
    model, tokenizer = loaded.model, loaded.tokenizer
    assert_only_trainable(model, method.trainable_parameters(model))
    limit = min(train_cfg.max_length, context_length(model) or train_cfg.max_length)
    train_data = encode_examples(tokenizer, task, train_examples, prompt_format, limit)
    dev_data = encode_examples(tokenizer, task, dev_examples, prompt_format, limit)
    truncated = sum(item["truncated"] for item in (*train_data, *dev_data))
    steps_per_epoch = math.ceil(len(train_data) / train_cfg.batch_size)
    answer_only = train_cfg.answer_only_logits and supports_answer_only_logits(model)
    collator = PadCollator(tokenizer.pad_token_id)

    def short_train(
        parameters,
        steps: int | None,
        lr: float,
        *,
        epochs: float | None = None,
        regularizer=None,
        linear_decay: bool = False,
    ) -> list[float]:
        if epochs is not None:  # the Trainer's count: ceil(n / batch) steps per epoch
            steps = math.ceil(epochs * steps_per_epoch)
        return short_training(
            model,
            parameters,
            train_data,
            collator,
            steps=steps,
            lr=lr,
            batch_size=train_cfg.batch_size,
            seed=seed,
            answer_only_logits=answer_only,
            device=loaded.device,
            regularizer=regularizer,
            linear_decay=linear_decay,
        )

    method.before_training(short_train)
    groups = checked_parameter_groups(method, model, train_cfg)
    trainable = [p for group in groups for p in group["params"]]
    assert_only_trainable(model, trainable)
    args = TrainingArguments(
        output_dir=str(run_dir / "trainer"),
        per_device_train_batch_size=train_cfg.batch_size,
        per_device_eval_batch_size=train_cfg.eval_batch_size,
        learning_rate=train_cfg.lr,
        weight_decay=train_cfg.weight_decay,
        num_train_epochs=train_cfg.epochs,
        max_steps=train_cfg.max_steps,
        warmup_steps=warmup_steps(train_cfg, steps_per_epoch),
        lr_scheduler_type=train_cfg.lr_scheduler,
        optim="adamw_torch",
        eval_strategy="epoch",
        save_strategy="no",
        logging_strategy="steps",
        logging_steps=train_cfg.logging_steps,
        report_to=[],
        seed=seed,
        data_seed=seed,
        remove_unused_columns=False,
        prediction_loss_only=True,
        activation_checkpointing=train_cfg.gradient_checkpointing,
        use_cpu=loaded.device.type == "cpu",
        dataloader_num_workers=0,
        disable_tqdm=False,
    )
    best = BestParametersCallback(trainable, train_cfg.patience, method.accepts_checkpoint)
    trainer_ref: list = []
    log_callback = JsonlLogCallback(run_dir / TRAIN_LOG_FILE, method, trainer_ref, tracker)
    trainer = MethodTrainer(
        model=model,
        args=args,
        train_dataset=train_data,
        eval_dataset=dev_data,
        data_collator=collator,
        callbacks=[best, log_callback],
        method=method,
        answer_only_logits=answer_only,
        param_groups=groups,
    )
    trainer_ref.append(trainer)
    method.on_train_begin(total_steps=_total_steps(train_cfg, steps_per_epoch))
    started = time.time()
    output = trainer.train()
    model.eval()
    check_finite_parameters(trainable)
    if best.best_state is None and any("eligible" in h for h in best.history):
        warnings.warn(
            f"method={method.cfg.name}: no evaluation met the method's condition for keeping "
            "parameters (e.g. method.target_open not reached within "
            "method.target_tolerance); the last parameters are kept and evaluated "
            "(results.json training.kept = 'last'): more epochs or a larger tolerance",
            stacklevel=2,
        )
    _remove_if_empty(Path(args.output_dir))
    return {
        "config": asdict(train_cfg),
        "steps": trainer.state.global_step,
        "epochs": trainer.state.epoch,
        "steps_per_epoch": steps_per_epoch,
        "warmup_steps": warmup_steps(train_cfg, steps_per_epoch),
        "best_dev_loss": best.best_loss,
        "best_epoch": best.best_epoch,
        "early_stopped": trainer.state.epoch is not None
        and trainer.state.epoch < train_cfg.epochs
        and train_cfg.max_steps <= 0,
        "dev_history": best.history,
        "kept": "best" if best.best_state is not None else "last",
        "param_groups": describe_groups(groups),
        "train_loss": output.training_loss,
        "answer_only_logits": answer_only,
        "max_length": limit,
        "truncated_examples": truncated,
        "seconds": time.time() - started,
    }


def _remove_if_empty(folder: Path) -> None:
    if folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()


def warmup_steps(train_cfg: TrainConfig, steps_per_epoch: int) -> int:
    """The warm-up in optimiser steps: ``warmup_steps``, or ``ceil(warmup_ratio x`` the planned
    steps ``)`` when a ratio is set (HF's rule for a fractional warm-up)."""
    if train_cfg.warmup_ratio is None:
        return train_cfg.warmup_steps
    planned = train_cfg.warmup_ratio * _total_steps(train_cfg, steps_per_epoch)
    return math.ceil(round(planned, 9))  # 0.1 x 30 is 3.0000000000000004 in floats


def _total_steps(train_cfg: TrainConfig, steps_per_epoch: int) -> int:
    if train_cfg.max_steps > 0:
        return train_cfg.max_steps
    return steps_per_epoch * train_cfg.epochs
