"""The task interface: examples, splits, and the protocol that carves them.

A task turns raw rows from a source into :class:`Example` objects (instruction + target +
gold answer), parses generated text back into an answer, and names its metrics.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from jola.config import TaskConfig
from jola.errors import UserError

TEST_PERMUTATION_SEED = 1234  # fixed: the test part of a labelled pool never depends on `seed`


@dataclass(frozen=True)
class Example:
    """One item: the instruction shown to the model, the target it is trained on, the gold answer.

    ``references`` holds every acceptable reference text for generation tasks. ``labels`` are the
    answer labels this item offers (choice tasks whose items differ, e.g. ARC with 3 or 5
    options); empty means all of the task's labels.
    """

    id: str
    instruction: str
    target: str
    answer: str
    references: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()


@dataclass
class RawData:
    """What a source returns before carving: labelled rows for training and for testing.

    ``train`` is None when the source has no training split: then train/dev are carved from
    ``test`` after a fixed test part is set aside. ``dev`` is the source's own dev split
    (the release's valid.json), when it has one: the dev set is then sampled from it.
    """

    test: list[Example]
    train: list[Example] | None
    description: str
    dev: list[Example] | None = None


@dataclass
class Splits:
    """Train/dev/test examples of one run and how they were obtained."""

    train: list[Example]
    dev: list[Example]
    test: list[Example]
    protocol: dict = field(default_factory=dict)

    def fingerprint(self) -> str:
        """sha256 over the ids and texts of every split: equal iff the data is the same."""
        digest = hashlib.sha256()
        for split_name, examples in (("train", self.train), ("dev", self.dev), ("test", self.test)):
            for ex in examples:
                line = json.dumps(
                    [split_name, ex.id, ex.instruction, ex.target], ensure_ascii=False
                )
                digest.update(line.encode())
        return digest.hexdigest()


def carve_splits(
    raw: RawData,
    n: int,
    seed: int,
    test_size: int,
    test_limit: int | None,
    cap_n: bool = False,
) -> Splits:
    """Sample ``n`` train and ``n`` dev examples with ``seed``; fix the test set.

    With a training split, the test set is the source's test split and train/dev are drawn from
    the training split (dev from the source's dev split when it has one, as the release samples
    valid.json). Without one, a seed-independent permutation sets the first ``test_size`` items
    aside as the test part and train/dev are drawn from the rest. ``cap_n`` shrinks an ``n``
    larger than the pool allows to the largest that fits, with a warning (data-size sweeps to
    100k); otherwise such an ``n`` is an error.
    """
    if n <= 0:
        raise UserError(f"n must be a positive number of training examples, got n={n}")
    if test_limit is not None and test_limit <= 0:
        raise UserError(f"task.test_limit must be positive or null, got {test_limit}")
    if raw.train is not None:
        pool, test = list(raw.train), list(raw.test)
        protocol = {"test": "source test split", "train_dev": "sampled from source train split"}
    else:
        if test_size <= 0 or test_size >= len(raw.test):
            raise UserError(
                f"task.test_size={test_size} must be in [1, {len(raw.test) - 1}] "
                f"for a pool of {len(raw.test)} labelled examples"
            )
        order = list(range(len(raw.test)))
        random.Random(TEST_PERMUTATION_SEED).shuffle(order)
        test = [raw.test[i] for i in sorted(order[:test_size])]
        pool = [raw.test[i] for i in sorted(order[test_size:])]
        protocol = {
            "test": f"fixed part of {test_size} items (permutation seed {TEST_PERMUTATION_SEED})",
            "train_dev": "sampled from the remaining labelled pool",
        }
    dev_pool = list(raw.dev) if raw.dev else None
    fits = len(pool) if dev_pool is not None else len(pool) // 2
    n_train = n
    if n > fits:
        if not cap_n or fits == 0:
            need = f"{n} examples" if dev_pool is not None else f"{2 * n} examples (n + n dev)"
            raise UserError(
                f"n={n} needs {need} but the pool has {len(pool)}; choose n <= {fits}"
                + ("" if cap_n else " (or task.cap_n=true to cap it)")
            )
        print(
            f"warning: n={n} exceeds what the train split holds; capped at n={fits}",
            file=sys.stderr,
        )
        n_train = fits
    rng = random.Random(seed)
    if dev_pool is not None:
        train = [pool[i] for i in rng.sample(range(len(pool)), n_train)]
        dev = [dev_pool[i] for i in rng.sample(range(len(dev_pool)), min(n_train, len(dev_pool)))]
        protocol["dev"] = "sampled from the source dev split (valid.json)"
    else:
        chosen = rng.sample(range(len(pool)), 2 * n_train)
        train = [pool[i] for i in chosen[:n_train]]
        dev = [pool[i] for i in chosen[n_train:]]
    if test_limit is not None:
        test = test[:test_limit]
    protocol.update(
        source=raw.description,
        pool_size=len(pool),
        test_size=len(test),
        test_limit=test_limit,
        n_requested=n,
        n_capped=n_train != n,
    )
    return Splits(train=train, dev=dev, test=test, protocol=protocol)


class Task(ABC):
    """A benchmark task. Subclasses set the class attributes and implement the row conversions.

    ``cfg`` (a :class:`~jola.config.TaskConfig`) carries options that change how the task reads
    answers, e.g. ``paper_compat``; the data options are used by the sources.
    """

    name: str
    suite: str
    metrics: tuple[str, ...] = ("acc",)
    default_max_new_tokens: int = 16
    packaged_path: str | None = None
    fixture_name: str | None = None  # folder under tasks/fixtures (default: the task name)

    def __init__(self, cfg: TaskConfig | None = None) -> None:
        self.paper_compat = bool(cfg is not None and cfg.paper_compat)

    @abstractmethod
    def example_from_hub_row(self, row: dict, row_id: str) -> Example:
        """Convert a row in the hub schema into an Example (raise ValueError if malformed)."""

    @abstractmethod
    def parse(self, generated: str) -> str:
        """Extract the answer from the first line of a generated response ('' if none)."""

    def keep_row(self, row: dict) -> bool:
        """Whether a source row belongs to this task (MMLU-Pro keeps one category)."""
        return True

    output_type: str = "generation"  # "choice": the answer is one of a fixed set of labels

    def candidates(self, example: Example, style: str = "label") -> dict[str, str] | None:
        """Label -> continuation text for log-likelihood scoring, in the target ``style``
        (None: not a choice task)."""
        return None

    def reference_accuracies(self, examples: Sequence[Example]) -> dict:
        """Chance and majority-class accuracy on ``examples`` (choice tasks; {} otherwise)."""
        return {}

    def render_target(self, target: str, style: str) -> str:
        """The training text for an Example's ``target`` in a target style (``label`` or
        ``sentence``, see :mod:`jola.prompts`); generation tasks train on the reference as is."""
        return target

    def metric_inputs(
        self, predictions: Sequence, examples: Sequence[Example]
    ) -> tuple[list, list]:
        """What the metrics compare: the parsed answer against the gold answer, item by item."""
        return [p.parsed for p in predictions], [ex.answer for ex in examples]

    def example_from_adapter_row(self, row: dict, row_id: str) -> Example:
        """Convert a row of the authors' files (instruction/answer; LLM-Adapters' ``output``
        sentence is not read: the target style decides what is trained, see jola.prompts)."""
        for key in ("instruction", "answer"):
            if not isinstance(row.get(key), str):
                raise ValueError(f"missing or non-string field '{key}'")
        instruction = row["instruction"]
        if row.get("input"):
            raise ValueError("non-empty 'input' field is not supported by this task")
        answer = row["answer"].strip()
        return Example(id=row_id, instruction=instruction, target=answer, answer=answer)


def convert_rows(
    rows,
    convert: Callable[[dict, str], Example],
    where: str,
    id_prefix: str,
    keep: Callable[[dict], bool] | None = None,
) -> list[Example]:
    """Convert rows one by one; a malformed row raises a UserError naming file and row.

    Rows that ``keep`` rejects are skipped; ids keep the row's index in the unfiltered source.
    """
    examples = []
    for index, row in enumerate(rows):
        row = dict(row)
        if keep is not None and not keep(row):
            continue
        try:
            examples.append(convert(row, f"{id_prefix}-{index}"))
        except (ValueError, KeyError, TypeError) as err:
            raise UserError(f"malformed row {index} in {where}: {err}") from err
    return examples
