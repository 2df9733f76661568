"""Preflight (jola/preflight, scripts/preflight.py) against local stand-ins, offline.

Stand-ins are written here into tmp_path: parquet files in the hub layouts of the real datasets
(``data/<split>-00000-of-00001.parquet``; a README ``configs`` block for a dataset with named
configs; the ``<config>/<split>/0000.parquet`` parquet export of GEM-style datasets) holding the
fixture rows, which are in the hub schemas; the tiny model saved with ``save_pretrained``, as a
folder and in the HF hub cache layout. Missing resources are hub ids that are not cached while
HF_HUB_OFFLINE=1 (tests/conftest.py), a too small GPU is simulated.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jola.preflight import Gpu, PreflightResult, UsageError, expand_sweep, parse_size, preflight
from jola.preflight.hub import HubState
from jola.preflight.report import GIB
from tests.helpers import REPO_ROOT

FIXTURES = REPO_ROOT / "tasks" / "fixtures"
SNAPSHOT = "0123456789abcdef0123456789abcdef01234567"


def fixture_rows(name: str, split: str) -> list[dict]:
    path = FIXTURES / name / f"{split}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_parquet(path: Path, rows: list[dict]) -> None:
    from datasets import Dataset

    path.parent.mkdir(parents=True, exist_ok=True)
    Dataset.from_list(rows).to_parquet(str(path))


def hub_layout(folder: Path, splits: dict[str, list[dict]], prefix: str = "data") -> Path:
    """``<prefix>/<split>-00000-of-00001.parquet``: what most parquet datasets on the hub hold."""
    for split, rows in splits.items():
        write_parquet(folder / prefix / f"{split}-00000-of-00001.parquet", rows)
    return folder


@pytest.fixture(scope="module")
def standins(tmp_path_factory) -> dict[str, Path]:
    return build_standins(tmp_path_factory.mktemp("standins"))


def build_standins(root: Path) -> dict[str, Path]:
    """Every stand-in under ``root``: datasets in hub layouts, the tiny model as a folder."""
    import torch

    from jola.config import ModelConfig
    from jola.models import load_tiny_random_model

    siqa = hub_layout(
        root / "siqa",
        {"train": fixture_rows("siqa", "train"), "validation": fixture_rows("siqa", "test")},
    )
    # TIGER-Lab/MMLU-Pro: data/test-* (12,032 rows, all domains), data/validation-* (CoT shots)
    mmlu_rows = fixture_rows("mmlu_pro", "train") + fixture_rows("mmlu_pro", "test")
    mmlu = hub_layout(root / "mmlu_pro", {"test": mmlu_rows, "validation": mmlu_rows[:5]})
    # allenai/ai2_arc: one folder per config, declared in the README's configs block
    arc = hub_layout(
        root / "ai2_arc",
        {"train": fixture_rows("arc_c", "train"), "test": fixture_rows("arc_c", "test")},
        prefix="ARC-Challenge",
    )
    (arc / "README.md").write_text(
        "---\nconfigs:\n- config_name: ARC-Challenge\n  data_files:\n"
        "  - split: train\n    path: ARC-Challenge/train-*\n"
        "  - split: test\n    path: ARC-Challenge/test-*\n---\n"
    )
    # EdinburghNLP/xsum's refs/convert/parquet export: <config>/<split>/0000.parquet, columns
    # document, summary, id (the GEM fixture rows mapped onto them)
    xsum = root / "xsum"
    for split in ("train", "validation", "test"):
        rows = [
            {"document": r["document"], "summary": r["target"], "id": r["xsum_id"]}
            for r in fixture_rows("xsum", "test" if split == "validation" else split)
        ]
        write_parquet(xsum / "default" / split / "0000.parquet", rows)
    wrong = hub_layout(
        root / "wrong_columns",
        {
            split: [{"foo": f"x{i}", "bar": i} for i in range(8)]
            for split in ("train", "validation")
        },
    )
    no_validation = hub_layout(root / "no_validation", {"train": fixture_rows("siqa", "train")})
    model, tokenizer, _ = load_tiny_random_model(
        ModelConfig(name="tiny", source="tiny_random"), torch.float32
    )
    tiny = root / "tiny_model"
    model.save_pretrained(tiny)
    tokenizer.save_pretrained(tiny)
    # an 8B-shaped config without weights: its size is known, it cannot load
    shape = root / "llama8b_config_only"
    shape.mkdir()
    (shape / "config.json").write_text(
        json.dumps(
            {
                "model_type": "llama",
                "architectures": ["LlamaForCausalLM"],
                "vocab_size": 128256,
                "hidden_size": 4096,
                "intermediate_size": 14336,
                "num_hidden_layers": 32,
                "num_attention_heads": 32,
                "num_key_value_heads": 8,
                "tie_word_embeddings": False,
            }
        )
    )
    return {
        "siqa": siqa,
        "mmlu": mmlu,
        "arc": arc,
        "xsum": xsum,
        "wrong": wrong,
        "no_validation": no_validation,
        "tiny": tiny,
        "shape8b": shape,
    }


def base(standins, tmp_path, *extra: str) -> list[str]:
    """A small sweep on the stand-ins: the saved tiny model as a hub-source folder, SIQA."""
    return [
        "model=tiny_random",
        "model.source=hub",
        f"model.path={standins['tiny']}",
        "model.name=tiny_folder",
        "task=siqa",
        "task.source=hub",
        f"task.hub_id={standins['siqa']}",
        "n=2",
        f"output_root={tmp_path / 'outputs'}",
        *extra,
    ]


def check(result: PreflightResult, kind: str, name_part: str = ""):
    matches = [c for c in result.checks if c.kind == kind and name_part in c.name]
    assert matches, f"no {kind} check for {name_part!r}: {result.render()}"
    return matches[0]


def only_failure(result: PreflightResult, kind: str):
    failed = result.problems
    assert [c.kind for c in failed] == [kind], result.render()
    assert "\n" not in failed[0].detail
    return failed[0]


def test_parse_size():
    assert parse_size("24GiB") == 24 * GIB
    assert parse_size("24G") == 24 * GIB
    assert parse_size("80GB") == 80 * 10**9
    assert parse_size("512 MiB") == 512 * 1024**2
    assert parse_size("1000") == 1000
    with pytest.raises(ValueError):
        parse_size("lots")


def test_sweep_expands_like_the_basic_sweeper(tmp_path):
    sweep = expand_sweep(
        ["-m", "experiment=ablation", "model=tiny_random", "data=offline", "seed=7", "n=8,16"]
    )
    # the preset's method list x the command line's n; seed=7 replaces the preset's 42,43,44
    assert len(sweep.runs) == 5 * 2
    assert sweep.grid == {"method": 5, "n": 2}
    assert {r.seed for r in sweep.runs} == {7}
    assert {r.method.name for r in sweep.runs} == {
        "jola",
        "jola_add_only",
        "jola_mult_only",
        "jola_no_gates",
        "jola_paper_penalty",
    }
    assert {r.n for r in sweep.runs} == {8, 16}
    assert {(r.data, r.task.source) for r in sweep.runs} == {("offline", "packaged")}
    with pytest.raises(UsageError, match="do not compose"):
        expand_sweep(["task=no_such_task"])


def test_passes_on_standins(standins, tmp_path):
    result = preflight(base(standins, tmp_path, "method=zero_shot,jola", "seed=1,2"), gpus=[])
    assert result.ok, result.render()
    assert check(result, "runs").name == "4 run(s)"
    assert "107,200 parameters" in check(result, "model").detail
    dataset = check(result, "dataset", "siqa").detail
    assert "test 6 ('validation'), train 12" in dataset and "n <= 6" in dataset
    assert "runs on the CPU" in check(result, "gpu").detail
    assert check(result, "time").detail.startswith("unknown")
    assert check(result, "hub").name == "unused"  # every resource local: the hub is not probed
    with_gpu = preflight(base(standins, tmp_path), gpus=[Gpu("sim", 24 * GIB)])
    assert with_gpu.ok and "24.0 GiB" in check(with_gpu, "gpu").detail


def test_other_hub_layouts_pass(standins, tmp_path):
    mmlu = preflight(
        base(standins, tmp_path)[:4]
        + ["task=mmlu_pro_biology", "task.source=hub", f"task.hub_id={standins['mmlu']}"]
        + ["task.test_size=4", "n=4"],
        gpus=[],
    )
    assert mmlu.ok, mmlu.render()
    detail = check(mmlu, "dataset").detail
    assert (
        "12 labelled rows in 'test': fixed test part 4" in detail and "category biology" in detail
    )
    arc = preflight(
        base(standins, tmp_path)[:4]
        + ["task=arc_c", "task.source=hub", f"task.hub_id={standins['arc']}", "n=4"],
        gpus=[],
    )
    assert arc.ok, arc.render()
    assert "test 4 ('test'), train 8" in check(arc, "dataset").detail
    xsum = preflight(
        base(standins, tmp_path)[:4]
        + ["task=xsum", "task.source=hub", f"task.hub_id={standins['xsum']}", "n=2"]
        + ["eval.bertscore_model=packaged"],
        gpus=[],
    )
    assert xsum.ok, xsum.render()
    assert "test 4 ('test'), train 8" in check(xsum, "dataset").detail  # validation not merged
    assert check(xsum, "bertscore encoder").status == "ok"


def test_missing_dataset_is_one_line_and_fast(standins, tmp_path):
    started = time.time()
    result = preflight(base(standins, tmp_path, "task.hub_id=nobody/not-cached-siqa"), gpus=[])
    assert time.time() - started < 30
    failure = only_failure(result, "dataset")
    assert failure.status == "MISSING"
    assert "nobody/not-cached-siqa" in failure.detail and "HF_HUB_OFFLINE=1" in failure.detail
    assert "--download" in failure.detail
    assert any("--download" in note for note in result.footnotes)


def test_wrong_column_is_reported(standins, tmp_path):
    result = preflight(base(standins, tmp_path, f"task.hub_id={standins['wrong']}"), gpus=[])
    failure = only_failure(result, "dataset")
    assert failure.status == "PROBLEM"
    assert "row 0 does not fit the loader" in failure.detail
    assert "columns: foo, bar" in failure.detail


def test_missing_split_and_too_large_n(standins, tmp_path):
    no_split = preflight(
        base(standins, tmp_path, f"task.hub_id={standins['no_validation']}"), gpus=[]
    )
    assert "no split 'validation'; splits: train" in only_failure(no_split, "dataset").detail
    too_big = preflight(base(standins, tmp_path, "n=2,50"), gpus=[])
    detail = only_failure(too_big, "dataset").detail
    assert "n=50 needs 100 (n train + n dev) rows but the pool has 12" in detail


def test_missing_model(standins, tmp_path):
    not_cached = preflight(
        base(standins, tmp_path, "model.path=nobody/not-a-cached-model"), gpus=[]
    )
    failure = only_failure(not_cached, "model")
    assert failure.status == "MISSING"
    assert "nobody/not-a-cached-model is not in the HF cache (HF_HUB_OFFLINE=1)" in failure.detail
    absent = preflight(base(standins, tmp_path, f"model.path={tmp_path / 'absent'}"), gpus=[])
    assert "does not exist" in only_failure(absent, "model").detail
    shape = preflight(base(standins, tmp_path, f"model.path={standins['shape8b']}"), gpus=[])
    assert "has no weights" in only_failure(shape, "model").detail


def hub_cache_copy(cache: Path, repo_id: str, folder: Path) -> Path:
    """``models--<owner>--<name>/{refs/main,snapshots/<sha>/}`` as huggingface_hub writes it."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    shutil.copytree(folder, repo / "snapshots" / SNAPSHOT)
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(SNAPSHOT)
    return repo


