"""Encoders: the zip package cache, multi-task training through the job queue with the
majority-class baseline, scoring by heads, resume, and the leaderboard's encoder rows."""

from __future__ import annotations

import json
import os
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from encoder_support import TINY_ENCODER_ID, add_encoder, build_tiny_encoder

from core.analysis.leaderboard import leaderboard
from core.jobs import queue
from core.jobs.kinds import JobError
from core.jobs.run import run_job
from core.models import encoder, loading
from core.models.registry import ModelEntry, ModelSource, RegistryError, base_models, get_model
from core.tasks.spec import get_task
from core.training.config import preset_config
from core.training.encoder import EncoderTrainer, task_heads

TASKS = ("client_sentiment", "client_category", "client_priority")
FAST = {"max_train_examples": 48, "epochs": 1, "batch_size": 8, "eval_every": 3}
FAST.update(log_every=1, save_every=2, learning_rate=0.01)


@pytest.fixture(scope="session")
def tiny_encoder_dir(tmp_path_factory) -> Path:
    return build_tiny_encoder(tmp_path_factory.mktemp("tiny_encoder") / "bert")


@pytest.fixture
def encoder_db(db, tiny_encoder_dir, one_thread):
    add_encoder(Path(os.environ["FINBOARD_MODELS_CONFIG"]), tiny_encoder_dir)
    return db


def test_zip_package_is_extracted_once(tmp_path, isolated_cache, monkeypatch, tiny_encoder_dir):
    package = tmp_path / "site" / "fake_encoder_pkg"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    with zipfile.ZipFile(package / "model.zip", "w") as bundle:
        for file in tiny_encoder_dir.iterdir():
            bundle.write(file, file.name)
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    source = ModelSource(kind="zip_package", package="fake_encoder_pkg", file="model.zip")
    entry = ModelEntry(id="zipped", display_name="Zipped", source=source, model_kind="encoder")
    assert loading.prepared_zip_directory(entry) is None
    directory = loading.model_directory(entry)
    assert directory.is_relative_to(isolated_cache) and (directory / "config.json").is_file()
    stamp = (directory / "config.json").stat().st_mtime_ns
    assert loading.model_directory(entry) == directory == loading.prepared_zip_directory(entry)
    assert (directory / "config.json").stat().st_mtime_ns == stamp  # not extracted again
    loaded = encoder.load_encoder(entry, heads={"t": ["a", "b"]})
    assert len(encoder.predict(loaded, ["Hi, my card was stolen."], "t")[0]) == 2
    sys.modules.pop("fake_encoder_pkg", None)


def test_the_embedded_encoder_is_registered_as_kind_encoder(tmp_path):
    entry = next(e for e in base_models() if e.id == "minilm-l6")
    assert entry.model_kind == "encoder" and entry.source.kind == "zip_package"
    bad = tmp_path / "models.yaml"
    bad.write_text("models:\n  - {id: x, kind: seq2seq, source: {kind: local, path: /x}}\n")
    with pytest.raises(RegistryError, match="kind must be one of llm, encoder"):
        base_models(bad)


def test_an_untrained_encoder_has_no_head_to_score_with(encoder_db):
    loaded = encoder.load_encoder(get_model(TINY_ENCODER_ID, encoder_db))
    with pytest.raises(ValueError, match="no head for task 'client_priority'"):
        encoder.predict(loaded, ["hello"], "client_priority")


def test_multitask_finetune_compare_job_scores_each_head_against_the_majority(encoder_db, capsys):
    db = encoder_db
    params = {
        "model_id": TINY_ENCODER_ID,
        "task": "client_sentiment,client_category,client_priority:2",
    }
    job_id = queue.submit(db, "finetune_compare", {**params, "overrides": FAST})
    stored = queue.get(db, job_id)["params"]
    assert stored["tasks"] == list(TASKS) and stored["task_weights"]["client_priority"] == 2.0
    assert stored["preset"] == "encoder"  # encoders get their own defaults
    assert run_job(job_id, db) == "succeeded"
    result = queue.get(db, job_id)["result"]
    assert [t["task"] for t in result["tasks"]] == list(TASKS)
    assert result["baseline"] == "majority class" and result["base_model"] == "majority-class"
    assert 0 < result["trainable_params"] < result["total_params"]
    tuned = get_model(result["finetuned_model"], db)
    assert tuned.model_kind == "encoder" and tuned.card["task_weights"]["client_priority"] == 2.0
    heads = json.loads((Path(tuned.adapter_path) / "heads.json").read_text())
    assert list(heads["tasks"]) == list(TASKS) and heads["method"] == "lora"
    for task in result["tasks"]:
        assert task["majority_label"] in get_task(task["task"]).labels
        low, high = task["improvement_ci"]
        assert low <= task["improvement"] <= high
        assert task["latency_p50_ms"] > 0 and task["items_per_s"] > 0
    from core.cli.jobs import _summary

    _summary(queue.get(db, job_id), result)  # what `finboard finetune-compare` prints
    told = capsys.readouterr().err
    assert (
        "client_priority: accuracy" in told and "(majority '" in told and "CI of the gain" in told
    )
    score = db["scores"].get(_score_id(db, tuned.id))
    metrics = json.loads(score["metrics_json"])
    assert set(metrics["per_class"]) == {"low", "medium", "high", "urgent"}
    assert len(metrics["confusion"]["matrix"]) == 4
    assert len(list(db["comparisons"].rows)) == 3
    assert len(queue.progress_rows(db, job_id)) >= 6  # 6 steps, a row each
    table = leaderboard(db, tasks=["client_priority"])
    types = dict(zip(table["model_id"], zip(table["kind"], table["model_type"])))
    assert types[tuned.id] == ("finetuned", "encoder")
    assert types["majority-class"] == ("baseline", "baseline")
    with pytest.raises(JobError, match="heads for client_sentiment, client_category"):
        queue.submit(db, "eval", {"model_id": tuned.id, "tasks": ["fin_sentiment"]})
    eval_job = queue.submit(db, "eval", {"model_id": tuned.id, "tasks": ["client_priority"]})
    assert run_job(eval_job, db) == "succeeded"
    again = queue.get(db, eval_job)["result"]["results"][0]
    assert again["score"] == pytest.approx(result["tasks"][2]["finetuned_score"])


