"""Choice tasks: the answer is one of a fixed set of labels (answer1.., solution1.., true/false).

Shared by the commonsense suite (LLM-Adapters labels) and MMLU-Pro (letters). The default parser
takes the first label mentioned in the response, tolerating case and a space before the number;
``paper_compat`` switches to the release's rule (the first case-sensitive substring match of any
of its labels).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from jola.config import TaskConfig
from tasks.base import Example, Task

TARGET_TEMPLATE = "the correct answer is {answer}"
ANSWER_FORMAT_LINE = re.compile(r"Answer format: ?(\S+)\s*$")


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


def first_group_label(pattern: re.Pattern, labels: Sequence[str], text: str) -> str:
    """The label whose alternative of ``pattern`` matches first in ``text`` ('' if none)."""
    match = pattern.search(text)
    if match is None:
        return ""
    index = next(i for i, group in enumerate(match.groups()) if group is not None)
    return labels[index]


def labels_from_answer_format(instruction: str, known: Sequence[str]) -> tuple[str, ...]:
    """The labels an LLM-Adapters instruction offers, read from its 'Answer format:' line."""
    match = ANSWER_FORMAT_LINE.search(instruction)
    if match is None:
        return ()
    offered = tuple(match.group(1).split("/"))
    return offered if offered and all(label in known for label in offered) else ()


class ChoiceTask(Task):
    """A task whose answer is one of ``labels``; an Example's target is the bare label (the
    release's ``answer`` field), rendered as "the correct answer is {label}" in the
    ``sentence`` target style (LLM-Adapters' ``output``).

    ``release_labels`` are the labels the release's regex looks for (``paper_compat``); they
    default to ``labels`` (SIQA and OBQA share ARC's answer1..answer5 pattern in the release).
    """

    suite = "commonsense"
    output_type = "choice"
    labels: tuple[str, ...] = ()
    release_labels: tuple[str, ...] = ()

    def __init__(self, cfg: TaskConfig | None = None) -> None:
        super().__init__(cfg)
        self._pattern = compile_label_pattern(self.labels)
        release = self.release_labels or self.labels
        self._release_labels = release
        self._release_pattern = re.compile("|".join(f"({re.escape(x)})" for x in release))

    def render_target(self, target: str, style: str) -> str:
        return TARGET_TEMPLATE.format(answer=target) if style == "sentence" else target

    def parse(self, generated: str) -> str:
        """The first label mentioned in the text (the release's rule), '' if none."""
        if self.paper_compat:
            return first_group_label(self._release_pattern, self._release_labels, generated)
        return first_group_label(self._pattern, self.labels, generated)

    def reference_accuracies(self, examples: Sequence[Example]) -> dict:
        """What an accuracy on ``examples`` must beat: chance (uniform guessing among each
        item's offered labels) and always answering the most frequent gold label."""
        if not examples:
            return {}
        counts: dict[str, int] = {}
        for ex in examples:
            counts[ex.answer] = counts.get(ex.answer, 0) + 1
        majority = max(sorted(counts), key=counts.get)
        return {
            "chance_acc": sum(1 / len(self.item_labels(ex)) for ex in examples) / len(examples),
            "majority_acc": counts[majority] / len(examples),
            "majority_label": majority,
        }

    def item_labels(self, example: Example) -> tuple[str, ...]:
        """The labels this item offers (all of the task's labels unless the item says fewer)."""
        return example.labels or self.labels

    def candidates(self, example: Example, style: str = "label") -> dict[str, str]:
        return {label: self.render_target(label, style) for label in self.item_labels(example)}

    def make_example(self, row_id: str, instruction: str, answer: str, labels: Sequence[str]):
        """An Example for ``answer`` among ``labels`` (kept on the item when they are fewer)."""
        item_labels = tuple(labels) if tuple(labels) != self.labels else ()
        return Example(
            id=row_id,
            instruction=instruction,
            target=answer,
            answer=answer,
            labels=item_labels,
        )

    def example_from_adapter_row(self, row: dict, row_id: str) -> Example:
        example = super().example_from_adapter_row(row, row_id)
        if example.answer not in self.labels:
            raise ValueError(f"answer '{example.answer}' is not one of {', '.join(self.labels)}")
        offered = labels_from_answer_format(example.instruction, self.labels)
        if offered and example.answer not in offered:
            raise ValueError(f"answer '{example.answer}' is not offered by the instruction")
        if offered and offered != self.labels:
            return Example(
                id=example.id,
                instruction=example.instruction,
                target=example.target,
                answer=example.answer,
                labels=offered,
            )
        return example


def one_based_index(value, count: int) -> int:
    """0-based index of a gold label given as '1'..'n' (strings) or a 0-based ClassLabel int."""
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


def zero_based_index(value, count: int) -> int:
    """0-based index of a gold label given as 0..n-1 (int or digit string, e.g. HellaSwag '3')."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"label {value!r} is not a valid choice")
    if isinstance(value, str):
        if not value.strip().isdigit():
            raise ValueError(f"label {value!r} is not a choice number (no gold label?)")
        value = int(value.strip())
    if not isinstance(value, int) or not 0 <= value < count:
        raise ValueError(f"label {value!r} is out of range for {count} choices")
    return value


def require_text(row: dict, *keys: str) -> list[str]:
    """The values of string fields, raising ValueError naming a missing or non-string one."""
    values = []
    for key in keys:
        value = row.get(key)
        if not isinstance(value, str):
            raise ValueError(f"missing or non-string field '{key}'")
        values.append(value)
    return values


def require_text_list(row: dict, key: str, min_len: int = 1) -> list[str]:
    """A list-of-strings field, raising ValueError if missing, too short or not strings."""
    value = row.get(key)
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"missing or malformed list field '{key}'")
    if len(value) < min_len:
        raise ValueError(f"field '{key}' has {len(value)} entries, needs at least {min_len}")
    return list(value)
