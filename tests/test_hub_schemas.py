"""Hub sources in the layouts and row schemas the real hub copies have, written locally.

Each test writes a small stand-in of a hub repository into a temporary folder (parquet files
laid out as the hub stores them, with the README ``configs`` block where the repository has
configs), points ``task.hub_id`` at it and loads it through the real ``tasks.sources.load_hub``.
The items are the fixture rows (today's schema) rewritten into each variant; every variant must
give the same instruction, target, answer and references, byte for byte, as today's schema.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from datasets import ClassLabel, Dataset, Features, Value

from jola.config import TaskConfig
from jola.errors import UserError
from tasks import get_task
from tasks.sources import FIXTURE_ROOT, SOURCES, hub_load_arguments, load_hub

SHA = "0123456789abcdef0123456789abcdef01234567"


def fixture_rows(name: str, split: str = "test") -> list[dict]:
    path = FIXTURE_ROOT / name / f"{split}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def write_parquet(path: Path, rows: list[dict], features: Features | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Dataset.from_list(rows, features=features).to_parquet(str(path))


def shared_features(splits: dict[str, list[dict]]) -> Features:
    """One schema for every split, as the hub's files have (GEM's empty training references
    alone would be typed list<null>)."""
    return Dataset.from_list([row for rows in splits.values() for row in rows]).features


def write_repo(
    root: Path,
    splits: dict[str, list[dict]],
    config: str | None = None,
    features: Features | None = None,
) -> None:
    """A parquet-backed hub repository: data/<split>-00000-of-00001.parquet, or for a config
    <config>/<split>-00000-of-00001.parquet with the README block that declares it."""
    folder = root / (config or "data")
    features = features or shared_features(splits)
    for split, rows in splits.items():
        write_parquet(folder / f"{split}-00000-of-00001.parquet", rows, features)
    if config:
        files = "".join(f"  - split: {split}\n    path: {config}/{split}-*\n" for split in splits)
        (root / "README.md").write_text(
            f"---\nconfigs:\n- config_name: {config}\n  data_files:\n{files}---\n"
        )


def write_export(root: Path, config: str, splits: dict[str, list[dict]]) -> None:
    """The parquet export branch (refs/convert/parquet): <config>/<split>/0000.parquet."""
    features = shared_features(splits)
    for split, rows in splits.items():
        write_parquet(root / config / split / "0000.parquet", rows, features)


def signature(examples) -> list[tuple]:
    """What must be identical across schemas (ids differ: they name the split)."""
    return [(e.instruction, e.target, e.answer, e.references, e.labels) for e in examples]


def from_fixture(name: str):
    return SOURCES.get("fixture")(get_task(name), TaskConfig(name=name))


def hub(name: str, root: Path, **settings):
    cfg = TaskConfig(name=name, source="hub", hub_id=str(root), **settings)
    return load_hub(get_task(name, cfg), cfg)


# --- commonsense --------------------------------------------------------------------------


def ai2_jsonl_row(row: dict, question_field: str) -> dict:
    """AI2's original release: question {stem, choices: [{text, label}]}, answerKey."""
    choices = [
        {"text": text, "label": label}
        for text, label in zip(row["choices"]["text"], row["choices"]["label"], strict=True)
    ]
    return {
        "id": row["id"],
        "question": {"stem": row[question_field], "choices": choices},
        "answerKey": row["answerKey"],
    }


@pytest.mark.parametrize(
    "name, config, question_field",
    [
        ("arc_c", "ARC-Challenge", "question"),
        ("arc_e", "ARC-Easy", "question"),
        ("obqa", "main", "question_stem"),
    ],
)
def test_arc_and_obqa_hub_layout_and_ai2_jsonl_schema(tmp_path, name, config, question_field):
    expected = from_fixture(name)
    splits = {"train": fixture_rows(name, "train"), "test": fixture_rows(name)}
    write_repo(tmp_path / "hub", splits, config=config)
    raw = hub(name, tmp_path / "hub", hub_config=config, hub_revision=SHA, hub_test_split="test")
    assert signature(raw.test) == signature(expected.test)
    assert signature(raw.train) == signature(expected.train)
    assert raw.description == f"hub:{tmp_path / 'hub'}[{config}]@{SHA}"
    nested = {s: [ai2_jsonl_row(r, question_field) for r in rows] for s, rows in splits.items()}
    write_repo(tmp_path / "ai2", nested)
    raw = hub(name, tmp_path / "ai2", hub_test_split="test")
    assert signature(raw.test) == signature(expected.test)


