"""The Synthetic Finance Corpus: every task's training split mixed with weights, worked numeric
answers the parser reads back, and one fine-tune on it scored on every task."""

from __future__ import annotations

from collections import Counter

import pytest
from conftest import TINY_CHAT_ID, run_page, tables, texts
from jobs_support import run_job_here as _run

from core.data import finance_corpus as fc
from core.evaluation.parsing import parse_number
from core.tasks.prompts import render
from core.tasks.spec import get_task, load_split

pytestmark = pytest.mark.usefixtures("one_thread")

TASKS = ("fin_sentiment", "eps_extraction", "revenue_analysis")


def test_the_corpus_mixes_every_task_with_its_weight(tmp_path):
    config = tmp_path / "finance.yaml"
    config.write_text(
        "numeric_targets: answer\nseed: 1\n"
        "weights: {fin_sentiment: 0.5, eps_extraction: 1, revenue_analysis: 2}\n"
    )
    spec = fc.corpus_spec(fc.NAME, config)
    counts = Counter(item.meta["task"] for item in load_split(spec, "train").items)
    sizes = {task: len(load_split(get_task(task), "train").items) for task in TASKS}
    assert counts == {
        "fin_sentiment": sizes["fin_sentiment"] // 2,
        "eps_extraction": sizes["eps_extraction"],
        "revenue_analysis": 2 * sizes["revenue_analysis"],
    }
    head = Counter(item.meta["task"] for item in load_split(spec, "train").items[:60])
    assert set(head) == set(TASKS)  # shuffled: a max_train_examples head is a mix
    # validation and test: each task's own items, unweighted (the test split never trains)
    test_ids = {i.id.split(":")[1] for i in load_split(spec, "test").items}
    assert test_ids == {i.id for t in TASKS for i in load_split(get_task(t), "test").items}


def test_each_example_is_the_tasks_own_evaluation_prompt(tiny_model_dirs):
    from core.models.loading import load_tokenizer

    chat = load_tokenizer(tiny_model_dirs[TINY_CHAT_ID])
    spec = get_task(fc.NAME)
    originals = {
        i.id: (task, i) for task in TASKS for i in load_split(get_task(task), "train").items
    }
    for item in load_split(spec, "train").items[:30]:
        task, original = originals[item.id.split(":")[1]]
        for tokenizer, instruct in ((chat, True), (None, False)):
            ours = render(spec, item, tokenizer, instruct)
            theirs = render(get_task(task), original, tokenizer, instruct)
            assert ours.prompt == theirs.prompt


def test_worked_answers_show_the_computation_and_parse_to_the_gold_figure():
    spec = get_task("finance_corpus_worked")
    numeric = [i for i in load_split(spec, "train").items if i.meta["task"] != "fin_sentiment"]
    assert len(numeric) > 1000
    for item in numeric:
        assert " = " in item.answer and ("/" in item.answer)
        gold = float(item.meta["gold"])
        assert parse_number(item.answer) == pytest.approx(gold, abs=1e-9), item.answer
    answers = get_task("finance_corpus_answers")
    bare = [i for i in load_split(answers, "train").items if i.meta["task"] != "fin_sentiment"]
    assert all(i.answer == i.meta["gold"] for i in bare)


def test_a_bad_weight_names_the_file_and_field(tmp_path):
    config = tmp_path / "finance.yaml"
    config.write_text("weights: {fin_sentiment: -1}\n")
    with pytest.raises(fc.CorpusError, match=r"finance.yaml: weights.fin_sentiment"):
        fc.corpus_spec(fc.NAME, config)


def test_a_corpus_finetune_is_scored_on_every_task_and_ranked_on_the_same_tasks(db):
    from core.analysis.leaderboard import leaderboard
    from core.jobs import queue

    overrides = {"max_train_examples": 24, "batch_size": 8, "eval_every": 3, "dtype": "fp32"}
    job_id = queue.submit(
        db,
        "finetune_compare",
        {"model_id": TINY_CHAT_ID, "task": fc.NAME, "preset": "quick", "overrides": overrides},
    )
    assert _run(db, job_id) == "succeeded", queue.get(db, job_id)["error"]
    result = queue.get(db, job_id)["result"]
    assert [row["task"] for row in result["tasks"]] == sorted(TASKS)
    overall = result["overall"]
    assert overall["task"] == "Overall" and result["primary_metric"] == "overall"
    means = [sum(r[k] for r in result["tasks"]) / 3 for k in ("base", "tuned")]
    assert [overall["base"], overall["tuned"]] == pytest.approx(means)
    assert overall["ci"] is not None  # paired over every task's items
    for row in result["tasks"]:
        assert row["improvement_points"] == pytest.approx(100 * (row["tuned"] - row["base"]))
    assert result["energy"] == "not measured" and result["energy_kwh"] is None
    assert result["gain_per_kwh"] is None
    assert result["gain_per_hour"] == pytest.approx(
        overall["improvement_points"] / (result["train_seconds"] / 3600)
    )

    board = leaderboard(db).set_index("model_id")
    tuned = result["finetuned_model"]
    assert board.loc[tuned, "tasks_scored"] == board.loc[TINY_CHAT_ID, "tasks_scored"] == 3
    assert bool(board.loc[tuned, "complete"]) and bool(board.loc[TINY_CHAT_ID, "complete"])

    at = run_page("comparison")
    assert not at.exception
    gains = tables(at)[0]  # the first table on the page
    assert list(gains["task"]) == [*sorted(TASKS), "Overall"]
    assert "energy not measured" in texts(at.caption)
