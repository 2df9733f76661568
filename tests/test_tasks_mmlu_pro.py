"""MMLU-Pro: 14 domain tasks from one class, the instruction, the letter parser, the sources."""

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jola.config import TaskConfig
from jola.errors import UserError
from tasks import TASKS, get_task, load_splits
from tasks.mmlu_pro import MMLU_PRO_DOMAINS, MmluProTask

DOMAINS = [
    "biology",
    "business",
    "chemistry",
    "computer_science",
    "economics",
    "engineering",
    "health",
    "history",
    "law",
    "math",
    "other",
    "philosophy",
    "physics",
    "psychology",
]


def hub_row(category="biology", answer="C", **extra):
    options = ["alpha", "beta", "gamma", "delta", "epsilon"]
    return {
        "question_id": 1,
        "question": "Which one is third?",
        "options": options,
        "answer": answer,
        "answer_index": "ABCDE".index(answer),
        "cot_content": "",
        "category": category,
        "src": "test",
        **extra,
    }


def test_fourteen_domain_tasks_from_one_class():
    names = [n for n in TASKS.names() if n.startswith("mmlu_pro_")]
    assert names == [f"mmlu_pro_{d}" for d in DOMAINS]
    for name in names:
        task = get_task(name)
        assert type(task) is MmluProTask and task.name == name and task.suite == "mmlu_pro"
    assert get_task("mmlu_pro_computer_science").category == "computer science"
    assert set(MMLU_PRO_DOMAINS) == set(DOMAINS)


def test_instruction_and_target_on_a_known_item():
    example = get_task("mmlu_pro_biology").example_from_hub_row(hub_row(), "x")
    assert example.instruction == (
        "The following is a multiple choice question about biology. Choose the correct option "
        "and answer with its letter.\n\n"
        "Question: Which one is third?\n\n"
        "Options:\nA. alpha\nB. beta\nC. gamma\nD. delta\nE. epsilon\n\n"
        "Answer format: A/B/C/D/E"
    )
    assert example.target == "C" and example.answer == "C"
    assert example.labels == tuple("ABCDE")
    assert get_task("mmlu_pro_biology").candidates(example) == {x: x for x in "ABCDE"}


def test_other_domain_names_its_subject():
    example = get_task("mmlu_pro_other").example_from_hub_row(hub_row("other"), "x")
    assert example.instruction.startswith(
        "The following is a multiple choice question about miscellaneous topics."
    )


def test_fixture_item_by_hand():
    splits = load_splits(TaskConfig(name="mmlu_pro_math", source="fixture"), 4, 0)
    assert len(splits.test) == 4 and len(splits.train) == 4
    first = splits.test[0]
    assert first.instruction == (
        "The following is a multiple choice question about math. Choose the correct option and "
        "answer with its letter.\n\n"
        "Question: What is the integral of 2x dx?\n\n"
        "Options:\nA. x^3 + C\nB. x + C\nC. x^2/4 + C\nD. ln x + C\nE. e^x + C\n"
        "F. 1/x + C\nG. x^2 + C\nH. 4x + C\nI. 2 + C\nJ. 2x^2 + C\n\n"
        "Answer format: A/B/C/D/E/F/G/H/I/J"
    )
    assert first.target == first.answer == "G"


@pytest.mark.parametrize("domain", DOMAINS)
def test_every_domain_has_fixture_rows_of_its_own_category(domain):
    splits = load_splits(TaskConfig(name=f"mmlu_pro_{domain}", source="fixture"), 4, 0)
    assert len(splits.train) == 4 and len(splits.dev) == 4 and len(splits.test) == 4
    subject = "miscellaneous topics" if domain == "other" else MMLU_PRO_DOMAINS[domain]
    assert all(f"question about {subject}." in ex.instruction for ex in splits.test)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("the answer is (C)", "C"),
        ("The answer is C.", "C"),
        ("C.", "C"),
        ("Answer: C", "C"),
        ("Answer: (c)", "C"),
        ("(C)", "C"),
        ("c) the third option", "C"),
        ("C) gamma", "C"),
        ("C is correct", "C"),
        ("Option D", "D"),
        ("J", "J"),
        ("A", "A"),
        ("A.", "A"),
        ("A, because it is first", "A"),
        ("The answer is A because", "A"),
        ("Answer", ""),
        ("As a matter of fact", ""),
        ("A good question. The answer is B", "B"),
        ("A good choice would be D", "D"),
        ("I think it's E", "E"),
        ("As we know, B", "B"),
        ("Answer format: A/B/C/D", ""),
        ("The answer is a bit unclear", ""),
        ("Kangaroo", ""),
        ("", ""),
    ],
)
def test_letter_parser(text, expected):
    assert get_task("mmlu_pro_law").parse(text) == expected


