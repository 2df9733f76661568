"""The JoLA release's protocol byte for byte: its template, its target (the bare ``answer``
field, no EOS), and its data files (JSON lines in train/valid/test.json, valid.json as dev)."""

from __future__ import annotations

import json

import pytest

from jola.config import TaskConfig
from jola.errors import UserError
from jola.models import byte_level_tokenizer
from jola.prompts import PromptFormat
from jola.training import encode_examples
from tasks import get_task, load_splits

# jola/dataset.py of the release (generate_prompt without input), with the answer appended
RELEASE_HEAD = (
    "Below is an instruction that describes a task. Write a response that appropriately "
    "completes the request.\n ### Instruction:\n"
)


def training_text(task_name: str, source: str, prompt_format: PromptFormat) -> tuple[str, str]:
    """(instruction, the exact text training tokenises) of the first test item of a source."""
    task = get_task(task_name)
    example = load_splits(TaskConfig(name=task_name, source=source), 2, 0).test[0]
    (encoded,) = encode_examples(
        byte_level_tokenizer(), task, [example], prompt_format, max_length=10_000
    )
    tokenizer = byte_level_tokenizer()
    return example.instruction, tokenizer.decode(encoded["input_ids"], skip_special_tokens=True)


@pytest.mark.parametrize(
    "task_name, source, answer",
    [
        ("siqa", "fixture", None),  # commonsense: the bare label
        ("mmlu_pro_biology", "fixture", "C"),  # MMLU-Pro: the letter
        ("xsum", "fixture", "Seaford harbour will be dredged to let larger fishing boats dock."),
    ],
)
def test_release_template_and_target_bytes_per_task_family(task_name, source, answer):
    instruction, text = training_text(task_name, source, PromptFormat())
    example = load_splits(TaskConfig(name=task_name, source=source), 2, 0).test[0]
    expected_answer = answer or example.answer
    assert text == f"{RELEASE_HEAD}{instruction}\n\n### Response:\n{expected_answer}"


def test_sentence_target_and_alpaca_template_are_named_options():
    old = PromptFormat(template="alpaca", target="sentence", eos=False)
    instruction, text = training_text("siqa", "fixture", old)
    answer = load_splits(TaskConfig(name="siqa", source="fixture"), 2, 0).test[0].answer
    assert text == (
        "Below is an instruction that describes a task. Write a response that appropriately "
        f"completes the request.\n\n### Instruction:\n{instruction}\n\n### Response:\n"
        f"the correct answer is {answer}"
    )
    # MMLU-Pro and GEM train on the letter and the reference in both styles
    _, letter = training_text("mmlu_pro_biology", "fixture", old)
    assert letter.endswith("### Response:\nC")


def test_unknown_template_or_target_style_lists_the_choices():
    with pytest.raises(UserError, match="unknown prompt template 'chat'; choices: alpaca, release"):
        PromptFormat(template="chat")
    with pytest.raises(UserError, match="unknown prompt.target 'output'; choices: label, sentence"):
        PromptFormat(target="output")


SIQA_ROW = {
    "instruction": "Please choose the correct answer to the question: Q{i}?\n\n"
    "Answer1: a Answer2: b Answer3: c\n\nAnswer format: answer1/answer2/answer3",
    "answer": "answer{k}",
}


def _rows(count: int, offset: int = 0) -> list[dict]:
    return [
        {key: value.format(i=i + offset, k=1 + (i % 3)) for key, value in SIQA_ROW.items()}
        for i in range(count)
    ]


def _write_json_lines(path, rows) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def test_the_releases_json_lines_layout_loads_with_valid_json_as_dev(tmp_path):
    folder = tmp_path / "commonsense" / "SIQA"  # {data_path}/{task}/{subtask}/
    _write_json_lines(folder / "train.json", _rows(30))
    _write_json_lines(folder / "valid.json", _rows(12, offset=100))
    _write_json_lines(folder / "test.json", _rows(9, offset=200))
    cfg = TaskConfig(name="siqa", data_dir=str(folder))  # source: auto -> the authors' files
    splits = load_splits(cfg, 5, 42)
    assert splits.protocol["source"] == "llm_adapters"
    assert len(splits.train) == len(splits.dev) == 5 and len(splits.test) == 9
    assert all(ex.id.startswith("train-") for ex in splits.train)
    assert all(ex.id.startswith("dev-") for ex in splits.dev)  # sampled from valid.json
    assert [ex.id for ex in splits.test] == [f"test-{i}" for i in range(9)]  # the whole test
    assert "valid.json" in splits.protocol["dev"]
    assert splits.test[0].target == splits.test[0].answer == "answer1"
    # n above valid.json's size: the whole dev file, as the release does
    assert len(load_splits(cfg, 20, 42).dev) == 12


def test_llm_adapters_json_lists_still_load_and_carve_dev_from_train(tmp_path):
    (tmp_path / "train.json").write_text(json.dumps(_rows(20)))
    (tmp_path / "test.json").write_text(json.dumps(_rows(4, offset=50)))
    splits = load_splits(TaskConfig(name="siqa", data_dir=str(tmp_path)), 5, 0)
    assert len(splits.train) == len(splits.dev) == 5 and len(splits.test) == 4
    assert all(ex.id.startswith("train-") for ex in splits.train + splits.dev)


def test_a_data_file_that_is_not_utf8_is_named_with_its_byte_offset(tmp_path):
    _write_json_lines(tmp_path / "train.json", _rows(4))
    (tmp_path / "test.json").write_bytes(b'{"instruction": "caf\xe9", "answer": "answer1"}\n')
    with pytest.raises(UserError, match=r"test\.json is not valid UTF-8 \(byte offset 20\)"):
        load_splits(TaskConfig(name="siqa", data_dir=str(tmp_path)), 1, 0)


def test_a_broken_json_line_is_named(tmp_path):
    _write_json_lines(tmp_path / "train.json", _rows(4))
    (tmp_path / "test.json").write_text(json.dumps(_rows(1)[0]) + "\n{not json\n")
    with pytest.raises(UserError, match=r"test\.json line 2 is not valid JSON"):
        load_splits(TaskConfig(name="siqa", data_dir=str(tmp_path)), 1, 0)


def test_cap_n_caps_with_a_warning_and_records_it(tmp_path, capsys):
    _write_json_lines(tmp_path / "train.json", _rows(10))
    _write_json_lines(tmp_path / "test.json", _rows(3, offset=50))
    cfg = TaskConfig(name="siqa", data_dir=str(tmp_path))
    with pytest.raises(UserError, match=r"n=8 needs 16 examples .* choose n <= 5 \(or task.cap_n"):
        load_splits(cfg, 8, 0)
    cfg.cap_n = True
    splits = load_splits(cfg, 8, 0)
    assert len(splits.train) == len(splits.dev) == 5
    assert splits.protocol["n_requested"] == 8 and splits.protocol["n_capped"] is True
    assert "capped at n=5" in capsys.readouterr().err


def test_a_hub_dataset_that_is_not_cached_fails_in_one_line_with_the_prefetch_command():
    cfg = TaskConfig(name="siqa", source="hub", hub_id="jola-tests/not-a-cached-dataset")
    with pytest.raises(UserError) as caught:
        load_splits(cfg, 1, 0)
    message = str(caught.value)
    assert "\n" not in message and "jola-tests/not-a-cached-dataset" in message
    assert "scripts/preflight.py" in message and "--download" in message
