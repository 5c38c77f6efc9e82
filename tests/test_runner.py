"""The evaluation runner: scoring through the model interface with fake models, and a full
``evaluate`` on the tiny model that stores everything needed to reproduce the score."""

from __future__ import annotations

import dataclasses
import json
import shlex
from collections.abc import Sequence

import pytest
import torch
from conftest import evaluate_ids

from core.data.items import Item
from core.evaluation import runner
from core.evaluation.runner import (
    EvalOptions,
    ItemResult,
    build_prompts,
    score_items,
    task_metrics,
)
from core.models import registry
from core.tasks.prompts import choice_continuations, render
from core.tasks.spec import get_task, load_split

pytestmark = pytest.mark.usefixtures("isolated_cache", "one_thread")


# ---------------------------------------------------------------- fake models


class FakeModel:
    """A deterministic ``LanguageModel``.

    ``scores(prompt, label)`` gives the log-likelihood of each choice continuation (the label is
    the continuation without spaces, lower-cased); ``answers[prompt]`` the generated text.
    """

    def __init__(self, scores=None, answers=None, batch_size: int = 3):
        self.scores = scores
        self.answers = answers or {}
        self.batch_size = batch_size
        self.calls: list[tuple[str, int]] = []

    def _batches(self, n: int, on_batch):
        for start in range(0, n, self.batch_size):
            indices = list(range(start, min(n, start + self.batch_size)))
            if on_batch:
                on_batch(indices, 0.002 * len(indices))

    def choice_logprobs(self, contexts: Sequence[str], continuations: Sequence[str], on_batch=None):
        self.calls.append(("choice", len(contexts)))
        self._batches(len(contexts), on_batch)
        return [[float(self.scores(c, k.strip().lower())) for k in continuations] for c in contexts]

    def generate(self, contexts: Sequence[str], stop, max_new_tokens: int, on_batch=None):
        self.calls.append(("generate", len(contexts)))
        self._batches(len(contexts), on_batch)
        return [self.answers.get(c, "") for c in contexts]


def sentiment_setup(n: int = 30):
    spec = get_task("fin_sentiment")
    items = load_split(spec, "test").items[:n]
    prompts = build_prompts(spec, items, None, False, [])
    forms = choice_continuations(spec, None, False)
    return spec, items, prompts, forms


def test_oracle_gets_every_choice_right():
    spec, items, prompts, forms = sentiment_setup()
    gold = dict(zip(prompts, (item.answer for item in items)))
    oracle = FakeModel(lambda prompt, label: 0.0 if gold.get(prompt) == label else -10.0)
    progress: list[tuple[int, int]] = []
    results = score_items(
        oracle, spec, items, prompts, forms, progress=lambda d, t: progress.append((d, t))
    )
    assert [r.parsed for r in results] == [item.answer for item in items]
    assert all(r.correct for r in results)
    assert progress[-1] == (len(items), len(items))
    assert all(r.latency_ms == pytest.approx(2.0) for r in results)  # batch time / batch size
    assert results[0].raw_output.startswith("positive=")
    report = task_metrics(spec, items, results)
    assert report["accuracy"]["value"] == 1.0
    assert report["macro_f1"]["value"] == 1.0
    assert {"accuracy", "macro_f1", "per_class", "confusion"} <= set(report)
    assert "mae" not in report and "unparseable_rate" not in report
    matrix = report["confusion"]["matrix"]
    assert sum(map(sum, matrix)) == len(items)
    assert all(matrix[i][j] == 0 for i in range(3) for j in range(3) if i != j)


def test_constant_model_scores_the_share_of_its_label():
    spec, items, prompts, forms = sentiment_setup(40)
    always_negative = FakeModel(lambda prompt, label: 0.0 if label == "negative" else -5.0)
    results = score_items(always_negative, spec, items, prompts, forms)
    assert {r.parsed for r in results} == {"negative"}
    share = sum(item.answer == "negative" for item in items) / len(items)
    assert 0 < share < 1
    report = task_metrics(spec, items, results)
    assert report["accuracy"]["value"] == pytest.approx(share)
    assert report["per_class"]["negative"]["recall"] == 1.0
    assert report["per_class"]["positive"]["recall"] == 0.0


