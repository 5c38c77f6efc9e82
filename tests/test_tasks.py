"""Task specs: built-in tasks, deterministic fingerprinted splits, and errors naming file and field."""

from __future__ import annotations

import csv
import random
import textwrap

import pytest

from core import paths
from core.data.items import SPLIT_NAMES, fingerprint
from core.tasks import spec as tasks
from core.tasks.spec import TaskSpecError, get_task, list_tasks, load_split, load_task_file

BUILTIN = {"eps_extraction", "fin_sentiment", "revenue_analysis"}
BUILTIN |= {"client_sentiment", "client_category", "client_priority"}
BUILTIN |= {"review_rating", "review_features", "review_summary"}  # tests/test_reviews.py


def test_the_default_suite_is_the_finance_tasks_and_the_demo_scores_it(finboard_home, tmp_path):
    from core.workflows.demo import demo_plan

    finance = {spec.name for spec in list_tasks() if spec.in_default_suite}
    assert finance == {"eps_extraction", "fin_sentiment", "revenue_analysis"}
    evaluated = {task for kind, params in demo_plan() if kind == "eval" for task in params["tasks"]}
    assert evaluated == finance
    bad = tmp_path / "bad_suite.yaml"
    bad.write_text(get_task("fin_sentiment").path.read_text() + "suite: everything\n")
    with pytest.raises(TaskSpecError, match=r"bad_suite.yaml, field 'suite'"):
        load_task_file(bad)


def test_builtin_tasks_load(finboard_home):
    specs = {spec.name: spec for spec in list_tasks()}
    assert set(specs) == BUILTIN
    sentiment = specs["fin_sentiment"]
    assert sentiment.kind == "choice"
    assert sentiment.labels == ["positive", "neutral", "negative"]
    assert sentiment.metrics == ["accuracy", "macro_f1"]
    assert sentiment.primary_metric == "accuracy"
    assert not sentiment.is_generation
    assert sentiment.builtin
    eps = specs["eps_extraction"]
    assert eps.kind == "numeric" and eps.is_generation
    assert eps.tolerance == tasks.Tolerance(absolute=0.01, relative=0.0)
    assert eps.max_new_tokens == 40 and eps.stop == ["\n"]
    assert specs["revenue_analysis"].tolerance.absolute == pytest.approx(0.1)
    for spec in specs.values():
        assert spec.version == 1
        assert spec.path.parent == paths.BUILTIN_TASKS_DIR
        assert len(spec.prompt_hash) == 64
        assert get_task(spec.name) == spec


@pytest.mark.parametrize("name", sorted(BUILTIN))
def test_builtin_splits_are_deterministic_and_disjoint(name):
    spec = get_task(name)
    first = {split: load_split(spec, split) for split in SPLIT_NAMES}
    tasks._synthetic_splits.cache_clear()  # regenerate from scratch, not from the cache
    second = {split: load_split(spec, split) for split in SPLIT_NAMES}
    for split in SPLIT_NAMES:
        assert len(first[split]) == spec.source["sizes"][split]
        assert first[split].fingerprint == second[split].fingerprint
        assert [i.id for i in first[split].items] == [i.id for i in second[split].items]
        assert [i.answer for i in first[split].items] == [i.answer for i in second[split].items]
        assert first[split].fingerprint == fingerprint([i.id for i in first[split].items])
        assert len({i.id for i in first[split].items}) == len(first[split])
    ids = {split: {i.id for i in first[split].items} for split in SPLIT_NAMES}
    texts = {split: {i.fields["text"] for i in first[split].items} for split in SPLIT_NAMES}
    for a, b in [("train", "validation"), ("train", "test"), ("validation", "test")]:
        assert not ids[a] & ids[b]
        assert not texts[a] & texts[b]  # no item leaks between splits, not even under another id
    assert len({first[s].fingerprint for s in SPLIT_NAMES}) == 3


def test_fingerprint_changes_with_the_items_and_not_their_order():
    spec = get_task("fin_sentiment")
    split = load_split(spec, "test")
    assert split.head(10).fingerprint != split.fingerprint
    assert split.head(10).fingerprint == fingerprint([i.id for i in reversed(split.items[:10])])
    assert split.head(None) is split


def test_prompt_hash_changes_with_the_prompt_only(tmp_path):
    base = dict(VALID_CHOICE)
    a = tasks.parse_task(tmp_path / "a.yaml", base)
    b = tasks.parse_task(tmp_path / "b.yaml", {**base, "source": {**base["source"], "seed": 99}})
    c = tasks.parse_task(tmp_path / "c.yaml", {**base, "instruction": "Another instruction."})
    assert a.prompt_hash == b.prompt_hash
    assert a.prompt_hash != c.prompt_hash


