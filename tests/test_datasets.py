"""core.datasets: staging uploads, previews, descriptions, and synthetic corpora made into tasks."""

from __future__ import annotations

import json

import pytest
import torch
import yaml
from conftest import evaluate_ids

from core import paths
from core.data import corpora, synthetic, uploads
from core.data.importer import ColumnMapping, DatasetImportError
from core.data.items import Item
from core.tasks import authoring, inspect
from core.tasks.authoring import create_task_from_file
from core.tasks.spec import TaskSpecError, get_task, list_tasks, load_split

pytestmark = pytest.mark.usefixtures("isolated_cache")

BAD_CSV = (
    "headline,tone\n"
    "Shares rose after the results,positive\n"  # row 2
    "Margins shrank,negtive\n"  # row 3: unknown label
    ",neutral\n"  # row 4: empty text
    "The board met on Tuesday,neutral\n"  # row 5
    "Shares rose after the results,positive\n"  # row 6: duplicate of row 2
)
GOOD_CSV = "id,headline,tone\n" + "".join(
    f"h{i},Company {i} reports quarter {i % 4 + 1} results,"
    f"{('positive', 'neutral', 'negative')[i % 3]}\n"
    for i in range(30)
)
LABELS = ["positive", "neutral", "negative"]
MAPPING = ColumnMapping(text="headline", label="tone")