def test_surface_forms_are_pooled_per_label():
    """A model that only likes the capitalized form still picks that label."""
    spec, items, prompts, _ = sentiment_setup(5)
    forms = [[" positive", " Positive"], [" neutral", " Neutral"], [" negative", " Negative"]]

    class CaseSensitive(FakeModel):
        def choice_logprobs(self, contexts, continuations, on_batch=None):
            self._batches(len(contexts), on_batch)
            return [[-1.0 if k == " Neutral" else -3.0 for k in continuations] for _ in contexts]

    results = score_items(CaseSensitive(), spec, items, prompts, forms)
    assert {r.parsed for r in results} == {"neutral"}


@pytest.mark.skipif(
    not hasattr(runner, "content_free_prompts"), reason="no calibration in this version"
)
def test_contextual_calibration_removes_a_label_bias():
    spec, items, prompts, forms = sentiment_setup(30)
    spec = dataclasses.replace(spec, calibration="contextual")
    content_free = runner.content_free_prompts(spec, None, False, [])
    assert len(content_free) == 3 and all(p not in prompts for p in content_free)
    gold = dict(zip(prompts, (item.answer for item in items)))

    def biased(prompt, label):  # knows the answer, but likes "positive" even more
        return (3.0 if label == "positive" else 0.0) + (2.0 if gold.get(prompt) == label else 0.0)

    results = score_items(FakeModel(biased), spec, items, prompts, forms, None, content_free)
    assert len(results) == len(items)
    assert all(r.uncalibrated == "positive" for r in results)
    assert all(r.correct for r in results)
    report = task_metrics(spec, items, results)
    assert report["accuracy"]["value"] == 1.0
    share = sum(item.answer == "positive" for item in items) / len(items)
    assert report["uncalibrated_accuracy"]["value"] == pytest.approx(share)


def test_numeric_answers_parsed_with_tolerance():
    spec = get_task("eps_extraction")
    items = load_split(spec, "test").items[:8]
    prompts = build_prompts(spec, items, None, False, [])
    outputs = []
    for index, item in enumerate(items):
        gold = float(item.answer)
        outputs.append(
            [
                f"{gold:.2f}",  # exact
                f"EPS is ${gold + 0.005:.3f}",  # within the one-cent tolerance
                f"{gold + 0.5:.2f}",  # parsed, wrong
                "I cannot tell",  # unparseable
            ][index % 4]
        )
    model = FakeModel(answers=dict(zip(prompts, outputs)))
    results = score_items(model, spec, items, prompts, [])
    assert model.calls == [("generate", 8)]
    assert [r.raw_output for r in results] == outputs
    assert [r.correct for r in results] == [True, True, False, False] * 2
    assert [r.parsed is None for r in results] == [False, False, False, True] * 2
    assert float(results[1].parsed) == pytest.approx(float(items[1].answer) + 0.005)
    report = task_metrics(spec, items, results)
    assert report["accuracy"]["value"] == 0.5
    assert report["unparseable_rate"]["value"] == 0.25
    assert report["mae"]["value"] == pytest.approx((0 + 0.005 + 0.5) / 3, abs=1e-6)
    assert set(report) == {"accuracy", "unparseable_rate", "mae"}


def test_text_answers_compare_normalized():
    base = get_task("eps_extraction")
    spec = dataclasses.replace(base, kind="text", metrics=["accuracy", "unparseable_rate"])
    items = [
        Item("q1", {"text": "Who sets US rates?"}, "the Federal Reserve"),
        Item("q2", {"text": "Ticker of Apple?"}, "AAPL"),
        Item("q3", {"text": "Capital of France?"}, "Paris"),
    ]
    prompts = [render(spec, item, None, False).prompt for item in items]
    model = FakeModel(answers=dict(zip(prompts, ["The Federal Reserve.", "MSFT", "   "])))
    results = score_items(model, spec, items, prompts, [])
    assert [r.correct for r in results] == [True, False, False]
    assert results[2].parsed is None
    report = task_metrics(spec, items, results)
    assert report["accuracy"]["value"] == pytest.approx(1 / 3)
    assert report["unparseable_rate"]["value"] == pytest.approx(1 / 3)


