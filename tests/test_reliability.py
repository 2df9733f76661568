"""The fault matrix of docs/reliability.md: every case asserts the exit code (or error), the
one-line message and the files left behind."""

from __future__ import annotations

import json
import math
import os
import re
import subprocess
import sys
import time

import pytest
import torch

import jola.runner
from jola import training
from jola.errors import TrainingDiverged, UserError
from jola.models import CHECKSUM_FILE, verify_checksums, write_checksums
from jola.results import write_json_atomic, write_jsonl
from jola.rundir import RunInProgress
from jola.runner import as_run_config, run, run_directory
from tests.helpers import REPO_ROOT, compose_config, tiny_overrides

TRAIN = ("method=jola", "method.train.epochs=1", "method.train.warmup_steps=0")


def cli(tmp_path, *args, multirun=False, timeout=600):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    command = [sys.executable, "run.py", *(["-m"] if multirun else []), *args]
    return subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, env=env, timeout=timeout
    )


def strict_load(path):
    def refuse(token):
        raise ValueError(f"non-strict JSON token {token}")

    return json.loads(path.read_text(), parse_constant=refuse)


def files_under(root):
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


# --- 1. hyper-parameter sweeps -------------------------------------------------------------


def test_a_learning_rate_sweep_gives_two_runs_in_two_directories_and_a_rerun_skips_both(tmp_path):
    args = [*tiny_overrides(tmp_path, *TRAIN), "n=4", "method.train.lr=1e-3,5e-3"]
    first = cli(tmp_path, *args, multirun=True)
    assert first.returncode == 0, first.stderr[-3000:]
    results = sorted(tmp_path.rglob("results.json"))
    assert len(results) == 2
    variants = sorted(json.loads(p.read_text())["variant"] for p in results)
    assert variants == [  # lr 5e-3 is JoLA's default: no lr in its name
        "max_new_tokens=8,num_beams=1,epochs=1,lr=0.001,warmup_steps=0,test_limit=6",
        "max_new_tokens=8,num_beams=1,epochs=1,warmup_steps=0,test_limit=6",
    ]
    assert "| finished | 2 |" in first.stdout
    again = cli(tmp_path, *args, multirun=True)
    assert again.returncode == 0 and again.stdout.count("skip:") == 2
    assert "| skipped | 2 |" in again.stdout
    assert not list(tmp_path.rglob(".hydra"))  # Hydra writes no provenance folder


# --- 2. a finished result is never lost ----------------------------------------------------


@pytest.mark.parametrize("interrupt", [False, True])
def test_a_failed_or_interrupted_overwrite_leaves_the_finished_run_intact(
    tmp_path, monkeypatch, interrupt
):
    overrides = tiny_overrides(tmp_path)
    run(compose_config(overrides))
    run_dir = run_directory(as_run_config(compose_config(overrides)))
    before = {name: (run_dir / name).read_bytes() for name in files_under(run_dir)}

    def broken(*args, **kwargs):
        raise KeyboardInterrupt if interrupt else RuntimeError("evaluation crashed")

    monkeypatch.setattr(jola.runner, "evaluate", broken)
    with pytest.raises(KeyboardInterrupt if interrupt else RuntimeError):
        run(compose_config([*overrides, "overwrite=true"]))
    for name, content in before.items():
        assert (run_dir / name).read_bytes() == content, name
    failed = strict_load(run_dir / "failed.json")
    assert failed["interrupted"] is interrupt
    assert not [p for p in run_dir.iterdir() if p.name.startswith((".staging", ".previous"))]


def test_a_successful_overwrite_replaces_every_artifact(tmp_path):
    overrides = tiny_overrides(tmp_path, *TRAIN, "n=4")
    first = run(compose_config(overrides))
    second = run(compose_config([*overrides, "overwrite=true"]))
    run_dir = run_directory(as_run_config(compose_config(overrides)))
    assert strict_load(run_dir / "results.json")["timings"] == second["timings"] != first["timings"]
    assert (run_dir / "edits" / "edits.safetensors").exists()
    assert not [p for p in run_dir.iterdir() if p.name.startswith((".staging", ".previous"))]