def test_boolq_google_and_super_glue_schemas(tmp_path):
    expected = from_fixture("boolq")
    rows = {"train": fixture_rows("boolq", "train"), "validation": fixture_rows("boolq")}
    write_repo(tmp_path / "google", rows)
    assert signature(hub("boolq", tmp_path / "google").test) == signature(expected.test)
    glue = {
        split: [
            {
                "question": r["question"],
                "passage": r["passage"],
                "idx": i,
                "label": int(r["answer"]),
            }
            for i, r in enumerate(split_rows)
        ]
        for split, split_rows in rows.items()
    }
    features = Features(
        {
            "question": Value("string"),
            "passage": Value("string"),
            "idx": Value("int32"),
            "label": ClassLabel(names=["False", "True"]),
        }
    )
    write_repo(tmp_path / "glue", glue, config="boolq", features=features)
    raw = hub("boolq", tmp_path / "glue", hub_config="boolq")
    assert signature(raw.test) == signature(expected.test)
    assert signature(raw.train) == signature(expected.train)


def test_hellaswag_with_ctx_and_with_ctx_a_ctx_b_int_labels(tmp_path):
    expected = from_fixture("hellaswag")
    rows = {"train": fixture_rows("hellaswag", "train"), "validation": fixture_rows("hellaswag")}
    write_repo(tmp_path / "rowan", rows)
    assert signature(hub("hellaswag", tmp_path / "rowan").test) == signature(expected.test)
    jsonl = {
        split: [
            {**{k: v for k, v in r.items() if k != "ctx"}, "label": int(r["label"])} for r in rs
        ]
        for split, rs in rows.items()
    }
    write_repo(tmp_path / "original", jsonl)
    assert signature(hub("hellaswag", tmp_path / "original").test) == signature(expected.test)


def test_piqa_class_label_copy_with_a_config(tmp_path):
    expected = from_fixture("piqa")
    features = Features(
        {
            "goal": Value("string"),
            "sol1": Value("string"),
            "sol2": Value("string"),
            "label": ClassLabel(names=["0", "1"]),
        }
    )
    rows = {"train": fixture_rows("piqa", "train"), "validation": fixture_rows("piqa")}
    write_repo(tmp_path, rows, config="plain_text", features=features)
    raw = hub("piqa", tmp_path, hub_config="plain_text", hub_revision=SHA)
    assert signature(raw.test) == signature(expected.test)
    assert signature(raw.train) == signature(expected.train)


def siqa_choices_row(row: dict, answer) -> dict:
    options = [row["answerA"], row["answerB"], row["answerC"]]
    return {
        "context": row["context"],
        "question": row["question"],
        "choices": options,
        "answer": answer,
    }


def test_siqa_string_labels_class_labels_and_choices_schema(tmp_path):
    expected = from_fixture("siqa")
    rows = {"train": fixture_rows("siqa", "train"), "validation": fixture_rows("siqa")}
    write_repo(tmp_path / "lighteval", rows)
    assert signature(hub("siqa", tmp_path / "lighteval").test) == signature(expected.test)
    zero_based = {s: [{**r, "label": int(r["label"]) - 1} for r in rs] for s, rs in rows.items()}
    write_repo(tmp_path / "classlabel", zero_based)
    assert signature(hub("siqa", tmp_path / "classlabel").test) == signature(expected.test)
    for answer in (lambda r: "ABC"[int(r["label"]) - 1], lambda r: int(r["label"]) - 1):
        choices = {s: [siqa_choices_row(r, answer(r)) for r in rs] for s, rs in rows.items()}
        folder = tmp_path / f"choices-{type(answer(rows['train'][0])).__name__}"
        write_repo(folder, choices)
        assert signature(hub("siqa", folder).test) == signature(expected.test)


def test_siqa_rows_without_context_are_refused_with_the_reason(tmp_path):
    rows = [
        {k: v for k, v in siqa_choices_row(r, "A").items() if k != "context"}
        for r in fixture_rows("siqa")
    ]
    write_repo(tmp_path, {"train": rows, "validation": rows})
    with pytest.raises(UserError, match=r"row 0 .*without a 'context' column .*lighteval/siqa"):
        hub("siqa", tmp_path)


def test_winogrande_config_layout(tmp_path):
    expected = from_fixture("winogrande")
    rows = {"train": fixture_rows("winogrande", "train"), "validation": fixture_rows("winogrande")}
    write_repo(tmp_path, rows, config="winogrande_xl")
    raw = hub("winogrande", tmp_path, hub_config="winogrande_xl", hub_revision=SHA)
    assert signature(raw.test) == signature(expected.test)


# --- MMLU-Pro -----------------------------------------------------------------------------


def mmlu_rows() -> list[dict]:
    return fixture_rows("mmlu_pro") + fixture_rows("mmlu_pro", "train")


