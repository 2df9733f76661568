"""The public library API (``import jola``): the README's snippet runs as written on a tiny
model, and each name does what its docstring says."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
import torch

import jola
from jola.config import ModelConfig
from jola.edits import attached_handle
from jola.errors import UserError
from jola.models import load_tiny_random_model
from tests.helpers import REPO_ROOT

PAIRS = [("Is water wet? Answer yes or no.", "yes"), ("Is fire cold? Answer yes or no.", "no")]


def readme_snippet() -> str:
    text = (REPO_ROOT / "README.md").read_text()
    block = re.search(r"<!-- library-snippet -->\n```python\n(.*?)```", text, re.S)
    assert block, "README has no library snippet"
    return block.group(1)


@pytest.fixture
def tiny_folder(tmp_path):
    """A tiny random Llama and its byte-level tokenizer saved as a HF folder."""
    model, tokenizer, _ = load_tiny_random_model(
        ModelConfig(name="tiny", source="tiny_random"), torch.float32
    )
    folder = tmp_path / "tiny"
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def tiny_model(folder):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder).eval()


def logits(model, text="Is water wet?"):
    ids = torch.tensor([[1, *text.encode()[:20]]])
    with torch.no_grad():
        return model(input_ids=ids).logits


def test_readme_snippet_runs_as_written(tiny_folder, tmp_path, monkeypatch):
    code = readme_snippet()
    assert len([line for line in code.splitlines() if line.strip()]) <= 10
    monkeypatch.chdir(tmp_path)
    namespace = {"MODEL": str(tiny_folder)}
    exec(compile(code, "README.md", "exec"), namespace)
    record = namespace["record"]
    assert record["steps"] > 0 and record["best_dev_loss"] is not None
    assert (tmp_path / "my_edits" / "edits.safetensors").exists()
    model, fresh = namespace["model"], namespace["fresh"]
    assert fresh.edits is not None and attached_handle(model) is not None
    model.eval()
    # the saved edits on a fresh copy reproduce the trained model's outputs
    reloaded = tiny_model(tiny_folder)
    jola.load(reloaded, tmp_path / "my_edits")
    torch.testing.assert_close(logits(reloaded), logits(model))


def test_attach_freezes_the_base_and_trains_only_edits(tiny_folder):
    model = tiny_model(tiny_folder)
    handle = jola.attach(model, gated=True)
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert trainable and all(any(p is q for q in handle.edits.parameters()) for p in trainable)
    with pytest.raises(UserError, match="already has JoLA edits"):
        jola.attach(model)
    assert jola.gate_penalty(model).item() > 0  # the expected number of open gates, scaled


def test_train_changes_the_edits_and_merge_keeps_the_outputs(tiny_folder, tmp_path):
    model = tiny_model(tiny_folder)
    jola.attach(model)
    before = [p.detach().clone() for p in attached_handle(model).edits.parameters()]
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_folder)
    record = jola.train(
        model, tokenizer, PAIRS * 4, dev=PAIRS, epochs=1, batch_size=4, output_dir=tmp_path / "log"
    )
    after = list(attached_handle(model).edits.parameters())
    assert any(not torch.equal(a, b) for a, b in zip(after, before))
    assert record["steps"] == 2 and (tmp_path / "log" / "train_log.jsonl").exists()
    model.eval()
    hooked = logits(model)
    jola.merge(model)
    assert attached_handle(model) is None
    torch.testing.assert_close(logits(model), hooked, atol=1e-5, rtol=0)


def test_train_refuses_bad_input(tiny_folder):
    model = tiny_model(tiny_folder)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_folder)
    with pytest.raises(UserError, match="at least 2 pairs"):
        jola.train(model, tokenizer, PAIRS[:1])
    with pytest.raises(UserError, match="not an \\(instruction, answer\\) pair"):
        jola.train(model, tokenizer, [("only one",), *PAIRS])
    with pytest.raises(UserError, match="TrainConfig has"):
        jola.train(model, tokenizer, PAIRS, epoch=1)
    with pytest.raises(UserError, match="no JoLA edits attached"):
        jola.save(tiny_model(tiny_folder), "x")


def test_run_takes_overrides(tmp_path):
    results = jola.run(
        [
            "method=zero_shot",
            "model=tiny_random",
            "n=4",
            "task.test_limit=4",
            "eval.num_beams=1",
            "eval.max_new_tokens=4",
            "eval.progress=false",
            f"output_root={tmp_path}",
        ]
    )
    assert results["method"] == "zero_shot" and list(tmp_path.rglob("results.json"))
    with pytest.raises(UserError, match="not one string"):
        jola.run("method=zero_shot")


def test_import_jola_stays_light_and_every_public_name_has_a_docstring():
    code = "import sys, jola; print('transformers' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
    for name in jola.__all__:
        assert getattr(jola, name).__doc__, name