def _score_id(db, model_id: str) -> int:
    row = db.execute(
        "select id from scores where model_id = ? and task = 'client_priority'", [model_id]
    ).fetchone()
    return row[0]


def test_an_llm_cannot_take_an_encoder_method_nor_an_encoder_a_generation_task(encoder_db):
    with pytest.raises(JobError, match="for encoders"):
        queue.submit(
            encoder_db,
            "train",
            {"model_id": "tiny-llama", "task": "fin_sentiment", "method": "head"},
        )
    with pytest.raises(JobError, match="choice tasks"):
        queue.submit(encoder_db, "train", {"model_id": TINY_ENCODER_ID, "task": "eps_extraction"})
    assert queue.list_jobs(encoder_db) == []


class StopAt:
    def __init__(self, step: int):
        self.step, self.done = step, 0

    def train_progress(self, row):
        pass

    def train_step(self, step, total_steps):
        self.done = step

    def should_stop(self):
        return self.done >= self.step


def _trainer(db, run_dir: Path, hooks=None) -> EncoderTrainer:
    specs = [get_task("client_priority")]
    config = preset_config("encoder", {**FAST, "eval_every": 100})
    loaded = encoder.load_encoder(
        get_model(TINY_ENCODER_ID, db), heads=task_heads(specs), training=True
    )
    return EncoderTrainer(loaded, specs, {}, config, run_dir, hooks)


def test_resume_continues_exactly_where_a_cancelled_run_stopped(encoder_db, tmp_path):
    whole = _trainer(encoder_db, tmp_path / "whole")
    whole.run()
    stopped = _trainer(encoder_db, tmp_path / "parts", StopAt(2))
    first = stopped.run()
    assert first.status == "cancelled" and first.steps == 2
    resumed = _trainer(encoder_db, tmp_path / "parts")
    second = resumed.run(resume_from=Path(first.checkpoint))
    assert second.status == "completed" and second.steps == whole.total_steps
    for name, param in whole.named.items():
        torch.testing.assert_close(resumed.named[name], param)


def test_an_encoder_is_evaluated_only_on_the_tasks_it_has_heads_for(encoder_db):
    with pytest.raises(JobError, match="without trained heads"):
        queue.submit(encoder_db, "eval", {"model_id": TINY_ENCODER_ID, "tasks": ["fin_sentiment"]})
    assert queue.list_jobs(encoder_db) == []


def test_an_encoder_trains_in_fp32_and_answers_in_the_native_dtype(encoder_db):
    entry = get_model(TINY_ENCODER_ID, encoder_db)
    for_training = encoder.load_encoder(entry, heads={"t": ["a", "b"]}, training=True)
    answering = encoder.load_encoder(entry, heads={"t": ["a", "b"]})
    assert for_training.dtype == torch.float32  # the weights are the master copies
    assert answering.dtype == encoder.inference_dtype("cpu")
    assert next(answering.model.heads.parameters()).dtype == torch.float32
    assert len(encoder.predict(answering, ["Hi, my card was stolen."], "t")[0]) == 2


@pytest.mark.parametrize(("load", "threads"), [(0.0, 2), (0.5, 2), (0.8, 1), (3.0, 1)])
def test_encoder_threads_are_the_cores_the_load_leaves_free(monkeypatch, load, threads):
    monkeypatch.delenv("FINBOARD_CPU_THREADS", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
    assert encoder.free_cpu_threads() == threads  # an idle machine's noise keeps both
    monkeypatch.setenv("FINBOARD_CPU_THREADS", "3")
    assert encoder.free_cpu_threads() == 3