def test_mmlu_pro_layout_answer_index_only_and_na_padding(tmp_path):
    cfg = TaskConfig(name="mmlu_pro_biology", source="fixture")
    task = get_task("mmlu_pro_biology", cfg)
    expected = [task.example_from_hub_row(r, "x") for r in mmlu_rows() if task.keep_row(r)]
    assert expected
    variants = {
        "tiger": mmlu_rows(),
        "index-only": [{k: v for k, v in r.items() if k != "answer"} for r in mmlu_rows()],
        "padded": [
            {**r, "options": r["options"] + ["N/A"] * (10 - len(r["options"]))} for r in mmlu_rows()
        ],
    }
    for name, rows in variants.items():
        write_repo(tmp_path / name, {"test": rows, "validation": rows[:2]})
        raw = hub(
            "mmlu_pro_biology",
            tmp_path / name,
            hub_train_split=None,
            hub_test_split="test",
            hub_revision=SHA,
        )
        assert signature(raw.test) == signature(expected), name
        assert raw.train is None
        assert raw.description == f"hub:{tmp_path / name}@{SHA}:test"


def test_mmlu_pro_na_padding_of_a_short_item():
    task = get_task("mmlu_pro_biology")
    row = {**mmlu_rows()[0], "options": ["a", "b", "c", "d"], "answer": "C", "answer_index": 2}
    padded = {**row, "options": row["options"] + ["N/A"] * 6}
    assert signature([task.example_from_hub_row(padded, "x")]) == signature(
        [task.example_from_hub_row(row, "x")]
    )


# --- GEM ----------------------------------------------------------------------------------


def test_common_gen_pinned_export_skips_challenge_sets(tmp_path):
    expected = from_fixture("common_gen")
    train, test = fixture_rows("common_gen", "train"), fixture_rows("common_gen")
    write_export(
        tmp_path,
        "default",
        {"train": train, "validation": test, "challenge_train_sample": train[:2]},
    )
    revision = f"refs/convert/parquet@{SHA}"
    cfg = TaskConfig(
        name="common_gen",
        source="hub",
        hub_id=str(tmp_path),
        hub_config="default",
        hub_revision=revision,
        hub_test_split="validation",
    )
    args, kwargs = hub_load_arguments(get_task("common_gen"), cfg)
    assert kwargs["revision"] == SHA
    assert kwargs["data_files"] == {
        "train": "default/train/*.parquet",
        "validation": "default/validation/*.parquet",
    }
    raw = load_hub(get_task("common_gen", cfg), cfg)
    assert signature(raw.test) == signature(expected.test)
    assert signature(raw.train) == signature(expected.train)
    assert raw.description == f"hub:{tmp_path}[default]@{revision}"


def test_common_gen_allenai_schema_gives_the_same_instructions(tmp_path):
    expected = from_fixture("common_gen")
    rows = [
        {"concept_set_idx": r["concept_set_id"], "concepts": r["concepts"], "target": r["target"]}
        for r in fixture_rows("common_gen", "train")
    ]
    write_repo(tmp_path, {"train": rows, "validation": rows})
    raw = hub("common_gen", tmp_path)
    assert signature(raw.train) == signature(expected.train)


@pytest.mark.parametrize(
    "name, column, keep",
    [
        ("xsum", "summary", ("document",)),
        ("e2e_nlg", "human_reference", ("meaning_representation",)),
    ],
)
def test_single_reference_copies_give_the_same_items(tmp_path, name, column, keep):
    """EdinburghNLP/xsum (document, summary, id) and tuetschek/e2e_nlg (meaning_representation,
    human_reference): the one reference column is the target and the only reference."""
    expected = from_fixture(name)
    splits = {}
    for split in ("train", "test"):
        splits[split] = [
            {**{k: r[k] for k in keep}, column: r["target"], "id": str(i)}
            for i, r in enumerate(fixture_rows(name, split))
        ]
    write_export(tmp_path, "default", splits)
    raw = hub(
        name,
        tmp_path,
        hub_config="default",
        hub_revision="refs/convert/parquet",
        hub_test_split="test",
    )
    assert signature(raw.train) == signature(expected.train)
    got = [(e.instruction, e.target, e.references) for e in raw.test]
    want = [
        (e.instruction, r["target"], (r["target"],))
        for e, r in zip(expected.test, fixture_rows(name), strict=True)
    ]
    assert got == want


def test_web_nlg_export_layout(tmp_path):
    expected = from_fixture("web_nlg")
    write_export(
        tmp_path, "en", {"train": fixture_rows("web_nlg", "train"), "test": fixture_rows("web_nlg")}
    )
    raw = hub(
        "web_nlg",
        tmp_path,
        hub_config="en",
        hub_revision="refs/convert/parquet",
        hub_test_split="test",
    )
    assert signature(raw.test) == signature(expected.test)