def test_model_in_the_hub_cache_layout(standins, tmp_path, monkeypatch):
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    hub_cache_copy(cache, "standin/tiny-llama", standins["tiny"])
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    result = preflight(base(standins, tmp_path, "model.path=standin/tiny-llama"), gpus=[])
    assert result.ok, result.render()
    assert f"in the HF cache ({cache}" in check(result, "model").detail


def test_too_little_gpu_memory(standins, tmp_path):
    small = preflight(base(standins, tmp_path), gpus=[Gpu("sim", 1 * GIB)])
    failure = only_failure(small, "gpu")
    assert "needs ~2.0 GiB but the largest assumed GPU (sim) has 1.0 GiB" in failure.detail
    # an 8B-shaped bf16 model: 8.03B x 2 bytes x 1.2 + 2 GiB = 19.9 GiB
    shape = base(standins, tmp_path, f"model.path={standins['shape8b']}", "model.dtype=bfloat16")
    on_16 = preflight(shape, gpus=[Gpu("sim", 16 * GIB)])
    assert (
        "needs ~19.9 GiB but the largest assumed GPU (sim) has 16.0 GiB"
        in check(on_16, "gpu").detail
    )
    assert check(on_16, "gpu").status == "PROBLEM"
    assert check(preflight(shape, gpus=[Gpu("sim", 24 * GIB)]), "gpu").status == "ok"
    no_gpu = preflight(shape, gpus=[])
    assert check(no_gpu, "gpu").status == "PROBLEM"
    assert "no CUDA GPU visible" in check(no_gpu, "gpu").detail


