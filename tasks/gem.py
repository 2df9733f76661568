"""GEM generation tasks (CommonGen, E2E NLG, WebNLG, XSum) with PromptSource prompts.

The paper takes its prompts from PromptSource; each task uses one of that project's templates
for the dataset (named in the class docstring), rendered without the target. Rows are in the
schema of the GEM benchmark's datasets (``gem_id``, ``target``, ``references`` and the task's
input fields) or in the schema of another hub copy of the same data, detected by column names
(each task's ``schemas``): the input fields are the same, only the reference column differs
(XSum's ``summary`` in EdinburghNLP/xsum, E2E's ``human_reference`` in tuetschek/e2e_nlg), and
it becomes the one reference of the row. ``GEM/*`` on the hub are loading-script datasets, so
the hub source reads their parquet export (``hub_revision: refs/convert/parquet``, optionally
``@<commit>``; see each task's YAML).
"""

from __future__ import annotations

from abc import abstractmethod

from tasks.base import Example
from tasks.choice import require_text, require_text_list
from tasks.commonsense import schema_variant
from tasks.generation import GenerationTask


class GemTask(GenerationTask):
    """Base of the GEM tasks; subclasses build the PromptSource instruction."""

    suite = "gem"
    # (name, columns, reference column) of each row schema, the GEM benchmark's first; rows of a
    # schema whose reference column is not ``target`` have that one text as their reference
    schemas: tuple[tuple[str, tuple[str, ...], str], ...] = ()

    @abstractmethod
    def instruction_for(self, row: dict) -> str:
        """The PromptSource prompt for one row (raise ValueError if a field is malformed)."""

    def example_from_hub_row(self, row: dict, row_id: str) -> Example:
        variant = schema_variant(row, [(name, columns) for name, columns, _ in self.schemas])
        reference_column = next(ref for name, _, ref in self.schemas if name == variant)
        instruction = self.instruction_for(row)
        if reference_column == "target":
            return self.reference_example(row, row_id, instruction)
        (reference,) = require_text(row, reference_column)
        return self.reference_example({"target": reference}, row_id, instruction)


class CommonGen(GemTask):
    """CommonGen: ``concepts`` (list) -> a sentence. PromptSource common_gen 'Put together'."""

    name = "common_gen"
    schemas = (
        ("GEM/common_gen", ("concepts", "target"), "target"),  # allenai/common_gen too
    )

    def instruction_for(self, row: dict) -> str:
        concepts = require_text_list(row, "concepts")
        return f"Put the concepts together to form a sentence: {', '.join(concepts)}."


class E2ENlg(GemTask):
    """E2E NLG: ``meaning_representation`` -> restaurant description.

    PromptSource e2e_nlg_cleaned 'e2e_basic_1' (its "dinery" kept as written).
    """

    name = "e2e_nlg"
    schemas = (
        ("GEM/e2e_nlg", ("meaning_representation", "target"), "target"),
        ("tuetschek/e2e_nlg", ("meaning_representation", "human_reference"), "human_reference"),
    )

    def instruction_for(self, row: dict) -> str:
        (meaning,) = require_text(row, "meaning_representation")
        return f"Given the following data: {meaning} Generate a sentence about this dinery."


class WebNlg(GemTask):
    """WebNLG (en): ``input`` (list of 'subject | predicate | object') -> text.

    PromptSource GEM/web_nlg/en 'implicit-graph-description'.
    """

    name = "web_nlg"
    schemas = (("GEM/web_nlg", ("input", "target"), "target"),)

    def instruction_for(self, row: dict) -> str:
        triples = require_text_list(row, "input")
        return (
            f"{'; '.join(triples)}\n"
            "The above is a collection of relations. "
            "Write descriptive English that contains this information."
        )


class XSum(GemTask):
    """XSum: ``document`` -> one-sentence summary.

    PromptSource GEM/xsum 'DOC_given_above_write_one_sentence'.
    """

    name = "xsum"
    schemas = (
        ("GEM/xsum", ("document", "target"), "target"),
        ("EdinburghNLP/xsum", ("document", "summary"), "summary"),
    )

    def instruction_for(self, row: dict) -> str:
        (document,) = require_text(row, "document")
        return f"{document}\n\n===\n\nGiven the above document, write one sentence to summarize:"


GEM_TASKS = (CommonGen, E2ENlg, WebNlg, XSum)
