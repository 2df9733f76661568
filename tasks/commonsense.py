"""Commonsense reasoning tasks in the LLM-Adapters instruction format the JoLA authors used.

Instructions follow the authors' data files exactly (see DESIGN.md section 5), e.g. SIQA:

    Please choose the correct answer to the question: {context} {question}

    Answer1: {A} Answer2: {B} Answer3: {C}

    Answer format: answer1/answer2/answer3

and the target is "the correct answer is {label}".
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from tasks.base import Example, Task

TARGET_TEMPLATE = "the correct answer is {answer}"


def numbered_options(word: str, options: Sequence[str]) -> str:
    """'Answer1: x Answer2: y ...' as in the LLM-Adapters files."""
    return " ".join(f"{word}{i}: {text}" for i, text in enumerate(options, start=1))


def answer_format(word: str, count: int) -> str:
    """'answer1/answer2/...' for ``count`` options."""
    return "/".join(f"{word.lower()}{i}" for i in range(1, count + 1))


def compile_label_pattern(labels: Sequence[str]) -> re.Pattern:
    """A regex matching any label, case-insensitive, tolerating a space before the number.

    'answer2', 'Answer2', 'answer 2' all match label 'answer2'; 'answer21' does not match
    'answer2'. Labels without a trailing number (true/false) match as whole words.
    """
    parts = []
    for label in labels:
        match = re.fullmatch(r"([a-z]+)(\d+)", label)
        if match:
            parts.append(rf"(?<![a-z]){match.group(1)}\s?{match.group(2)}(?!\d)")
        else:
            parts.append(rf"\b{re.escape(label)}\b")
    return re.compile("|".join(f"({p})" for p in parts), re.IGNORECASE)


class ChoiceTask(Task):
    """A task whose answer is one of a fixed set of labels (answer1.., solution1.., true/false)."""

    suite = "commonsense"
    labels: tuple[str, ...] = ()

    def __init__(self) -> None:
        self._pattern = compile_label_pattern(self.labels)

    def target_for(self, answer: str) -> str:
        return TARGET_TEMPLATE.format(answer=answer)

    def parse(self, generated: str) -> str:
        """The first label mentioned in the text (the release's rule), '' if none."""
        match = self._pattern.search(generated)
        if match is None:
            return ""
        index = next(i for i, group in enumerate(match.groups()) if group is not None)
        return self.labels[index]

    def candidates(self, example: Example) -> Sequence[str]:
        return [self.target_for(label) for label in self.labels]

    def example_from_adapter_row(self, row: dict, row_id: str) -> Example:
        example = super().example_from_adapter_row(row, row_id)
        if example.answer not in self.labels:
            raise ValueError(f"answer '{example.answer}' is not one of {', '.join(self.labels)}")
        return example


def label_index(value, count: int) -> int:
    """0-based index of a gold label: strings are 1-based ('1'..), ints are ClassLabel (0-based)."""
    if isinstance(value, bool):
        raise ValueError(f"label {value!r} is not a valid choice")
    if isinstance(value, int):
        index = value
    elif isinstance(value, str) and value.strip().isdigit():
        index = int(value.strip()) - 1
    else:
        raise ValueError(f"label {value!r} is not a choice number")
    if not 0 <= index < count:
        raise ValueError(f"label {value!r} is out of range for {count} choices")
    return index


def require_text(row: dict, *keys: str) -> list[str]:
    """The values of string fields, raising ValueError naming a missing or non-string one."""
    values = []
    for key in keys:
        value = row.get(key)
        if not isinstance(value, str):
            raise ValueError(f"missing or non-string field '{key}'")
        values.append(value)
    return values


class SocialIQA(ChoiceTask):
    """SIQA: social situations, 3 answers. Hub schema: context, question, answerA-C, label."""

    name = "siqa"
    labels = ("answer1", "answer2", "answer3")
    packaged_path = "social_i_qa/none/validation"
    default_hub_id = "extraordinarylab/siqa"

    def example_from_hub_row(self, row: dict, row_id: str) -> Example:
        context, question, *options = require_text(
            row, "context", "question", "answerA", "answerB", "answerC"
        )
        answer = self.labels[label_index(row.get("label"), len(options))]
        instruction = (
            f"Please choose the correct answer to the question: {context} {question}\n\n"
            f"{numbered_options('Answer', options)}\n\n"
            f"Answer format: {answer_format('answer', len(options))}"
        )
        return Example(
            id=row_id, instruction=instruction, target=self.target_for(answer), answer=answer
        )