@pytest.mark.parametrize("content", ["", "{not json", "[1, 2]"])
def test_a_corrupt_results_json_is_named_and_overwrite_replaces_it(tmp_path, content):
    overrides = tiny_overrides(tmp_path)
    run(compose_config(overrides))
    run_dir = run_directory(as_run_config(compose_config(overrides)))
    (run_dir / "results.json").write_text(content)
    with pytest.raises(UserError) as caught:
        run(compose_config(overrides))
    message = str(caught.value)
    assert "\n" not in message and str(run_dir / "results.json") in message
    assert "corrupt" in message and "overwrite=true" in message
    assert (run_dir / "failed.json").exists()
    run(compose_config([*overrides, "overwrite=true"]))
    assert "metrics" in strict_load(run_dir / "results.json")
    assert not (run_dir / "failed.json").exists()


def test_a_corrupt_results_json_in_a_sweep_is_that_members_failure(tmp_path):
    args = [*tiny_overrides(tmp_path), "n=4,5"]
    assert cli(tmp_path, *args, multirun=True).returncode == 0
    (corrupt,) = [p for p in tmp_path.rglob("results.json") if "/n4/" in p.as_posix()]
    corrupt.write_text("")
    result = cli(tmp_path, *args, multirun=True)
    assert result.returncode == 1
    assert "| failed | 1 |" in result.stdout and "| skipped | 1 |" in result.stdout
    assert f"see {corrupt.parent / 'failed.json'}" in result.stderr
    assert (corrupt.parent / "failed.json").exists()


def test_a_second_process_on_the_same_run_directory_is_refused(tmp_path):
    overrides = tiny_overrides(tmp_path)
    run_dir = run_directory(as_run_config(compose_config(overrides)))
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from jola.rundir import run_lock\n"
            "with run_lock(Path(sys.argv[1])):\n    print('held', flush=True); time.sleep(60)",
            str(run_dir),
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunInProgress, match=rf"running in process {holder.pid} on host "):
            run(compose_config(overrides))
    finally:
        holder.kill()
        holder.wait()
    assert not (run_dir / "results.json").exists()
    run(compose_config(overrides))  # the lock died with its process
    assert (run_dir / "results.json").exists()


def test_no_fixed_temporary_names(tmp_path):
    for _ in range(2):
        write_json_atomic(tmp_path / "a.json", {"x": 1})
        write_jsonl(tmp_path / "b.jsonl", [{"x": 1}])
    assert files_under(tmp_path) == ["a.json", "b.jsonl"]


# --- 3. a broken run is never recorded as finished -----------------------------------------


def test_a_nan_training_loss_stops_the_run_with_failed_json_and_nothing_saved(
    tmp_path, monkeypatch
):
    original = training.causal_lm_loss

    def nan_loss(model, inputs, answer_only_logits):
        return original(model, inputs, answer_only_logits) * float("nan")

    monkeypatch.setattr(training, "causal_lm_loss", nan_loss)
    overrides = tiny_overrides(tmp_path, *TRAIN, "n=4")
    with pytest.raises(
        TrainingDiverged, match=r"training diverged: training loss is nan at step 0"
    ):
        run(compose_config(overrides))
    run_dir = run_directory(as_run_config(compose_config(overrides)))
    assert files_under(run_dir) == [".lock", "failed.json"]
    assert "diverged" in strict_load(run_dir / "failed.json")["error"]


