"""GEM generation tasks: PromptSource instructions, references, metric inputs, hub parquet export."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jola.config import TaskConfig
from jola.errors import UserError
from jola.evaluation import Prediction
from tasks import get_task, load_splits
from tasks.sources import hub_load_arguments

# The first test item of each fixture, its instruction written out by hand.
EXPECTED = {
    "common_gen": (
        "Put the concepts together to form a sentence: kite, wind, fly.",
        ["The girl flies a kite in the strong wind.", "A kite flies high in the wind."],
    ),
    "e2e_nlg": (
        "Given the following data: name[Maple House], eatType[restaurant], food[Chinese], "
        "area[riverside] Generate a sentence about this dinery.",
        [
            "Maple House is a Chinese restaurant by the riverside.",
            "By the riverside there is a Chinese restaurant called Maple House.",
        ],
    ),
    "web_nlg": (
        "Cedar Lake | location | Canada\nThe above is a collection of relations. Write "
        "descriptive English that contains this information.",
        ["Cedar Lake is located in Canada.", "Cedar Lake is in Canada."],
    ),
    "xsum": (
        "The harbour in Seaford will be dredged this summer so that larger fishing boats can "
        "dock. The work will take eight weeks. Fishermen welcomed the plan, saying it would "
        "bring more trade.\n\n===\n\nGiven the above document, write one sentence to summarize:",
        [
            "Seaford harbour will be dredged to let larger fishing boats dock.",
            "Work to deepen Seaford harbour will start this summer.",
        ],
    ),
}


def fixture_splits(name):
    return load_splits(TaskConfig(name=name, source="fixture"), 4, 0)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_fixture_first_test_item(name):
    instruction, references = EXPECTED[name]
    first = fixture_splits(name).test[0]
    assert first.instruction == instruction
    assert first.references == tuple(references)
    assert first.target == first.answer == references[0]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_task_settings(name):
    task = get_task(name)
    assert task.suite == "gem" and task.metrics == ("bleu", "rougeL", "bertscore")
    assert task.default_max_new_tokens == 64
    assert task.candidates(fixture_splits(name).test[0]) is None


def test_training_rows_use_their_target_as_the_only_reference():
    train = fixture_splits("e2e_nlg").train
    assert all(ex.references == (ex.target,) for ex in train)


def test_web_nlg_joins_several_triples_with_semicolons():
    task = get_task("web_nlg")
    row = {"input": ["A | b | C", "A | d | E"], "target": "t", "references": []}
    assert task.example_from_hub_row(row, "x").instruction.startswith("A | b | C; A | d | E\n")


def test_metric_inputs_are_first_lines_and_reference_lists():
    task = get_task("common_gen")
    examples = fixture_splits("common_gen").test[:2]
    predictions = [
        Prediction(id=e.id, response="x\ny", first_line="x", parsed="x", answer=e.answer)
        for e in examples
    ]
    hypotheses, references = task.metric_inputs(predictions, examples)
    assert hypotheses == ["x", "x"]
    assert references == [list(examples[0].references), list(examples[1].references)]
    assert task.parse("  a sentence. ") == "a sentence."


@pytest.mark.parametrize(
    "row, message",
    [
        ({"concepts": ["a"], "target": "", "references": []}, "no reference text"),
        ({"concepts": "a b", "target": "t", "references": []}, "concepts"),
        ({"concepts": ["a"], "target": "t", "references": "t"}, "references"),
    ],
)
def test_malformed_rows(row, message):
    with pytest.raises(ValueError, match=message):
        get_task("common_gen").example_from_hub_row(row, "x")


GEM_E2E_SCHEMA = pa.schema(  # as the hub's parquet files type it (references: list<string>)
    [
        ("gem_id", pa.string()),
        ("gem_parent_id", pa.string()),
        ("meaning_representation", pa.string()),
        ("target", pa.string()),
        ("references", pa.list_(pa.string())),
    ]
)


def write_parquet(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=GEM_E2E_SCHEMA), path)


def gem_row(i, refs):
    return {
        "gem_id": f"e2e-{i}",
        "gem_parent_id": f"e2e-{i}",
        "meaning_representation": f"name[Place {i}], food[Thai]",
        "target": refs[0] if refs else f"Place {i} serves Thai food.",
        "references": refs,
    }


def test_hub_parquet_export_layout_reads_only_the_named_splits(tmp_path):
    """refs/convert/parquet stores <config>/<split>/*.parquet; challenge sets stay out."""
    write_parquet(tmp_path / "default/train/0000.parquet", [gem_row(i, []) for i in range(6)])
    test_rows = [
        gem_row(10 + i, [f"Place {i} is Thai.", f"Thai food at Place {i}."]) for i in range(3)
    ]
    write_parquet(tmp_path / "default/test/0000.parquet", test_rows)
    write_parquet(
        tmp_path / "default/challenge_train_sample/0000.parquet",
        [gem_row(90 + i, []) for i in range(5)],
    )
    cfg = TaskConfig(
        name="e2e_nlg",
        source="hub",
        hub_id=str(tmp_path),
        hub_config="default",
        hub_revision="refs/convert/parquet",
        hub_test_split="test",
    )
    args, kwargs = hub_load_arguments(get_task("e2e_nlg"), cfg)
    assert kwargs["data_files"] == {
        "train": "default/train/*.parquet",
        "test": "default/test/*.parquet",
    }
    splits = load_splits(cfg, 3, 0)
    assert splits.protocol["pool_size"] == 6 and len(splits.test) == 3
    assert splits.test[0].references == ("Place 0 is Thai.", "Thai food at Place 0.")
    assert splits.test[0].instruction == (
        "Given the following data: name[Place 10], food[Thai] Generate a sentence about this dinery."
    )


def test_hub_arguments_for_plain_parquet_repos():
    cfg = TaskConfig(
        name="arc_c", source="hub", hub_id="allenai/ai2_arc", hub_config="ARC-Challenge"
    )
    assert hub_load_arguments(get_task("arc_c"), cfg) == (("allenai/ai2_arc", "ARC-Challenge"), {})


def test_yaml_hub_settings_name_the_parquet_export():
    from tasks.catalog import task_config

    for name, hub_id, config, revision, split in [
        (
            "common_gen",
            "GEM/common_gen",
            "default",
            "refs/convert/parquet@62063f847b090959b6fd342f9c8582f61a6bbb53",
            "validation",
        ),
        ("e2e_nlg", "GEM/e2e_nlg", "default", "refs/convert/parquet", "test"),
        ("web_nlg", "GEM/web_nlg", "en", "refs/convert/parquet", "test"),
        ("xsum", "EdinburghNLP/xsum", "default", "refs/convert/parquet", "test"),
    ]:
        cfg = task_config(name)
        assert cfg.source == "auto" and cfg.hub_id == hub_id
        assert cfg.hub_revision == revision
        assert (cfg.hub_config, cfg.hub_test_split) == (config, split)


def test_missing_fixture_file_is_named(tmp_path):
    cfg = TaskConfig(name="xsum", source="fixture", data_dir=str(tmp_path))
    with pytest.raises(UserError, match=r"fixture file .*train\.jsonl does not exist"):
        load_splits(cfg, 1, 0)


def test_runner_scores_generation_with_references_and_records_metric_info(tmp_path):
    import json

    from jola.runner import as_run_config, run, run_directory
    from tests.helpers import compose_config

    cfg = compose_config(
        [
            "model=tiny_random",
            "task=web_nlg",
            "n=2",
            "eval.num_beams=1",
            "eval.max_new_tokens=8",
            "eval.progress=false",
            f"output_root={tmp_path}",
        ]
    )
    results = run(cfg)
    assert sorted(results["metrics"]) == ["bertscore", "bleu", "rougeL"]
    assert results["eval"]["max_new_tokens"] == 8 and results["data"]["source"] == "fixture"
    info = results["metric_info"]["bertscore"]
    assert info["model"] == "sentence-transformers/all-MiniLM-L6-v2" and info["num_layers"] == 6
    rows = (run_directory(as_run_config(cfg)) / "predictions.jsonl").read_text().splitlines()
    assert [json.loads(r)["parsed"] for r in rows] == [json.loads(r)["first_line"] for r in rows]