def test_task_metrics_keeps_only_the_tasks_metrics():
    spec, items, prompts, forms = sentiment_setup(6)
    only_f1 = dataclasses.replace(spec, metrics=["macro_f1"], primary_metric="macro_f1")
    results = [ItemResult("", item.answer, True, 1.0) for item in items]
    report = task_metrics(only_f1, items, results)
    assert "accuracy" not in report and "macro_f1" in report


def test_reproduce_command():
    options = EvalOptions(split="validation", limit=5, seed=3)
    command = runner.reproduce_command("m", "fin_sentiment", options, "bfloat16", 8, 2)
    assert shlex.split(command) == [
        "finboard",
        "eval",
        "--model",
        "m",
        "--task",
        "fin_sentiment",
        "--split",
        "validation",
        "--shots",
        "2",
        "--seed",
        "3",
        "--dtype",
        "bfloat16",
        "--batch-size",
        "8",
        "--limit",
        "5",
    ]
    assert "--limit" not in runner.reproduce_command("m", "t", EvalOptions(), "float32", 16, 0)


# ---------------------------------------------------------------- evaluate_ids() on the tiny model

OPTIONS = EvalOptions(limit=8, batch_size=4, dtype="fp32", device="cpu")


def test_evaluate_stores_a_reproducible_score(db):
    result = evaluate_ids("tiny-llama", "fin_sentiment", options=OPTIONS, db=db)
    spec = get_task("fin_sentiment")
    split = load_split(spec, "test").head(8)

    rows = list(db["scores"].rows)
    assert len(rows) == 1
    row = rows[0]
    assert row["id"] == result["score_id"]
    assert row["model_id"] == "tiny-llama"
    assert row["task"] == "fin_sentiment" and row["task_version"] == spec.version
    assert row["split"] == "test" and row["n_items"] == 8 and row["item_limit"] == 8
    assert row["split_fingerprint"] == split.fingerprint == result["split_fingerprint"]
    from core.models.loading import weights_hash

    assert row["weights_hash"] == weights_hash(registry.get_model("tiny-llama"))
    assert row["prompt_hash"] == spec.prompt_hash
    assert row["num_shots"] == 0 and row["seed"] == 0
    assert row["dtype"] == "float32" and row["device"] == "cpu" and row["batch_size"] == 4
    versions = json.loads(row["versions_json"])
    assert versions["torch"].split("+")[0] == torch.__version__.split("+")[0]
    import transformers

    assert versions["transformers"] == transformers.__version__
    assert row["command"].startswith("finboard eval --model tiny-llama")
    assert "--task fin_sentiment" in row["command"] and "--limit 8" in row["command"]
    assert row["primary_metric"] == "accuracy"
    assert row["ci_low"] <= row["primary_value"] <= row["ci_high"]
    assert row["primary_value"] == result["score"]
    assert row["latency_p50_ms"] > 0 and row["items_per_s"] > 0 and row["seconds"] > 0
    assert row["created_at"]
    for key in (
        "model_id",
        "weights_hash",
        "task_version",
        "split_fingerprint",
        "prompt_hash",
        "num_shots",
        "seed",
        "dtype",
        "batch_size",
        "versions_json",
        "command",
        "metrics_json",
    ):
        assert row[key] is not None and row[key] != "", key
    metrics = json.loads(row["metrics_json"])
    assert {"accuracy", "macro_f1", "confusion", "per_class"} <= set(metrics)

    predictions = list(
        db.query("select * from predictions where score_id = ? order by position", [row["id"]])
    )
    assert [p["item_id"] for p in predictions] == [item.id for item in split.items]
    assert [p["position"] for p in predictions] == list(range(8))
    assert [p["gold"] for p in predictions] == [item.answer for item in split.items]
    assert all(p["parsed"] in spec.labels for p in predictions)
    assert all(p["correct"] == int(p["parsed"] == p["gold"]) for p in predictions)
    assert sum(p["correct"] for p in predictions) / 8 == pytest.approx(row["primary_value"])
    assert predictions[0]["prompt"].endswith(
        f"Sentence: {split.items[0].fields['text']}\nSentiment:"
    )
    assert all(p["raw_output"].startswith("positive=") for p in predictions)


