"""Every number the JoLA paper publishes that `make tables` prints beside ours (data only).

Source: Lai, Fraser and Titov, "Joint Localization and Activation Editing for Low-Resource
Fine-Tuning" (ICML 2025; arXiv:2502.01179), as the authors present them in their ICML 2025
slides and poster, transcribed into issue 15 of this project. All numbers are on the printed
0-100 scale (ACC in %, BLEU / ROUGE-L / BERTScore 0-100).

- :data:`PUBLISHED_MAIN`: Table 1 at n=200 on :data:`PUBLISHED_MODEL`, the suite averages in
  the order of :data:`MAIN_ORDER` (reasoning ACC, understanding ACC, generation BLEU, ROUGE-L,
  BERTScore); the rows in the paper's order.
- :data:`PUBLISHED_ABLATION_SITES`: ablation 1 (where the gated edits go, with or without
  gates) on :data:`PUBLISHED_MODEL`; :data:`PUBLISHED_ABLATION_SHARED_GATE`: ablation 2 (one
  gate shared by both edits of a head vs two), per model. Both in the task order of
  :data:`ABLATION_TASKS`. Keys are the names of this project's methods that run each
  configuration (``jola`` is "attention heads, two gates", the paper's JoLA).
- :data:`PUBLISHED_DATASIZE`: accuracy vs training examples n (JoLA and LoRA), read off the
  paper's data-size figure by eye, so each value is good to about
  :data:`DATASIZE_READ_ERROR` points; :data:`PUBLISHED_ZERO_SHOT_DATASIZE` is the zero-shot
  accuracy the figure gives for each task (zero-shot does not depend on n).

None of these is a run of this project: the tables print them in rows marked ``published``,
below ours, and no average, seed count or summary.csv ever includes them.
"""

from __future__ import annotations

PUBLISHED_MODEL = "Llama-3.1-8B-Instruct"
QWEN_MODEL = "Qwen2.5-7B"  # the paper's second model, as the slides name it

# Table 1 (n=200): reasoning ACC, understanding ACC, generation BLEU / ROUGE-L / BERTScore.
MAIN_ORDER = (
    "reasoning_acc",
    "understanding_acc",
    "generation_bleu",
    "generation_rougeL",
    "generation_bertscore",
)
PUBLISHED_MAIN: dict[str, tuple[float, float, float, float, float]] = {
    "zero_shot": (53.70, 40.00, 12.56, 36.70, 77.23),
    "lora": (66.58, 42.07, 13.27, 36.97, 77.74),
    "bitfit": (63.05, 35.02, 9.25, 28.81, 74.83),
    "red": (46.19, 37.33, 11.24, 32.40, 76.24),
    "repe": (63.61, 35.54, 8.49, 27.61, 74.30),
    "reft": (65.95, 40.89, 12.60, 36.89, 77.21),
    "lofit": (56.19, 27.76, 11.88, 32.09, 76.71),
    "jola": (70.55, 47.00, 17.07, 40.65, 80.54),
}

# Ablations: (task, metric) per column, in the paper's order: SIQA, WinoGrande, MMLU-Pro law,
# MMLU-Pro physics (ACC), E2E and WebNLG (BLEU).
ABLATION_TASKS: tuple[tuple[str, str], ...] = (
    ("siqa", "acc"),
    ("winogrande", "acc"),
    ("mmlu_pro_law", "acc"),
    ("mmlu_pro_physics", "acc"),
    ("e2e_nlg", "bleu"),
    ("web_nlg", "bleu"),
)
Six = tuple[float, float, float, float, float, float]
# Ablation 1, on PUBLISHED_MODEL: edits on the MLP output, on attention heads, on both; each
# without and with gates.
PUBLISHED_ABLATION_SITES: dict[str, Six] = {
    "jola_mlp_no_gates": (50.10, 51.62, 34.00, 20.00, 10.31, 14.45),
    "jola_mlp": (52.46, 52.43, 36.00, 23.00, 11.23, 16.25),
    "jola_no_gates": (55.94, 55.33, 36.00, 7.00, 14.77, 18.12),
    "jola": (66.22, 58.33, 40.00, 46.00, 15.54, 24.39),
    "jola_both_no_gates": (52.17, 48.74, 23.00, 13.00, 8.23, 12.36),
    "jola_both": (53.28, 52.07, 27.00, 16.00, 10.42, 14.83),
}
# Ablation 2: one gate shared by a head's two edits (jola_shared_gate) vs two gates (jola).
PUBLISHED_ABLATION_SHARED_GATE: dict[str, dict[str, Six]] = {
    QWEN_MODEL: {
        "jola_shared_gate": (73.87, 67.46, 39.00, 53.00, 26.52, 33.11),
        "jola": (75.79, 69.69, 42.00, 55.00, 28.32, 35.32),
    },
    PUBLISHED_MODEL: {
        "jola_shared_gate": (65.44, 57.72, 38.00, 43.00, 14.92, 23.01),
        "jola": (66.22, 58.33, 40.00, 46.00, 15.54, 24.39),
    },
}

# Data size on PUBLISHED_MODEL: ACC per n, read off the paper's figure (about +-0.5 points).
DATASIZE_READ_ERROR = 0.5
_NS = (100, 200, 300, 400, 500, 600, 800, 1000)
PUBLISHED_DATASIZE: dict[str, dict[str, dict[int, float]]] = {
    "siqa": {
        "jola": dict(zip(_NS, (62.3, 66.2, 69.9, 70.9, 71.5, 70.6, 73.1, 74.8))),
        "lora": dict(zip(_NS, (60.1, 63.4, 65.5, 66.5, 68.1, 66.7, 68.4, 70.0))),
    },
    "winogrande": {
        "jola": dict(zip(_NS, (53.7, 58.3, 59.6, 68.6, 70.5, 70.6, 73.4, 74.3))),
        "lora": dict(zip(_NS, (52.4, 54.0, 56.9, 63.8, 65.8, 64.7, 68.3, 71.2))),
    },
}
PUBLISHED_ZERO_SHOT_DATASIZE: dict[str, float] = {"siqa": 42.78, "winogrande": 43.88}
