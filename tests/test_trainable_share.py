"""The trainable-share table (jola/bench/share.py) against hand counts on the tiny Llama."""

from __future__ import annotations

from jola.bench.share import PUBLISHED_PERCENT, main, method_share, share_table
from jola.config import ModelConfig

META = ModelConfig(name="tiny_random", source="tiny_random", device="meta")
CPU = ModelConfig(name="tiny_random", source="tiny_random", device="cpu")

# the tiny Llama (jola.config.TinyModelConfig, the byte-level tokenizer's 259 tokens)
LAYERS, HEADS, KV_HEADS, HIDDEN, INTER, VOCAB = 2, 4, 2, 64, 128, 259
HEAD_DIM = HIDDEN // HEADS
KV = KV_HEADS * HEAD_DIM
PER_LAYER = (
    HIDDEN * HIDDEN * 2  # q, o
    + HIDDEN * KV * 2  # k, v
    + HIDDEN * INTER * 3  # gate, up, down
    + HIDDEN * 2  # the two RMSNorms
)
BASE = 2 * VOCAB * HIDDEN + LAYERS * PER_LAYER + HIDDEN  # embeddings, lm_head, final norm


def test_base_count_is_the_tiny_models():
    base, _ = share_table(META)
    assert base == BASE == 107_200


def test_jola_share_is_two_vectors_and_two_gates_per_head():
    row = method_share("jola", META)
    expected = 2 * LAYERS * HEADS * HEAD_DIM + 2 * LAYERS * HEADS  # m, a; log_alpha x 2
    assert row.trainable == expected == 272
    assert row.percent == 100.0 * expected / BASE
    assert row.edited is None and row.error is None


def test_lora_share_is_rank_times_in_plus_out_of_each_target():
    row = method_share("lora", META)
    r = 32  # q, k, v, up, down (conf/method/lora.yaml)
    per_layer = r * ((HIDDEN + HIDDEN) + 2 * (HIDDEN + KV) + 2 * (HIDDEN + INTER))
    assert row.trainable == LAYERS * per_layer == 45_056
    assert row.percent == 100.0 * LAYERS * per_layer / BASE
    assert row.published_percent == PUBLISHED_PERCENT["lora"] == 0.826


def test_meta_device_counts_what_a_cpu_model_counts():
    for name in ("jola", "lora", "bitfit", "lofit"):
        assert method_share(name, META) == method_share(name, CPU), name


def test_lofit_edits_k_heads_after_selecting_on_all(capsys):
    row = method_share("lofit", META)
    assert row.trainable == LAYERS * HEADS * HEAD_DIM  # step 1: A on every head
    assert row.edited == 1 * HEAD_DIM  # step 2: v on max(1, round(8 / 32)) heads
    assert main(["--model", "tiny_random"]) == 0
    out = capsys.readouterr().out
    assert "| lofit | 128 |" in out and "0.0035%" in out and "Base model: 107,200" in out