def test_the_stored_command_reproduces_the_score(db):
    from click.testing import CliRunner

    from core.cli import main

    first = evaluate_ids("tiny-llama", "fin_sentiment", options=OPTIONS, db=db)
    command = shlex.split(first["command"])
    assert command[:2] == ["finboard", "eval"]
    outcome = CliRunner().invoke(main, command[1:] + ["--json"])
    assert outcome.exit_code == 0, outcome.output
    rows = list(db.query("select * from scores order by id"))
    assert len(rows) == 2
    old, new = rows
    for key in (
        "model_id",
        "task",
        "split_fingerprint",
        "weights_hash",
        "prompt_hash",
        "num_shots",
        "seed",
        "dtype",
        "batch_size",
        "primary_value",
        "ci_low",
        "ci_high",
        "command",
    ):
        assert old[key] == new[key], key
    parsed = [
        [
            p["parsed"]
            for p in db.query(
                "select parsed from predictions where score_id = ? order by position", [r["id"]]
            )
        ]
        for r in rows
    ]
    assert parsed[0] == parsed[1]


def test_evaluate_generation_task_on_the_chat_model(db):
    result = evaluate_ids(
        "tiny-llama-chat", "eps_extraction", options=dataclasses.replace(OPTIONS, limit=4), db=db
    )
    assert result["primary_metric"] == "accuracy"
    assert set(result["metrics"]) == {"accuracy", "unparseable_rate", "mae"}
    predictions = list(db["predictions"].rows)
    assert len(predictions) == 4
    for p in predictions:
        assert isinstance(p["raw_output"], str)
        assert p["parsed"] is None or float(p["parsed"]) == float(p["parsed"])
        assert p["prompt"].startswith("<|user|>") and p["prompt"].endswith("<|assistant|>")
    unparseable = sum(p["parsed"] is None for p in predictions) / 4
    assert result["metrics"]["unparseable_rate"]["value"] == pytest.approx(unparseable)


def test_evaluate_with_shots_records_them(db):
    options = dataclasses.replace(OPTIONS, limit=3, num_shots=2, seed=5)
    result = evaluate_ids("tiny-llama", "fin_sentiment", options=options, db=db)
    row = db["scores"].get(result["score_id"])
    assert row["num_shots"] == 2 and row["seed"] == 5
    assert "--shots 2" in row["command"] and "--seed 5" in row["command"]
    prompts = [p["prompt"] for p in db["predictions"].rows]
    heads = {prompt[: prompt.rindex("Sentence:")] for prompt in prompts}
    assert len(heads) == 1 and heads.pop().count("Sentence:") == 2


def test_evaluate_errors_store_nothing(db):
    from core.models.registry import RegistryError

    with pytest.raises(RegistryError, match="Unknown model"):
        evaluate_ids("no-such-model", "fin_sentiment", options=OPTIONS, db=db)
    with pytest.raises(ValueError, match="limit must be a whole number of at least 1"):
        evaluate_ids(
            "tiny-llama", "fin_sentiment", options=dataclasses.replace(OPTIONS, limit=0), db=db
        )
    assert db["scores"].count == 0 and db["predictions"].count == 0


def test_progress_reaches_the_total(db):
    seen: list[tuple[int, int]] = []
    evaluate_ids(
        "tiny-llama",
        "revenue_analysis",
        options=dataclasses.replace(OPTIONS, limit=5),
        db=db,
        progress=lambda done, total: seen.append((done, total)),
    )
    assert seen and seen[-1][0] == seen[-1][1] >= 5
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)
