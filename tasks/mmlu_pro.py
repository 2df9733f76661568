"""MMLU-Pro (TIGER-Lab/MMLU-Pro): one task per domain, e.g. ``mmlu_pro_biology``.

One class, :class:`MmluProTask`, parameterised by the domain; the registry holds one factory
per domain. Hub rows (split ``test``, 12,032 items) carry ``question``, ``options`` (up to ten),
``answer`` (a letter), ``answer_index``, ``category``, ``question_id``, ``cot_content``, ``src``;
a task keeps the rows of its ``category``. The hub has no per-domain training split (its
``validation`` split holds 70 chain-of-thought exemplars), so, as in the paper, train/dev/test
are carved per domain from ``test`` with a fixed test part (``hub_train_split: null``).

Instruction (the release ships pre-formatted files, not its template; this follows MMLU-Pro's own
prompt without the chain of thought, ending in the LLM-Adapters "Answer format" line):

    The following is a multiple choice question about {subject}. Choose the correct option and
    answer with its letter.

    Question: {question}

    Options:
    A. {option A}
    ...
    J. {option J}

    Answer format: A/B/C/D/E/F/G/H/I/J

The target is the letter alone (in both target styles, see jola.prompts). The default parser reads an explicit cue first ("the answer is
(C)", "Answer: C"), then the first stand-alone option letter ("C.", "(C)", "c) ...", "C is ..."),
and never takes the article "A"/pronoun "I" of running text ("A good...", "I think...") or a
letter inside a word ("Answer", "As"). ``paper_compat`` reproduces the release's parser: the first
capital letter A-J anywhere, which reads "Answer: C" as "A".
"""

from __future__ import annotations

import re

from jola.config import TaskConfig
from jola.errors import unknown_choice
from tasks.base import Example
from tasks.choice import ChoiceTask, require_text, require_text_list
from tasks.commonsense import schema_variant

LETTERS = "ABCDEFGHIJ"
NA_OPTION = "N/A"  # padding of MMLU-Pro's first revisions (options filled up to ten)
MMLU_PRO_DOMAINS = {  # task suffix -> the hub's ``category`` value
    "biology": "biology",
    "business": "business",
    "chemistry": "chemistry",
    "computer_science": "computer science",
    "economics": "economics",
    "engineering": "engineering",
    "health": "health",
    "history": "history",
    "law": "law",
    "math": "math",
    "philosophy": "philosophy",
    "physics": "physics",
    "psychology": "psychology",
    "other": "other",
}
SUBJECT_NAMES = {"other": "miscellaneous topics"}

_CUE = re.compile(
    r"(?i:\b(?:answer|option|choice)\b)\s*(?i:is\b)?\s*[:\-]?\s*"
    r"(?:\(\s*([A-Ja-j])\s*\)|([A-J])(?![A-Za-z0-9']))"
)
_MENTION = re.compile(
    r"\(\s*([A-Ja-j])\s*\)"  # (C) or (c)
    r"|(?<![A-Za-z0-9'])([A-Ja-j])\)"  # C) or c)
    r"|(?<![A-Za-z0-9'])([A-J])\.(?=\s|$)"  # C. at the end of a word
    r"|(?<![A-Za-z0-9'(/])([B-HJ])(?![A-Za-z0-9')/])"  # a lone capital other than A and I
    r"|(?<![A-Za-z0-9'(/])([AI])(?=\s*$|\s*[,:;])"  # A / I only when nothing follows
)
_FIRST_CAPITAL = re.compile("[A-J]")


def parse_letter(text: str) -> str:
    """The option letter a response gives ('' if none): a cue first, then the first mention."""
    for pattern in (_CUE, _MENTION):
        match = pattern.search(text)
        if match:
            return next(group for group in match.groups() if group).upper()
    return ""


def parse_letter_release(text: str) -> str:
    """The release's rule: the first capital letter A-J anywhere (the 'A' of 'Answer' too)."""
    match = _FIRST_CAPITAL.search(text.strip())
    return match.group(0) if match else ""


