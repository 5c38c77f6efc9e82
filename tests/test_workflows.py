"""The fine-tune-and-compare recipe: what it loads, what it resolves, what it stores."""

from __future__ import annotations

import pytest
from conftest import TINY_CHAT_ID
from jobs_support import run_job_here as _run

pytestmark = pytest.mark.usefixtures("one_thread")

QUICK = {"max_train_examples": 16, "batch_size": 8, "eval_every": 2, "dtype": "fp32"}


class Counter:
    """Wraps a function and counts its calls."""

    def __init__(self, function):
        self.function, self.calls = function, 0

    def __call__(self, *args, **kwargs):
        self.calls += 1
        return self.function(*args, **kwargs)


@pytest.mark.parametrize("method", ["lora", "prompt-tuning"])
def test_one_job_resolves_the_model_once_and_loads_the_base_at_most_twice(db, monkeypatch, method):
    from transformers import AutoModelForCausalLM

    from core.jobs import queue
    from core.models import registry

    job_id = queue.submit(
        db,
        "finetune_compare",
        {
            "model_id": TINY_CHAT_ID,
            "task": "fin_sentiment",
            "preset": "quick",
            "method": method,
            "overrides": QUICK,
        },
    )
    resolved = Counter(registry.get_model)
    monkeypatch.setattr(registry, "get_model", resolved)
    weights = Counter(AutoModelForCausalLM.from_pretrained)
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", weights)

    assert _run(db, job_id) == "succeeded", queue.get(db, job_id)["error"]
    assert resolved.calls == 1  # the job resolves its base model id once, at the edge
    assert weights.calls == 2  # training (base scored on the same weights), the merged model
    result = queue.get(db, job_id)["result"]
    pair = db.execute(
        "select base_score_id, finetuned_score_id from comparisons order by id desc"
    ).fetchone()
    assert pair[0] != pair[1]
    fingerprints = {
        row[0]
        for row in db.execute(
            "select split_fingerprint from scores where id in (?, ?)", [pair[0], pair[1]]
        )
    }
    assert len(fingerprints) == 1 and result["split_fingerprint"] in fingerprints
    tuned = registry.get_model(result["finetuned_model"], db)
    assert tuned.job_id == job_id  # the model's row records the job that trained it


def test_a_stored_base_score_is_reused_and_only_the_merged_model_is_loaded_again(db, monkeypatch):
    from transformers import AutoModelForCausalLM

    from core.jobs import queue

    params = {"model_id": TINY_CHAT_ID, "task": "fin_sentiment", "preset": "quick"}
    first = queue.submit(db, "finetune_compare", {**params, "overrides": QUICK})
    assert _run(db, first) == "succeeded"
    second = queue.submit(db, "finetune_compare", {**params, "overrides": QUICK})
    weights = Counter(AutoModelForCausalLM.from_pretrained)
    monkeypatch.setattr(AutoModelForCausalLM, "from_pretrained", weights)
    assert _run(db, second) == "succeeded"
    assert weights.calls == 2
    base_scores = db.execute(
        "select count(*) from scores where model_id = ? and item_limit is null", [TINY_CHAT_ID]
    ).fetchone()[0]
    assert base_scores == 3  # one per task scored on: the second job reused the first's
    ids = [row[0] for row in db.execute("select base_score_id from comparisons order by id")]
    assert len(ids) == 6 and ids[:3] == ids[3:]


def test_after_success_the_run_keeps_no_checkpoints_unless_asked(db):
    from pathlib import Path

    from core.jobs import queue

    params = {"model_id": TINY_CHAT_ID, "task": "fin_sentiment", "preset": "quick"}
    dropped = queue.submit(db, "train", {**params, "overrides": {**QUICK, "save_every": 1}})
    kept = queue.submit(
        db,
        "train",
        {**params, "overrides": {**QUICK, "save_every": 1, "keep_checkpoints_after_success": True}},
    )
    for job_id in (dropped, kept):
        assert _run(db, job_id) == "succeeded", queue.get(db, job_id)["error"]
    for job_id, expected in ((dropped, False), (kept, True)):
        job = queue.get(db, job_id)
        run_dir = Path(job["run_dir"])
        assert (run_dir / "checkpoints").exists() is expected
        assert not (run_dir / "adapter").exists()  # the registered copy is the only one
        assert (Path(job["result"]["adapter_dir"]) / "adapter_config.json").is_file()


def test_the_whole_job_bar_moves_monotonically_across_the_phases(db):
    import threading
    import time

    from core import store
    from core.jobs import queue

    job_id = queue.submit(
        db,
        "finetune_compare",
        {"model_id": TINY_CHAT_ID, "task": "fin_sentiment", "preset": "quick", "overrides": QUICK},
    )
    seen: list[tuple[str | None, float]] = []
    done = threading.Event()

    def watch() -> None:
        reader = store.connect()
        while not done.is_set():
            row = queue.get(reader, job_id)
            seen.append((row["phase"], float(row["progress"] or 0.0)))
            time.sleep(0.02)
        reader.close()

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        assert _run(db, job_id) == "succeeded"
    finally:
        done.set()
        watcher.join()
    values = [value for _, value in seen]
    assert values == sorted(values), "the bar never goes back"
    assert values[-1] == 1.0
    phases = [phase for phase, _ in seen]
    assert "training" in phases and "evaluating fine-tuned model" in phases
    job = queue.get(db, job_id)
    assert [p["name"] for p in job["plan"]] == [
        "loading the base model",
        "evaluating base model",
        "training",
        "checking the adapter",
        "evaluating fine-tuned model",
    ]
    training = [value for phase, value in seen if phase == "training"]
    assert training and 0 < training[0] < 1 and training[-1] < 1  # training is part of the job


def test_job_log_keeps_the_product_s_lines_apart_from_the_libraries(db):
    from core.jobs import queue

    job_id = queue.submit(
        db, "eval", {"model_id": "tiny-llama", "tasks": ["fin_sentiment"], "limit": 4}
    )
    assert _run(db, job_id) == "succeeded"
    job = queue.get(db, job_id)
    from pathlib import Path

    Path(job["log_path"]).parent.mkdir(parents=True, exist_ok=True)
    with open(job["log_path"], "a") as log:  # what the worker would have captured
        log.write("[12:00:00] phase: loading model\n")
        log.write("Loading weights:  50%|#####     | 1/2\rLoading weights: 100%|##########| 2/2\n")
        log.write("/x/site-packages/torch/module.py:1: FutureWarning: something\n")
        log.write("[12:00:01] job 1 succeeded\n")
    ours, library = queue.log_lines(job)
    assert ours == ["[12:00:00] phase: loading model", "[12:00:01] job 1 succeeded"]
    assert any("FutureWarning" in line for line in library)
    assert any(line.startswith("Loading weights: 100%") for line in library)