# --- errors -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, columns",
    [
        ("piqa", ("question", "choices", "answer")),
        ("xsum", ("article", "highlights")),
        ("mmlu_pro_law", ("question", "choices", "category")),
    ],
)
def test_unknown_schema_is_a_one_line_error_listing_the_columns(tmp_path, name, columns):
    row = {column: "law" if column == "category" else "x" for column in columns}
    write_repo(tmp_path, {"train": [row], "test": [row], "validation": [row]})
    cfg = {"hub_train_split": None, "hub_test_split": "test"} if name.startswith("mmlu") else {}
    with pytest.raises(UserError) as err:
        hub(name, tmp_path, **cfg)
    message = str(err.value)
    assert "\n" not in message
    assert f"columns found: {', '.join(columns)}; expected" in message
    assert message.startswith("malformed row 0 in ")


def test_export_revision_needs_a_full_sha():
    cfg = TaskConfig(
        name="web_nlg",
        source="hub",
        hub_id="GEM/web_nlg",
        hub_revision="refs/convert/parquet@b46d140",
    )
    with pytest.raises(UserError, match="40 lower-case hex digits"):
        hub_load_arguments(get_task("web_nlg"), cfg)


def test_unpinned_hub_source_is_named_so(tmp_path):
    write_repo(
        tmp_path, {"train": fixture_rows("piqa", "train"), "validation": fixture_rows("piqa")}
    )
    assert hub("piqa", tmp_path).description == f"hub:{tmp_path}@unpinned"


# --- the YAMLs' hub settings --------------------------------------------------------------

KYS_ARC = "210d026faf9955653af8916fad021475a3f00453"
MMLU_PRO = ("TIGER-Lab/MMLU-Pro", None, "3373e0b32277875b8db2aa555a333b78a08477ea", None, "test")
EXPECTED_HUB = {
    "arc_c": ("allenai/ai2_arc", "ARC-Challenge", KYS_ARC, "train", "test"),
    "arc_e": ("allenai/ai2_arc", "ARC-Easy", KYS_ARC, "train", "test"),
    "obqa": (
        "allenai/openbookqa",
        "main",
        "388097ea7776314e93a529163e0fea805b8a6454",
        "train",
        "test",
    ),
    "boolq": (
        "google/boolq",
        None,
        "35b264d03638db9f4ce671b711558bf7ff0f80d5",
        "train",
        "validation",
    ),
    "hellaswag": (
        "Rowan/hellaswag",
        None,
        "218ec52e09a7e7462a5400043bb9a69a41d06b76",
        "train",
        "validation",
    ),
    "piqa": (
        "lighteval/piqa",
        "plain_text",
        "41782e6bf0ef7de82a2ca8a9feb1dca042837fae",
        "train",
        "validation",
    ),
    "siqa": (
        "lighteval/siqa",
        None,
        "54c6a1f8cb6daf4f5abf24a601852612fb35eb25",
        "train",
        "validation",
    ),
    "winogrande": (
        "allenai/winogrande",
        "winogrande_xl",
        "01e74176c63542e6b0bcb004dcdea22d94fb67b5",
        "train",
        "validation",
    ),
    "common_gen": (
        "GEM/common_gen",
        "default",
        "refs/convert/parquet@62063f847b090959b6fd342f9c8582f61a6bbb53",
        "train",
        "validation",
    ),
    "e2e_nlg": ("GEM/e2e_nlg", "default", "refs/convert/parquet", "train", "test"),
    "web_nlg": ("GEM/web_nlg", "en", "refs/convert/parquet", "train", "test"),
    "xsum": ("EdinburghNLP/xsum", "default", "refs/convert/parquet", "train", "test"),
}


def test_yamls_pin_the_documented_sources_and_the_paper_splits():
    """ARC-c/ARC-e/OBQA test on their test split, the other commonsense tasks on validation,
    train/dev from train; MMLU-Pro carves from test; GEM reads train + test (validation for
    CommonGen, whose test references are hidden)."""
    from tasks import TASKS
    from tasks.catalog import task_config

    names = TASKS.names()
    assert len(names) == 26
    for name in names:
        cfg = task_config(name)
        want = MMLU_PRO if name.startswith("mmlu_pro_") else EXPECTED_HUB[name]
        got = (
            cfg.hub_id,
            cfg.hub_config,
            cfg.hub_revision,
            cfg.hub_train_split,
            cfg.hub_test_split,
        )
        assert got == want, name
        # every revision is a full sha, the export branch, or a pinned commit of it
        hub_load_arguments(get_task(name, cfg), cfg)
