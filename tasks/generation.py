"""Generation tasks: the answer is free text scored against one or more references.

The prediction is the first line of the response, unparsed (the release also strips every "."
from it; this project does not). Metrics receive, per item, the list of reference texts.
"""

from __future__ import annotations

from collections.abc import Sequence

from tasks.base import Example, Task


class GenerationTask(Task):
    """A text-generation task; the training target is the first reference."""

    metrics = ("bleu", "rougeL", "bertscore")
    default_max_new_tokens = 64

    def parse(self, generated: str) -> str:
        """The response's first line itself ('' counts as a parse failure)."""
        return generated.strip()

    def metric_inputs(
        self, predictions: Sequence, examples: Sequence[Example]
    ) -> tuple[list, list]:
        """First lines against every reference of the item (the target when there is no list)."""
        hypotheses = [p.first_line for p in predictions]
        references = [list(ex.references) or [ex.target] for ex in examples]
        return hypotheses, references

    def reference_example(self, row: dict, row_id: str, instruction: str) -> Example:
        """An Example whose target is the row's first reference (or its ``target``)."""
        target, references = row_references(row)
        return Example(
            id=row_id,
            instruction=instruction,
            target=target,
            answer=target,
            references=references,
        )


def row_references(row: dict) -> tuple[str, tuple[str, ...]]:
    """(target, references) of a GEM-style row: ``references`` (list) and/or ``target`` (str).

    GEM's training rows have one ``target`` and an empty ``references`` list; its validation and
    test rows list every reference. Blank references are dropped.
    """
    raw = row.get("references")
    if raw is None:
        raw = []
    if not isinstance(raw, (list, tuple)) or not all(isinstance(r, str) for r in raw):
        raise ValueError("field 'references' must be a list of strings")
    references = tuple(r for r in raw if r.strip())
    target = row.get("target")
    if target is not None and not isinstance(target, str):
        raise ValueError("field 'target' must be a string")
    if references:
        return references[0], references
    if target and target.strip():
        return target, (target,)
    raise ValueError("no reference text (empty 'target' and 'references')")
