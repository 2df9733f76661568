"""End-to-end runs on the tiny model: results.json, skip-if-done, overwrite, user errors."""

import json
import os
import subprocess
import sys

import pytest
import torch

from jola.errors import UserError
from jola.runner import as_run_config, run, run_directory
from tests.helpers import REPO_ROOT, compose_config, tiny_overrides


def saved_variant(run_dir):
    return json.loads((run_dir / "results.json").read_text())["variant"]


def test_zero_shot_run_writes_results_and_skips_when_done(tmp_path, capsys):
    cfg = compose_config(tiny_overrides(tmp_path))
    results = run(cfg)
    run_dir = run_directory(as_run_config(cfg))
    variant = "max_new_tokens=8,num_beams=1,test_limit=6"  # the settings tiny_overrides change
    assert run_dir == tmp_path / "tiny_random" / "zero_shot" / "siqa" / "n8" / variant / "seed42"
    assert saved_variant(run_dir) == variant
    saved = json.loads((run_dir / "results.json").read_text())
    assert 0.0 <= saved["metrics"]["acc"] <= 1.0
    assert saved["metrics"] == results["metrics"]
    assert saved["trainable_parameters"] == 0
    assert saved["data"]["source"] == "packaged" and saved["data"]["test_limit"] == 6
    assert saved["data"]["n_test"] == 6 and len(saved["data"]["fingerprint"]) == 64
    assert saved["config"]["task"]["test_limit"] == 6
    assert saved["versions"]["torch"] and "commit" in saved["git"]
    predictions = (run_dir / "predictions.jsonl").read_text().splitlines()
    assert len(predictions) == 6
    acc = sum(json.loads(p)["parsed"] == json.loads(p)["answer"] for p in predictions) / 6
    assert acc == saved["metrics"]["acc"]

    mtime = (run_dir / "results.json").stat().st_mtime_ns
    capsys.readouterr()
    again = run(compose_config(tiny_overrides(tmp_path)))
    assert "skip:" in capsys.readouterr().out
    assert again == saved and (run_dir / "results.json").stat().st_mtime_ns == mtime

    run(compose_config(tiny_overrides(tmp_path, "overwrite=true")))
    assert (run_dir / "results.json").stat().st_mtime_ns != mtime


def test_a_different_config_gets_its_own_directory_never_a_reused_one(tmp_path):
    first = run(compose_config(tiny_overrides(tmp_path)))
    second = run(compose_config(tiny_overrides(tmp_path, "task.test_limit=5")))
    assert (first["variant"], second["variant"]) == (
        "max_new_tokens=8,num_beams=1,test_limit=6",
        "max_new_tokens=8,num_beams=1,test_limit=5",
    )
    assert len(list(tmp_path.rglob("results.json"))) == 2
    # a finished run whose recorded config differs (written by another version) is refused
    run_dir = run_directory(as_run_config(compose_config(tiny_overrides(tmp_path))))
    saved = json.loads((run_dir / "results.json").read_text())
    saved["config"]["prompt"]["template"] = "alpaca"
    (run_dir / "results.json").write_text(json.dumps(saved))
    with pytest.raises(UserError, match=r"different config.*template: 'alpaca' -> 'release'"):
        run(compose_config(tiny_overrides(tmp_path)))


def test_settings_that_change_nothing_never_split_or_block_a_run(tmp_path, capsys):
    run(compose_config(tiny_overrides(tmp_path)))
    capsys.readouterr()
    for extra in ("eval.progress=true", "model.device=cpu", f"output_root={tmp_path}/"):
        run(compose_config([*tiny_overrides(tmp_path), extra]))
        assert "skip:" in capsys.readouterr().out
    assert len(list(tmp_path.rglob("results.json"))) == 1


def test_same_seed_gives_same_predictions(tmp_path):
    a = run(compose_config(tiny_overrides(tmp_path / "a")))
    b = run(compose_config(tiny_overrides(tmp_path / "b")))
    assert a["data"]["fingerprint"] == b["data"]["fingerprint"]
    pa = (
        run_directory(as_run_config(compose_config(tiny_overrides(tmp_path / "a"))))
        / "predictions.jsonl"
    ).read_text()
    pb = (
        run_directory(as_run_config(compose_config(tiny_overrides(tmp_path / "b"))))
        / "predictions.jsonl"
    ).read_text()
    assert pa == pb


def run_cli(tmp_path, *args):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "run.py", *tiny_overrides(tmp_path), *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )


def test_cli_run_then_skip(tmp_path):
    first = run_cli(tmp_path)
    assert first.returncode == 0, first.stderr
    assert "done: zero_shot on siqa: acc=" in first.stdout
    second = run_cli(tmp_path)
    assert second.returncode == 0 and "skip:" in second.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["task=siqaa"], r"Could not find 'task/siqaa'.*siqa"),
        (["model=gpt5"], r"Could not find 'model/gpt5'.*tiny_random"),
        (["method=prompting"], r"Could not find 'method/prompting'.*zero_shot"),
        (["n=0"], r"n must be a positive number.*n=0"),
        (["n=5000"], r"n=5000 needs 10000 examples.*pool has 1454"),
        (["task.source=web"], r"unknown task source 'web'; choices: fixture, hub, llm_adapters"),
        (["eval.mode=guess"], r"unknown eval.mode 'guess'"),
        (["n=many"], r"n=many|'many'"),
        (["task.source=llm_adapters", "task.data_dir=/nonexistent"], r"/nonexistent/train.json"),
    ],
)
def test_cli_user_errors_are_one_clear_message_and_write_nothing(tmp_path, args, message):
    import re

    result = run_cli(tmp_path, *args)
    assert result.returncode != 0
    assert re.search(message, result.stderr, re.S), result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    assert not list(tmp_path.rglob("results.json"))


def test_results_record_the_commit_the_run_started_from(tmp_path, monkeypatch):
    """A commit made while a run trains must not be recorded as the code that ran: the git
    state is read when the run starts."""
    import jola.runner

    states = iter([{"commit": "start", "dirty": False}, {"commit": "later", "dirty": True}])
    monkeypatch.setattr(jola.runner, "git_state", lambda: next(states))
    cfg = compose_config(tiny_overrides(tmp_path))
    results = run(cfg)
    saved = json.loads((run_directory(as_run_config(cfg)) / "results.json").read_text())
    assert results["git"] == saved["git"] == {"commit": "start", "dirty": False}
    assert saved["machine"] == {"torch_threads": torch.get_num_threads(), "device": "cpu"}