def test_unknown_split_name():
    with pytest.raises(TaskSpecError, match="Unknown split 'dev'"):
        load_split(get_task("fin_sentiment"), "dev")


# ---------------------------------------------------------------- bad task files

VALID_CHOICE = {
    "name": "t",
    "kind": "choice",
    "source": {
        "type": "synthetic",
        "generator": "fin_sentiment",
        "seed": 1,
        "sizes": {"train": 5, "validation": 2, "test": 3},
    },
    "template": "Sentence: {text}\nSentiment:",
    "labels": ["positive", "neutral", "negative"],
}


def _yaml(data: dict) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False)


def _with(**changes) -> str:
    data = {**VALID_CHOICE, **changes}
    return _yaml({k: v for k, v in data.items() if v is not None})


BAD_TASKS = {
    "unknown kind": (_with(kind="ranking"), "kind"),
    "missing template": (_with(template=None), "template"),
    "missing name": (_with(name=None), "name"),
    "missing source": (_with(source=None), "source"),
    "unknown placeholder": (_with(template="Headline: {headline}\nSentiment:"), "template"),
    "broken template": (_with(template="Sentence: {text\nSentiment:"), "template"),
    "unknown metric": (_with(metrics=["accuracy", "bleu"]), "metrics"),
    "metric of another kind": (_with(metrics=["accuracy", "mae"]), "metrics"),
    "primary not in metrics": (
        _with(metrics=["accuracy"], primary_metric="macro_f1"),
        "primary_metric",
    ),
    "one label": (_with(labels=["positive"]), "labels"),
    "duplicate labels": (_with(labels=["positive", "positive"]), "labels"),
    "no labels": (_with(labels=None), "labels"),
    "bad source type": (_with(source={"type": "s3", "bucket": "x"}), "source.type"),
    "unknown generator": (
        _with(source={"type": "synthetic", "generator": "stock_prices"}),
        "source.generator",
    ),
    "bad sizes": (
        _with(source={"type": "synthetic", "generator": "fin_sentiment", "sizes": {"dev": 3}}),
        "source.sizes",
    ),
    "negative size": (
        _with(source={"type": "synthetic", "generator": "fin_sentiment", "sizes": {"test": -1}}),
        "source.sizes",
    ),
    "file without path": (
        _with(source={"type": "file", "columns": {"text": "a", "label": "b"}}),
        "source.path",
    ),
    "file without columns": (
        _with(source={"type": "file", "path": "d.csv", "columns": {"text": "a"}}),
        "source.columns",
    ),
    "file split too big": (
        _with(
            source={
                "type": "file",
                "path": "d.csv",
                "columns": {"text": "a", "label": "b"},
                "split": {"test": 0.6, "validation": 0.5},
            }
        ),
        "source.split",
    ),
    "non-numeric num_shots": (_with(num_shots="three"), "num_shots"),
    "unknown calibration": (_with(calibration="platt"), "calibration"),
    "unknown top-level field": (_with(prompt="x"), "prompt"),
}


@pytest.mark.parametrize("case", list(BAD_TASKS))
def test_bad_task_file_names_file_and_field(tmp_path, case):
    text, field_name = BAD_TASKS[case]
    path = tmp_path / "my_task.yaml"
    path.write_text(text)
    with pytest.raises(TaskSpecError) as info:
        load_task_file(path)
    message = str(info.value)
    assert str(path) in message, message
    assert "field '" in message and field_name in message.split("field '", 1)[1].split("'")[0], (
        message
    )


def test_valid_base_of_the_bad_cases_loads(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text(_with())
    spec = load_task_file(path)
    assert spec.name == "t" and spec.metrics == ["accuracy", "macro_f1"]
    assert len(load_split(spec, "test")) == 3


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("name: t\nkind: [choice\n", "not valid YAML"),
        ("- a\n- b\n", "mapping"),
        (b"name: \xff\xfe\n", "not valid YAML"),
    ],
    ids=["invalid yaml", "not a mapping", "not utf-8"],
)
def test_unreadable_task_file_names_the_file(tmp_path, text, fragment):
    path = tmp_path / "broken.yaml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    with pytest.raises(TaskSpecError) as info:
        load_task_file(path)
    assert str(path) in str(info.value)
    assert fragment in str(info.value)


def test_missing_task_file(tmp_path):
    with pytest.raises(TaskSpecError, match="not found"):
        load_task_file(tmp_path / "absent.yaml")


def test_generation_task_template_may_only_use_prompt_for_files(tmp_path):
    spec = {
        "name": "qa",
        "kind": "numeric",
        "template": "{text}\nAnswer:",
        "source": {"type": "file", "path": "qa.csv", "columns": {"prompt": "q", "answer": "a"}},
    }
    with pytest.raises(TaskSpecError, match=r"field 'template'.*\['text'\].*\['prompt'\]"):
        tasks.parse_task(tmp_path / "qa.yaml", spec)