def files_under(home):
    return {p.relative_to(home): p.read_bytes() for p in sorted(home.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------- uploads


def test_safe_filename_keeps_only_a_plain_base_name():
    assert uploads.safe_filename("../../etc/My News (v2).CSV") == "My_News_v2.csv"
    assert uploads.safe_filename("C:\\Users\\me\\data.jsonl") == "data.jsonl"
    assert uploads.safe_filename("...") == "upload"
    assert uploads.safe_filename(".hidden.tsv") == "hidden.tsv"


def test_save_upload_stages_and_never_touches_a_saved_task(finboard_home):
    staged = uploads.save_upload("news.csv", GOOD_CSV.encode())
    assert staged == paths.user_data_dir() / "uploads" / "news.csv"
    assert staged.read_text() == GOOD_CSV
    spec = create_task_from_file(staged, name="news", kind="choice", mapping=MAPPING)
    saved = paths.user_data_dir() / "datasets" / "news.csv"
    assert spec.source["path"] == str(saved)

    again = uploads.save_upload("news.csv", BAD_CSV.encode())  # a new upload, same name
    assert again == staged and again.read_text() == BAD_CSV
    assert saved.read_text() == GOOD_CSV, "the saved task's data is a separate copy"
    assert len(load_split(get_task("news"), "train")) > 0
    assert [p.name for p in staged.parent.iterdir()] == ["news.csv"], "no temporary files left"


def test_invalid_upload_never_writes_a_task(finboard_home):
    staged = uploads.save_upload("bad.csv", BAD_CSV.encode())
    before = files_under(finboard_home)
    with pytest.raises(DatasetImportError) as info:
        create_task_from_file(staged, name="bad", kind="choice", mapping=MAPPING, labels=LABELS)
    assert [e.row for e in info.value.report.errors] == [3, 4, 6]
    assert files_under(finboard_home) == before
    assert not paths.user_tasks_dir().exists()
    assert "bad" not in [spec.name for spec in list_tasks()]


# ---------------------------------------------------------------- previews


def test_preview_shows_the_first_rows_and_marks_the_ones_with_problems(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(BAD_CSV)
    table = inspect.preview(path, MAPPING, "choice", labels=LABELS)
    assert list(table.columns) == ["row", "text", "label", "problem"]
    assert table["row"].tolist() == [2, 3, 4, 5, 6]
    marked = dict(zip(table["row"], table["problem"], strict=True))
    assert marked[3].startswith("unknown label") and marked[4] == "empty text"
    assert marked[2] == marked[5] == marked[6] == ""
    assert inspect.preview(path, MAPPING, "choice", n=1)["row"].tolist() == [2]
    no_labels = inspect.preview(path, MAPPING, "choice")
    assert no_labels.loc[no_labels["row"] == 3, "problem"].item() == ""  # any label is accepted
    report = authoring.validate_file(path, "choice", MAPPING, LABELS)
    problems: dict[int, list[str]] = {}
    for error in report.errors:
        problems.setdefault(error.row, []).append(error.message)
    from_report = inspect.preview(path, MAPPING, "choice", labels=LABELS, problems=problems)
    marked = dict(zip(from_report["row"], from_report["problem"], strict=True))
    assert [row for row, problem in marked.items() if problem] == [3, 4, 6]
    assert marked[6].startswith("duplicate of row 2")  # what only the full check finds

    good = tmp_path / "good.csv"
    good.write_text(GOOD_CSV)
    with_ids = inspect.preview(
        good, ColumnMapping(text="headline", label="tone", id="id"), "choice"
    )
    assert list(with_ids.columns) == ["row", "id", "text", "label", "problem"]
    assert len(with_ids) == 20 and with_ids["id"].iloc[0] == "h0"


def test_preview_of_a_numeric_jsonl_marks_non_numbers(tmp_path):
    path = tmp_path / "qa.jsonl"
    path.write_text(
        '{"q": "EPS?", "a": 2.670}\n\nnot json\n{"q": "Growth?", "a": "n/a"}\n{"q": "Loss?", "a": -1}\n'
    )
    table = inspect.preview(path, ColumnMapping(prompt="q", answer="a"), "numeric")
    assert list(table.columns) == ["row", "prompt", "answer", "problem"]
    assert table.values.tolist() == [
        [1, "EPS?", "2.670", ""],
        [4, "Growth?", "n/a", "answer 'n/a' is not a number"],
        [5, "Loss?", "-1", ""],
    ]
    text = inspect.preview(path, ColumnMapping(prompt="q", answer="a"), "text")
    assert text["problem"].tolist() == ["", "", ""]


def test_guess_mapping_prefers_familiar_names():
    assert inspect.guess_mapping(["id", "headline", "tone"], "choice") == ColumnMapping(
        text="headline", label="tone", id="id"
    )
    assert inspect.guess_mapping(["question", "answer"], "numeric") == ColumnMapping(
        prompt="question", answer="answer"
    )
    assert inspect.guess_mapping(["a", "b"], "choice") == ColumnMapping(text="a", label="b")


# ---------------------------------------------------------------- describing items


def test_label_balance_lists_given_labels_first():
    items = [Item(str(i), {"text": "x"}, label) for i, label in enumerate("aabcc")]
    assert inspect.label_balance(items) == {"a": 2, "c": 2, "b": 1}
    assert inspect.label_balance(items, ["c", "z", "a"]) == {"c": 2, "z": 0, "a": 2, "b": 1}
    assert inspect.label_balance([]) == {}


def test_token_lengths_uses_the_default_models_tokenizer(finboard_home, tiny_model_dirs):
    from transformers import AutoTokenizer

    items = [Item("a", {"text": "Revenue rose 12% to $4.1 billion."}, "positive")]
    counted = inspect.token_lengths(items)
    assert counted.unit == "tokens" and "Tiny Llama (tiny-llama)" in counted.counter
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dirs["tiny-llama"])
    expected = len(
        tokenizer("Revenue rose 12% to $4.1 billion.", add_special_tokens=False).input_ids
    )
    assert counted.lengths == [expected]
    assert inspect.token_lengths(items, tokenizer).lengths == [expected]
    words = inspect.token_lengths(items, inspect.WHITESPACE)
    assert (words.lengths, words.unit) == ([6], "words")


def test_token_lengths_fall_back_to_words_when_the_model_is_not_prepared(
    finboard_home, tmp_path, monkeypatch
):
    config = tmp_path / "unprepared.yaml"
    entry = {
        "id": "nowhere",
        "display_name": "Nowhere",
        "source": {"kind": "local", "path": str(tmp_path / "missing")},
    }
    config.write_text(yaml.safe_dump({"default_model": "nowhere", "models": [entry]}))
    monkeypatch.setenv("FINBOARD_MODELS_CONFIG", str(config))
    counted = inspect.token_lengths([Item("a", {"text": "one two  three"}, "x")])
    assert (counted.lengths, counted.unit) == ([3], "words")
    assert "whitespace" in counted.counter
    assert inspect.token_lengths([]).lengths == []


# ---------------------------------------------------------------- synthetic corpora


def test_generate_synthetic_corpus_matches_the_generator():
    sizes = {"test": 4, "train": 6}
    corpus = corpora.generate_corpus("revenue_analysis", 3, sizes)
    assert list(corpus) == ["train", "test"], "split order"
    assert corpus == synthetic.generate_splits("revenue_analysis", 3, sizes)
    with pytest.raises(ValueError, match="0 to 5000"):
        corpora.generate_corpus("fin_sentiment", 1, {"train": 5001})
    with pytest.raises(ValueError, match="unknown generator"):
        corpora.generate_corpus("stock_tips", 1, {"train": 5})
    with pytest.raises(ValueError, match="unknown split"):
        corpora.generate_corpus("fin_sentiment", 1, {"dev": 5})
    with pytest.raises(ValueError, match="at least one"):
        corpora.generate_corpus("fin_sentiment", 1, {"train": 0})


def test_write_corpus_files_writes_jsonl_per_split_and_a_readme(finboard_home):
    corpus = corpora.generate_corpus("eps_extraction", 9, {"train": 5, "test": 3})
    folder = authoring.write_corpus_files("eps9", corpus, seed=9)
    assert folder == paths.user_data_dir() / "synthetic" / "eps9"
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "test.jsonl", "train.jsonl"]
    records = [json.loads(line) for line in (folder / "train.jsonl").read_text().splitlines()]
    assert [r["id"] for r in records] == [item.id for item in corpus["train"]]
    assert records[0]["text"] == corpus["train"][0].fields["text"]
    assert records[0]["answer"] == corpus["train"][0].answer
    readme = (folder / "README.md").read_text()
    assert "generator: eps_extraction" in readme and "seed: 9" in readme
    assert "train 5, test 3" in readme

    smaller = corpora.generate_corpus("eps_extraction", 9, {"test": 2})
    authoring.write_corpus_files("eps9", smaller, seed=9)  # replaces the folder whole
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "test.jsonl"]
    assert [p.name for p in folder.parent.iterdir()] == ["eps9"], "no temporary folders left"
    with pytest.raises(TaskSpecError):
        authoring.write_corpus_files("../escape", smaller)