def test_unreachable_hub_is_reported_not_waited_on(standins, tmp_path, monkeypatch):
    from huggingface_hub import constants

    from jola.preflight.hub import hub_state

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    started = time.time()
    assert hub_state().mode == "unreachable"
    result = preflight(base(standins, tmp_path, "task.hub_id=nobody/not-cached-siqa"), gpus=[])
    assert time.time() - started < 30
    assert check(result, "hub").name == "unreachable"
    failure = only_failure(result, "dataset")
    assert "the hub is unreachable" in failure.detail
    assert os.environ.get("HF_HUB_OFFLINE") is None  # the forced offline mode was undone


def test_hub_probe_online_against_a_local_server(monkeypatch):
    import http.server
    import threading

    from huggingface_hub import constants

    from jola.preflight.hub import hub_state

    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.SimpleHTTPRequestHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{server.server_port}")
        state = hub_state()
    finally:
        server.shutdown()
        server.server_close()
    assert state.online and "reachable" in state.detail


def test_download_needs_the_hub(standins, tmp_path):
    result = preflight(base(standins, tmp_path), gpus=[], download=True)
    failure = only_failure(result, "download")
    assert "unset HF_HUB_OFFLINE" in failure.detail and result.offline_command is None


def test_download_fetches_then_checks_offline(standins, tmp_path, monkeypatch):
    """--download with a simulated hub: the model is fetched into the cache, the sweep is
    checked again offline, and the offline command is printed."""
    from huggingface_hub import constants

    import jola.preflight as preflight_module
    import jola.preflight.models as models_module

    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(
        models_module, "remote_config", lambda repo, rev: standins["tiny"] / "config.json"
    )
    monkeypatch.setattr(models_module, "remote_size", lambda repo, rev, kind="model": 4 * 1024**2)
    fetched = []

    def fake_download(repo_id, revision):
        fetched.append(repo_id)
        return hub_cache_copy(cache, repo_id, standins["tiny"])

    monkeypatch.setattr(preflight_module, "download_snapshot", fake_download)
    overrides = base(standins, tmp_path, "model.path=standin/tiny-llama", "seed=1,2")
    online = HubState("online", "simulated")
    before = preflight(overrides, gpus=[], hub=online)
    assert before.ok, before.render()
    assert "0.00 GiB to download" in check(before, "model").detail
    result = preflight(overrides, gpus=[], hub=online, download=True, say=lambda _: None)
    assert fetched == ["standin/tiny-llama"]
    assert result.ok, result.render()
    assert check(result, "hub").name == "offline"  # the second pass ran offline
    assert "in the HF cache" in check(result, "model").detail
    assert result.offline_command.startswith("HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 ")
    assert "python run.py -m model=tiny_random" in result.offline_command
    assert "run the sweep offline:" in result.render()