def test_a_nan_dev_loss_and_nan_parameters_are_refused():
    callback = training.BestParametersCallback([torch.nn.Parameter(torch.zeros(2))], patience=2)
    state = type("State", (), {"epoch": 1.0, "global_step": 3})()
    with pytest.raises(TrainingDiverged, match="dev loss is nan at step 3"):
        callback.on_evaluate(None, state, None, metrics={"eval_loss": math.nan})
    with pytest.raises(TrainingDiverged, match="1 trained parameter values are NaN/Inf"):
        training.check_finite_parameters([torch.nn.Parameter(torch.tensor([1.0, math.inf]))])


def test_every_json_the_project_writes_is_strict(tmp_path):
    write_json_atomic(tmp_path / "r.json", {"loss": math.nan, "best": [math.inf, 1.0]})
    assert strict_load(tmp_path / "r.json") == {"best": [None, 1.0], "loss": None}
    write_jsonl(tmp_path / "p.jsonl", [{"score": -math.inf}])
    assert json.loads((tmp_path / "p.jsonl").read_text()) == {"score": None}


def test_a_corrupt_cached_model_is_detected_and_named(tmp_path):
    folder = tmp_path / "smollm2_135m"
    folder.mkdir()
    weights = folder / "model.safetensors"
    weights.write_bytes(b"x" * 1000)
    write_checksums(folder)
    verify_checksums(folder)  # unchanged: fine
    weights.write_bytes(b"x" * 500)  # truncated
    with pytest.raises(
        UserError, match=rf"cached model {folder}: model.safetensors does not match"
    ):
        verify_checksums(folder)
    weights.write_bytes(b"y" * 1000)  # overwritten, same size, new mtime
    with pytest.raises(UserError, match=r"rm -rf"):
        verify_checksums(folder)
    weights.write_bytes(b"x" * 1000)  # the same bytes again (new mtime): matches
    verify_checksums(folder)
    weights.unlink()
    with pytest.raises(UserError, match="model.safetensors is missing"):
        verify_checksums(folder)
    assert json.loads((folder / CHECKSUM_FILE).read_text())["model.safetensors"]["size"] == 1000


# --- 4. every bad value refused before anything is loaded ----------------------------------


@pytest.mark.parametrize(
    "args, message",
    [
        (["seed=-1"], r"seed must be in \[0, 4294967295\]"),
        (["seed=4294967296"], r"seed must be in \[0, 4294967295\]"),
        (["eval.max_new_tokens=0"], r"eval.max_new_tokens must be positive, got 0"),
        (["eval.batch_size=0"], r"eval.batch_size must be positive"),
        (["method=jola", "method.train.batch_size=0"], r"method.train.batch_size must be positive"),
        (["method=lora", "method.train.eval_batch_size=-1"], r"eval_batch_size must be positive"),
        (["method=jola", "method.train.lr=0"], r"method.train.lr must be positive"),
        (["method=jola", "method.train.logging_steps=0"], r"logging_steps must be positive"),
        (["method=jola", "method.train.warmup_steps=-1"], r"warmup_steps must be >= 0"),
        (["method=jola", "method.train.warmup_ratio=1.0"], r"warmup_ratio must be in \[0, 1\)"),
        (
            ["method=reft", "method.train.warmup_steps=10"],
            r"warmup_steps=10 and method.train.warmup_ratio=0.1 are both set",
        ),
        (["method=jola", "method.train.lr_scheduler=cosin"], r"unknown method.train.lr_scheduler"),
        (["method=jola", "method.train.max_length=0"], r"max_length must be positive"),
        (["method=bitfit", "method.train.epochs=0"], r"epochs=0.0 means no training"),
        (["task.test_limit=0"], r"task.test_limit must be positive"),
    ],
)
def test_bad_values_are_refused_before_anything_is_loaded(tmp_path, args, message):
    with pytest.raises(UserError, match=message):
        run(compose_config(tiny_overrides(tmp_path, *args)))
    assert not list(tmp_path.rglob("*"))  # not even a run directory