def test_create_synthetic_task_copies_the_builtin_prompt(finboard_home):
    sizes = {"train": 40, "validation": 10, "test": 30}
    spec = authoring.create_synthetic_task("sentiment_seed7", "fin_sentiment", 7, sizes)
    builtin = get_task("fin_sentiment")
    assert spec.path == paths.user_tasks_dir() / "sentiment_seed7.yaml" and not spec.builtin
    assert spec.source == {
        "type": "synthetic",
        "generator": "fin_sentiment",
        "seed": 7,
        "sizes": sizes,
    }
    for name in ("kind", "template", "instruction", "labels", "metrics", "calibration"):
        assert getattr(spec, name) == getattr(builtin, name), name
    assert spec.prompt_hash == builtin.prompt_hash
    assert "seed 7" in spec.description
    assert "sentiment_seed7" in [s.name for s in list_tasks()]
    test = load_split(spec, "test")
    assert len(test) == 30
    assert test.items == corpora.generate_corpus("fin_sentiment", 7, sizes)["test"]

    eps = authoring.create_synthetic_task("eps_big", "eps_extraction", 1, {"train": 2000})
    assert eps.tolerance == get_task("eps_extraction").tolerance
    assert eps.max_new_tokens == get_task("eps_extraction").max_new_tokens
    assert eps.source["sizes"] == {"train": 2000, "validation": 100, "test": 150}  # built-in sizes


@pytest.mark.parametrize(
    ("name", "generator", "sizes", "error"),
    [
        ("fin_sentiment", "fin_sentiment", {"test": 5}, TaskSpecError),  # a built-in's name
        ("taken", "fin_sentiment", {"test": 5}, TaskSpecError),  # a user task's name
        ("Bad Name", "fin_sentiment", {"test": 5}, TaskSpecError),
        ("fresh", "fin_sentiment", {"test": 99999}, ValueError),
        ("fresh", "fin_sentiment", {"holdout": 5}, ValueError),
        ("fresh", "crypto_hype", {"test": 5}, ValueError),
    ],
)
def test_create_synthetic_task_rejects_bad_requests_without_writing(
    finboard_home, name, generator, sizes, error
):
    authoring.create_synthetic_task("taken", "revenue_analysis", 1, {"test": 5})
    before = files_under(finboard_home)
    with pytest.raises(error):
        authoring.create_synthetic_task(name, generator, 2, sizes)
    assert files_under(finboard_home) == before


def test_synthetic_task_evaluates_with_the_tiny_model(db):
    from core.evaluation.runner import EvalOptions

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        authoring.create_synthetic_task("sent_small", "fin_sentiment", 5, {"train": 20, "test": 16})
        result = evaluate_ids("tiny-llama", "sent_small", options=EvalOptions(limit=8), db=db)
    finally:
        torch.set_num_threads(threads)
    assert result["task"] == "sent_small" and result["n_items"] == 8
    assert 0 <= result["score"] <= 1
    assert (
        result["split_fingerprint"]
        == load_split(get_task("sent_small"), "test").head(8).fingerprint
    )
    assert db["predictions"].count == 8


def test_user_task_rows_describe_each_task_and_survive_a_broken_one(finboard_home):
    assert inspect.user_task_rows() == []
    authoring.create_synthetic_task("rev_small", "revenue_analysis", 4, {"train": 8, "test": 6})
    (paths.user_tasks_dir() / "broken.yaml").write_text("name: broken\nkind: choice\n")
    rows = {row["name"]: row for row in inspect.user_task_rows()}
    good = rows["rev_small"]
    assert (good["kind"], good["train"], good["validation"], good["test"]) == ("numeric", 8, 100, 6)
    assert good["source"] == "synthetic revenue_analysis (seed 4)"
    assert good["fingerprint"] == load_split(get_task("rev_small"), "test").fingerprint
    assert good["problem"] is None
    assert rows["broken"]["problem"] and "broken.yaml" in rows["broken"]["problem"]


def test_suspicious_labels_flags_likely_typos():
    counts = {"positive": 40, "postive": 1, "Negative": 2, "negative": 30, "neutral": 35}
    assert inspect.suspicious_labels(counts) == {
        "postive": "1 row; close to 'positive'",
        "Negative": "2 rows; close to 'negative'",
    }
    assert inspect.suspicious_labels({"up": 1, "down": 1}) == {}
    assert inspect.suspicious_labels({"up": 9, "down": 8, "sideways": 1}) == {
        "sideways": "1 row (5.6% of the file): an unexpected label?"
    }
    assert inspect.suspicious_labels({"up": 50, "down": 40, "bullish": 3}) == {
        "bullish": "3 rows (3.2% of the file): an unexpected label?"
    }