def run_script(*args: str):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "scripts/preflight.py", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_script_passes_on_standins(standins, tmp_path):
    ok = run_script(
        *base(standins, tmp_path, "method=zero_shot,jola"), "--assume-gpu-memory", "24GiB"
    )
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.startswith("| check | what | status | detail |")
    assert "| gpu | tiny_folder float32 | ok |" in ok.stdout
    assert ok.stdout.rstrip().endswith("preflight: OK")


def load_script():
    import importlib.util

    path = REPO_ROOT / "scripts" / "preflight.py"
    spec = importlib.util.spec_from_file_location("preflight_script", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_script_exit_codes(standins, tmp_path, capsys):
    script = load_script()
    missing = base(standins, tmp_path, "task.hub_id=nobody/not-cached-siqa")
    assert script.main(missing) == 1
    out = capsys.readouterr().out
    assert "1 problem:\n- dataset siqa: nobody/not-cached-siqa" in out
    assert out.rstrip().endswith("preflight: 1 problem(s)")
    assert script.main(["-m", "task=no_such_task"]) == 2
    assert capsys.readouterr().err.startswith("error: the overrides do not compose")
    assert script.main(["model=tiny_random", "--assume-gpu-memory", "lots"]) == 2
    assert "not a size" in capsys.readouterr().err