@pytest.mark.parametrize("text", ["Answer: C", "Answer", "As we know, B", "A good one: D"])
def test_default_parser_never_reads_the_a_of_words(text):
    assert get_task("mmlu_pro_law").parse(text) != "A"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Answer: C", "A"),  # the release's quirk: the 'A' of 'Answer'
        ("the answer is (C)", "C"),
        ("Because of D", "B"),
        ("the best is (J)", "J"),
        ("no capitals", ""),
    ],
)
def test_paper_compat_takes_the_first_capital_letter(text, expected):
    cfg = TaskConfig(name="mmlu_pro_law", paper_compat=True)
    assert get_task("mmlu_pro_law", cfg).parse(text) == expected


@pytest.mark.parametrize(
    "row, message",
    [
        (hub_row(answer="C", answer_index=1), "disagrees"),
        ({**hub_row(), "answer": "F"}, "not one of"),
        ({**hub_row(), "options": ["only"]}, "at least 2"),
        ({**hub_row(), "options": [str(i) for i in range(11)]}, "at most 10"),
        ({k: v for k, v in hub_row().items() if k != "question"}, "question"),
    ],
)
def test_malformed_rows(row, message):
    with pytest.raises(ValueError, match=message):
        get_task("mmlu_pro_biology").example_from_hub_row(row, "x")


def write_parquet(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)


def test_hub_source_filters_the_category_and_carves_a_fixed_test_part(tmp_path):
    rows = []
    for i in range(30):
        rows.append({**hub_row("history", "ABCDE"[i % 5]), "question_id": i, "question": f"h{i}"})
        rows.append({**hub_row("law"), "question_id": 100 + i, "question": f"l{i}"})
    write_parquet(tmp_path / "data" / "test-00000-of-00001.parquet", rows)
    write_parquet(tmp_path / "data" / "validation-00000-of-00001.parquet", rows[:2])
    cfg = TaskConfig(
        name="mmlu_pro_history",
        source="hub",
        hub_id=str(tmp_path),
        hub_train_split=None,
        hub_test_split="test",
        test_size=10,
    )
    a = load_splits(cfg, 5, seed=1)
    b = load_splits(cfg, 5, seed=2)
    assert len(a.test) == 10 and a.protocol["pool_size"] == 20
    assert [e.id for e in a.test] == [e.id for e in b.test]
    assert all("question about history" in e.instruction for e in a.train + a.dev + a.test)
    assert {e.id for e in a.train} != {e.id for e in b.train}
    # ids keep the row index in the unfiltered split (history rows are the even ones)
    assert all(int(e.id.split("-")[1]) % 2 == 0 for e in a.train + a.dev + a.test)


def test_hub_split_without_the_domain_is_a_clear_error(tmp_path):
    write_parquet(tmp_path / "data" / "test-00000-of-00001.parquet", [hub_row("law")] * 3)
    cfg = TaskConfig(name="mmlu_pro_math", source="hub", hub_id=str(tmp_path), hub_train_split=None)
    cfg.hub_test_split = "test"
    with pytest.raises(UserError, match="split 'test' of .* has no rows for it"):
        load_splits(cfg, 1, 0)


def test_yaml_defaults_are_profile_source_and_pool_protocol_for_the_hub():
    from tasks.catalog import task_config

    cfg = task_config("mmlu_pro_history")
    assert cfg.source == "auto" and cfg.hub_id == "TIGER-Lab/MMLU-Pro"
    assert cfg.hub_train_split is None and cfg.hub_test_split == "test"
    assert 381 - cfg.test_size >= 200  # history, the smallest domain, still fits n = 100


def test_llm_adapters_rows_work_for_letters(tmp_path):
    example = get_task("mmlu_pro_law").example_from_hub_row(hub_row("law"), "x")
    row = {"instruction": example.instruction, "input": "", "output": "C", "answer": "C"}
    (tmp_path / "train.json").write_text(json.dumps([row, row]))
    (tmp_path / "test.json").write_text(json.dumps([row]))
    cfg = TaskConfig(name="mmlu_pro_law", source="llm_adapters", data_dir=str(tmp_path))
    splits = load_splits(cfg, 1, 0)
    assert splits.test[0].labels == tuple("ABCDE")
    assert splits.test[0].target == "C"


def test_unknown_domain_lists_the_choices():
    with pytest.raises(UserError, match="unknown MMLU-Pro domain 'astrology'; choices: .*biology"):
        MmluProTask("astrology")