def mmlu_pro_instruction(subject: str, question: str, options: list[str]) -> str:
    """The instruction for one MMLU-Pro item (options lettered A, B, ...)."""
    letters = LETTERS[: len(options)]
    listed = "\n".join(f"{letter}. {text}" for letter, text in zip(letters, options))
    return (
        f"The following is a multiple choice question about {subject}. "
        "Choose the correct option and answer with its letter.\n\n"
        f"Question: {question}\n\n"
        f"Options:\n{listed}\n\n"
        f"Answer format: {'/'.join(letters)}"
    )


class MmluProTask(ChoiceTask):
    """One MMLU-Pro domain; the target is the letter of the correct option."""

    suite = "mmlu_pro"
    labels = tuple(LETTERS)
    fixture_name = "mmlu_pro"

    def __init__(self, domain: str, cfg: TaskConfig | None = None) -> None:
        if domain not in MMLU_PRO_DOMAINS:
            raise unknown_choice("MMLU-Pro domain", domain, MMLU_PRO_DOMAINS)
        self.domain = domain
        self.category = MMLU_PRO_DOMAINS[domain]
        self.subject = SUBJECT_NAMES.get(domain, self.category)
        self.name = f"mmlu_pro_{domain}"
        super().__init__(cfg)

    def keep_row(self, row: dict) -> bool:
        return row.get("category") == self.category

    def render_target(self, target: str, style: str) -> str:
        """The letter in both target styles (LLM-Adapters has no MMLU-Pro sentence form)."""
        return target

    def parse(self, generated: str) -> str:
        if self.paper_compat:
            return parse_letter_release(generated)
        return parse_letter(generated)

    def example_from_hub_row(self, row: dict, row_id: str) -> Example:
        """Rows in TIGER-Lab/MMLU-Pro's schema: ``answer`` (a letter) with or without
        ``answer_index``, or ``answer_index`` alone; ``options`` padded with trailing "N/A"
        entries (MMLU-Pro's first revisions; its own evaluation scripts drop them) lose them."""
        variant = schema_variant(
            row,
            [
                ("answer letter", ("question", "options", "answer")),
                ("answer_index only", ("question", "options", "answer_index")),
            ],
        )
        (question,) = require_text(row, "question")
        options = require_text_list(row, "options", min_len=2)
        while len(options) > 2 and options[-1] == NA_OPTION:
            options.pop()
        if len(options) > len(LETTERS):
            raise ValueError(f"{len(options)} options; MMLU-Pro has at most {len(LETTERS)}")
        letters = tuple(LETTERS[: len(options)])
        index = row.get("answer_index")
        if variant == "answer letter":
            answer = str(row.get("answer", "")).strip()
            if answer not in letters:
                raise ValueError(f"answer {answer!r} is not one of {', '.join(letters)}")
            if index is not None and index != letters.index(answer):
                raise ValueError(f"answer_index {index} disagrees with answer {answer!r}")
        else:
            if isinstance(index, bool) or not isinstance(index, int):
                raise ValueError(f"answer_index {index!r} is not an option number")
            if not 0 <= index < len(letters):
                raise ValueError(f"answer_index {index} is out of range for {len(letters)} options")
            answer = letters[index]
        instruction = mmlu_pro_instruction(self.subject, question, options)
        return self.make_example(row_id, instruction, answer, letters)


def mmlu_pro_factories() -> dict:
    """Task name -> factory(cfg) for every domain."""

    def factory_for(domain: str):
        def build(cfg: TaskConfig | None = None) -> MmluProTask:
            return MmluProTask(domain, cfg)

        build.__doc__ = f"MMLU-Pro, domain '{domain}'."
        return build

    return {f"mmlu_pro_{domain}": factory_for(domain) for domain in MMLU_PRO_DOMAINS}
