"""Every value a user can get wrong, refused before anything is loaded.

:func:`validate` raises a one-line :class:`~jola.errors.UserError` for the first bad value of a
resolved RunConfig; the runner calls it before it touches the run directory, the data or the
model, so a refused run leaves nothing behind. A method's own values are checked by its config
(:meth:`~jola.config.MethodConfig.__post_init__` when the config is built,
:meth:`~jola.config.MethodConfig.validate` here); no method is built to check them.
"""

from __future__ import annotations

from jola.errors import UserError, unknown_choice

SEED_RANGE = (0, 2**32 - 1)  # numpy's seed range (torch and random accept it too)


def _positive(name: str, value) -> None:
    if value is None or value <= 0:
        raise UserError(f"{name} must be positive, got {value}")


def lr_schedulers() -> list[str]:
    """The scheduler names HF Trainer accepts."""
    from transformers import SchedulerType

    return [item.value for item in SchedulerType]


def validate_train(train, name: str = "method.train") -> None:
    """The shared training settings of a method that trains."""
    for key in ("batch_size", "eval_batch_size", "lr", "logging_steps", "max_length"):
        _positive(f"{name}.{key}", getattr(train, key))
    if train.warmup_steps < 0:
        raise UserError(f"{name}.warmup_steps must be >= 0, got {train.warmup_steps}")
    if train.warmup_ratio is not None:
        if not 0 <= train.warmup_ratio < 1:
            raise UserError(f"{name}.warmup_ratio must be in [0, 1), got {train.warmup_ratio}")
        if train.warmup_steps:
            raise UserError(
                f"{name}.warmup_steps={train.warmup_steps} and {name}.warmup_ratio="
                f"{train.warmup_ratio} are both set; set one ({name}.warmup_ratio=null for "
                "steps, or warmup_steps=0 for the ratio)"
            )
    if train.weight_decay < 0:
        raise UserError(f"{name}.weight_decay must be >= 0, got {train.weight_decay}")
    if train.patience < 0:
        raise UserError(f"{name}.patience must be >= 0 (0: no early stopping)")
    if train.max_steps <= 0 and train.epochs <= 0:
        raise UserError(
            f"{name}.epochs={train.epochs} means no training; set epochs > 0 (or max_steps > 0), "
            "or use method=zero_shot"
        )
    if train.lr_scheduler not in lr_schedulers():
        raise unknown_choice(f"{name}.lr_scheduler", train.lr_scheduler, lr_schedulers())


def validate_eval(eval_cfg) -> None:
    """The evaluation settings (mode, batch sizes, beams, new-token budget)."""
    from jola.evaluation import EVAL_MODES

    EVAL_MODES.get(eval_cfg.mode)  # an unknown mode lists the choices
    for key in ("batch_size", "num_beams", "bertscore_batch_size"):
        _positive(f"eval.{key}", getattr(eval_cfg, key))
    if eval_cfg.max_new_tokens is not None:
        _positive("eval.max_new_tokens", eval_cfg.max_new_tokens)


def validate(cfg) -> None:
    """Checks that need no data and no model (see the module docstring)."""
    import tasks
    from jola.evaluation import check_eval_mode
    from jola.methods import method_entry
    from jola.prompts import PromptFormat
    from jola.rundir import check_output_root

    if cfg.n <= 0:
        raise UserError(f"n must be a positive number of training examples, got n={cfg.n}")
    low, high = SEED_RANGE
    if not low <= cfg.seed <= high:
        raise UserError(f"seed must be in [{low}, {high}] (numpy's range), got {cfg.seed}")
    if cfg.task.test_limit is not None:
        _positive("task.test_limit", cfg.task.test_limit)
    _positive("task.test_size", cfg.task.test_size)
    validate_eval(cfg.eval)
    PromptFormat.from_config(cfg.prompt)
    check_eval_mode(cfg.eval.mode, tasks.get_task(cfg.task.name, cfg.task))
    entry = method_entry(cfg.method)
    cfg.method.validate(seed=cfg.seed)
    if entry.trains:
        validate_train(cfg.method.train)
    check_output_root(cfg.output_root)
