"""What a benchmark run reports: the machine it ran on and its Markdown tables.

:func:`markdown` renders the sections present in a results dictionary in a fixed order
(:data:`SECTIONS`: results key -> renderer), so a run that skipped a part simply has no table
for it.
"""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
from collections.abc import Callable

import torch


def machine_info(device: torch.device) -> dict:
    """Date, Python / torch / transformers / peft versions, threads, CPU and GPU model, load."""
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


def render_train(results: dict, train: dict) -> list[str]:
    """The training-step table and the comparisons table."""
    b = train["batch"]
    has_cpu = any("cpu" in e for e in train["variants"].values())
    cpu_head = " CPU-time ms ± IQR | × floor (CPU time) |" if has_cpu else ""
    lines = [
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
    return lines


def render_loop_equivalence(results: dict, eq: dict) -> list[str]:
    """One sentence: how far the per-head loop is from ours."""
    return [
        f"Per-head loop vs ours, same parameters: max |Δlogit| = {eq['max_abs_logit_diff']:.2e} "
        f"(edits move logits by up to {eq['edit_effect_on_logits']:.2e}), max |Δgrad| = "
        f"{eq['max_abs_grad_diff']:.2e} (max |grad| {eq['max_abs_grad']:.2e})."
    ]


def render_generation(results: dict, gen: dict) -> list[str]:
    """Batched vs batch-size-1 generation, one row per decoding."""
    lines = [
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
    return lines


def render_generation_profile(results: dict, prof: dict) -> list[str]:
    """One sentence: the top operators of a batched greedy generate."""
    ops = ", ".join(
        f"{o['op']} {o['share'] * 100:.0f} % ({o['calls']} calls)" for o in prof["top_ops"][:4]
    )
    return [
        f"Profile of one batched greedy generate over {prof['prompts']} prompts "
        f"({prof['self_cpu_s']:.2f} s CPU): {ops}."
    ]


def render_loglik(results: dict, ll: dict) -> list[str]:
    """Batched vs batch-size-1 log-likelihood scoring."""
    bt, st = ll["batched"], ll["bs1"]
    return [
        f"### Log-likelihood scoring ({ll['examples']} {ll.get('task', 'siqa')} test items x "
        f"{ll['candidates_per_example']} candidates)",
        "",
        "| batched ex/s | batch-1 ex/s | speed-up (medians / paired) | CPU-time speed-up | differing predictions | max abs score diff |",
        "|---|---|---|---|---|---|",
        f"| {bt['examples_per_s']:.2f} ({bt['batch_size']} sequences per forward) | "
        f"{st['examples_per_s']:.2f} | "
        f"{ll['speedup']:.2f} / {ll['paired_speedup']:.2f} | {_fmt(ll.get('cpu_speedup'))} | "
        f"{ll['differing_predictions']}/{ll['examples']} | {ll['max_abs_score_diff']:.2e} |",
    ]


def render_prune_closed(results: dict, pr: dict) -> list[str]:
    """Evaluation with and without eval.prune_closed, one row per mode."""
    lines = [
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
    return lines


def render_memory(results: dict, mem: dict) -> list[str]:
    """Peak memory per variant (CUDA columns when measured on a GPU)."""
    cuda = any("cuda_peak_allocated_mib" in m for m in mem.values())
    head = "| variant | peak RSS during steps MiB | RSS after setup MiB | step increase MiB |"
    head += " CUDA peak MiB | CUDA step increase MiB |" if cuda else ""
    lines = [
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
    return lines


# results key -> renderer, in the order the sections are printed
SECTIONS: tuple[tuple[str, Callable[[dict, dict], list[str]]], ...] = (
    ("train", render_train),
    ("loop_equivalence", render_loop_equivalence),
    ("generation", render_generation),
    ("generation_profile", render_generation_profile),
    ("loglik", render_loglik),
    ("prune_closed", render_prune_closed),
    ("memory", render_memory),
)


def markdown(results: dict) -> str:
    """The Markdown tables of one run: each present section, followed by a blank line."""
    lines: list[str] = []
    for key, render in SECTIONS:
        section = results.get(key)
        if section:
            lines += [*render(results, section), ""]
    return "\n".join(lines)
