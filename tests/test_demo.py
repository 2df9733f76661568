"""scripts/demo.py (`make demo`) end to end on the tiny random model: both runs, the table."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "demo.py"


def _load_demo():
    spec = importlib.util.spec_from_file_location("jola_demo_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_demo_runs_both_methods_and_prints_them_side_by_side(tmp_path, capsys):
    demo = _load_demo()
    extra = [
        "model=tiny_random",
        "n=4",
        "task.test_limit=4",
        "method.train.epochs=1",
        "eval.max_new_tokens=4",
        f"output_root={tmp_path}",
    ]
    assert demo.main(extra) == 0
    out = capsys.readouterr().out
    assert "n=4 train + 4 dev, JoLA <= 1 epochs" in out
    table = out[out.index("method     test acc  chance majority") :].splitlines()
    for name in ("zero_shot", "jola"):
        (results_path,) = (tmp_path / "tiny_random" / name / "siqa" / "n4").rglob("results.json")
        results = json.loads(results_path.read_text())
        row = next(line for line in table if line.startswith(name))
        assert f"{results['metrics']['acc']:.4f}" in row and str(results["data"]["n_test"]) in row
        # chance and majority-class accuracy of the same test items sit beside the accuracy
        answers = [
            json.loads(line)["answer"]
            for line in (results_path.parent / "predictions.jsonl").read_text().splitlines()
        ]
        majority = max(answers.count(label) for label in set(answers)) / len(answers)
        assert row.split()[2:4] == [f"{1 / 3:.4f}", f"{majority:.4f}"]
    assert "scripts/preflight.py experiment=paper_main model=llama31_8b" in out
    # a second demo reuses the finished runs
    assert demo.main(extra) == 0
    assert capsys.readouterr().out.count("skip: ") == 2


def test_demo_reports_a_bad_override_and_exits_2(tmp_path, capsys):
    demo = _load_demo()
    assert demo.main(["model=tiny_random", "n=0", f"output_root={tmp_path}"]) == 2
    assert "error:" in capsys.readouterr().err