# ---------------------------------------------------------------- file tasks

LABELS = ["positive", "neutral", "negative"]


def write_csv(path, rows):
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["uid", "headline", "tone"])
        writer.writerows(rows)


def make_rows(start: int, stop: int):
    return [
        [f"id-{n}", f"Headline number {n} about quarterly results", LABELS[n % 3]]
        for n in range(start, stop)
    ]


def write_file_task(directory, name="my_file_task", data="data.csv", seed=0):
    path = directory / f"{name}.yaml"
    path.write_text(
        textwrap.dedent(f"""
        name: {name}
        kind: choice
        source:
          type: file
          path: {data}
          columns: {{id: uid, text: headline, label: tone}}
          split: {{validation: 0.1, test: 0.2}}
          seed: {seed}
        template: "Headline: {{text}}\\nTone:"
        labels: [positive, neutral, negative]
    """)
    )
    return path


def test_file_task_splits_deterministically_by_id_hash(tmp_path):
    rows = make_rows(0, 300)
    write_csv(tmp_path / "data.csv", rows)
    spec = load_task_file(write_file_task(tmp_path))  # a relative path is resolved next to the YAML
    assert spec.source["path"] == str((tmp_path / "data.csv").resolve())
    splits = {s: load_split(spec, s) for s in SPLIT_NAMES}
    again = {s: load_split(spec, s) for s in SPLIT_NAMES}
    ids = {s: [i.id for i in splits[s].items] for s in SPLIT_NAMES}
    assert all(splits[s].fingerprint == again[s].fingerprint for s in SPLIT_NAMES)
    assert sorted(sum(ids.values(), [])) == sorted(r[0] for r in rows)  # every row exactly once
    assert not set(ids["train"]) & set(ids["test"])
    assert 0.1 < len(ids["test"]) / 300 < 0.3
    assert 0.03 < len(ids["validation"]) / 300 < 0.2
    item = splits["test"].items[0]
    assert item.fields == {"text": f"Headline number {item.id[3:]} about quarterly results"}
    assert item.answer == LABELS[int(item.id[3:]) % 3]

    # shuffling the rows and adding new ones never moves an existing row to another split
    shuffled = make_rows(0, 300) + make_rows(300, 400)
    random.Random(5).shuffle(shuffled)
    write_csv(tmp_path / "data.csv", shuffled)
    grown = {s: {i.id for i in load_split(spec, s).items} for s in SPLIT_NAMES}
    for s in SPLIT_NAMES:
        assert set(ids[s]) <= grown[s]
    # another seed gives another split
    other = load_task_file(write_file_task(tmp_path, name="other_seed", seed=1))
    assert load_split(other, "test").fingerprint != load_split(spec, "test").fingerprint


def test_file_task_with_a_bad_row_fails_when_loaded(tmp_path):
    from core.data.importer import DatasetImportError

    rows = make_rows(0, 10)
    rows[3][2] = "bullish"
    write_csv(tmp_path / "data.csv", rows)
    spec = load_task_file(write_file_task(tmp_path))
    with pytest.raises(
        DatasetImportError, match=r"data\.csv, row 5, field 'tone': unknown label 'bullish'"
    ):
        load_split(spec, "test")


def test_get_task_by_path(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text(_with(name="from_path"))
    assert get_task(str(path)).name == "from_path"


def test_get_task_unknown_lists_known(finboard_home):
    with pytest.raises(TaskSpecError) as info:
        get_task("fin_sentimen")
    message = str(info.value)
    assert "Unknown task 'fin_sentimen'" in message
    for name in BUILTIN:
        assert name in message


def test_user_task_names_must_not_clash(finboard_home, tmp_path):
    user_dir = paths.user_tasks_dir()
    user_dir.mkdir(parents=True)
    (user_dir / "copy.yaml").write_text(_with(name="fin_sentiment"))
    assert [s.path.parent for s in list_tasks() if s.name == "fin_sentiment"] == [
        paths.BUILTIN_TASKS_DIR
    ]
    [(path, why)] = tasks.broken_tasks()
    assert path.name == "copy.yaml" and "also used by" in why


def test_a_broken_user_task_never_hides_the_others(finboard_home):
    user_dir = paths.user_tasks_dir()
    user_dir.mkdir(parents=True)
    (user_dir / "broken.yaml").write_text("name: broken\nkind: choice\n")
    (user_dir / "fine.yaml").write_text(_with(name="fine"))
    names = [spec.name for spec in list_tasks()]
    assert "fine" in names and set(BUILTIN) <= set(names) and "broken" not in names
    assert [path.name for path, _ in tasks.broken_tasks()] == ["broken.yaml"]
    with pytest.raises(TaskSpecError, match="broken.yaml"):
        get_task("broken")
