"""GEM generation tasks (CommonGen, E2E NLG, WebNLG, XSum) with PromptSource prompts.

The paper takes its prompts from PromptSource; each task uses one of that project's templates
for the dataset (named in the class docstring), rendered without the target. Rows are in the
schema of the GEM benchmark's datasets (``gem_id``, ``target``, ``references`` and the task's
input fields); ``GEM/*`` on the hub are loading-script datasets, so the hub source reads their
parquet export (``hub_revision: refs/convert/parquet``; see each task's YAML).
"""

from __future__ import annotations

from abc import abstractmethod

from tasks.base import Example
from tasks.choice import require_text, require_text_list
from tasks.generation import GenerationTask


class GemTask(GenerationTask):
    """Base of the GEM tasks; subclasses build the PromptSource instruction."""

    suite = "gem"

    @abstractmethod
    def instruction_for(self, row: dict) -> str:
        """The PromptSource prompt for one row (raise ValueError if a field is malformed)."""

    def example_from_hub_row(self, row: dict, row_id: str) -> Example:
        return self.reference_example(row, row_id, self.instruction_for(row))


class CommonGen(GemTask):
    """CommonGen: ``concepts`` (list) -> a sentence. PromptSource common_gen 'Put together'."""

    name = "common_gen"

    def instruction_for(self, row: dict) -> str:
        concepts = require_text_list(row, "concepts")
        return f"Put the concepts together to form a sentence: {', '.join(concepts)}."


class E2ENlg(GemTask):
    """E2E NLG: ``meaning_representation`` -> restaurant description.

    PromptSource e2e_nlg_cleaned 'e2e_basic_1' (its "dinery" kept as written).
    """

    name = "e2e_nlg"

    def instruction_for(self, row: dict) -> str:
        (meaning,) = require_text(row, "meaning_representation")
        return f"Given the following data: {meaning} Generate a sentence about this dinery."


class WebNlg(GemTask):
    """WebNLG (en): ``input`` (list of 'subject | predicate | object') -> text.

    PromptSource GEM/web_nlg/en 'implicit-graph-description'.
    """

    name = "web_nlg"

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

    def instruction_for(self, row: dict) -> str:
        (document,) = require_text(row, "document")
        return f"{document}\n\n===\n\nGiven the above document, write one sentence to summarize:"


GEM_TASKS = (CommonGen, E2ENlg, WebNlg, XSum)