def test_the_cli_refuses_in_one_line_with_exit_code_2(tmp_path):
    result = cli(tmp_path, *tiny_overrides(tmp_path, "method=jola", "method.train.lr=-1"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "error: method.train.lr must be positive, got -1.0"
    ]
    assert not list(tmp_path.rglob("*.json"))


@pytest.mark.parametrize("kind", ["file", "unwritable"])
def test_an_unusable_output_root_is_one_line(tmp_path, kind):
    target = tmp_path / "root"
    if kind == "file":
        target.write_text("not a folder")
    else:
        target.mkdir()
        target.chmod(0o500)
        if os.access(target, os.W_OK):  # root ignores permissions: nothing to test
            pytest.skip("running as a user that can write anywhere")
    result = cli(tmp_path, *tiny_overrides(target))
    assert result.returncode == 2, result.stderr[-2000:]
    assert re.fullmatch(
        r"error: output_root=\S+ is not (a directory|writable.*)", result.stderr.strip()
    )


def test_an_empty_test_split_is_refused(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    row = {"instruction": "Q?\n\nAnswer format: answer1/answer2/answer3", "answer": "answer1"}
    (data / "train.json").write_text(json.dumps([row] * 8))
    (data / "test.json").write_text("[]")
    with pytest.raises(UserError, match=r"test.json has no rows"):
        run(compose_config(tiny_overrides(tmp_path / "out", f"task.data_dir={data}", "n=2")))
    assert not list((tmp_path / "out").rglob("results.json"))


def test_long_prompts_are_truncated_alike_in_training_and_evaluation_and_counted(tmp_path):
    small_context = ("model.tiny.max_position_embeddings=96", *TRAIN, "n=4")
    results = run(compose_config(tiny_overrides(tmp_path, *small_context)))
    assert results["eval"]["truncated_prompts"] == results["data"]["n_test"]  # all > 96 tokens
    assert results["training"]["truncated_examples"] == 8  # 4 train + 4 dev
    assert results["training"]["max_length"] == 96


# --- 5. sweeps report honestly -------------------------------------------------------------


def test_a_sweep_with_a_refused_member_exits_non_zero_and_names_it(tmp_path):
    result = cli(tmp_path, *tiny_overrides(tmp_path), "n=4", "seed=1,-5", multirun=True)
    assert result.returncode == 1
    assert "| finished | 1 |" in result.stdout and "| refused | 1 |" in result.stdout
    assert "[refused]" in result.stdout and "seed must be in" in result.stdout
    assert "see " not in result.stderr  # no failed.json was written for a refused value
    assert len(list(tmp_path.rglob("results.json"))) == 1


def test_run_py_says_interrupted_in_one_line(tmp_path):
    """Ctrl-C (SIGINT) during a run: exit 130, one line, failed.json says so."""
    process = subprocess.Popen(
        [sys.executable, "run.py", *tiny_overrides(tmp_path, *TRAIN, "n=8")],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"},
    )
    deadline = time.time() + 120
    while not list(tmp_path.rglob(".staging-*")) and time.time() < deadline:
        time.sleep(0.2)
    process.send_signal(subprocess.signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130
    assert stderr.strip().splitlines()[-1].startswith("interrupted (see ")
    (failed,) = tmp_path.rglob("failed.json")
    assert strict_load(failed)["interrupted"] is True
    assert not list(tmp_path.rglob("results.json"))


def test_a_moved_outputs_folder_and_a_relative_output_root_still_find_finished_runs(
    tmp_path, monkeypatch, capsys
):
    run(compose_config(tiny_overrides(tmp_path / "first")))
    (tmp_path / "first").rename(tmp_path / "moved")
    capsys.readouterr()
    run(compose_config(tiny_overrides(tmp_path / "moved")))
    assert "skip:" in capsys.readouterr().out
    monkeypatch.chdir(tmp_path)
    run(compose_config([*tiny_overrides(tmp_path), "output_root=moved"]))
    assert "skip:" in capsys.readouterr().out
    assert len(list(tmp_path.rglob("results.json"))) == 1
