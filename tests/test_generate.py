"""The generate job: Magpie-style records from a local model, checkpointed, resumed after kill -9."""

from __future__ import annotations

import json
import os
import signal

import pytest
from conftest import TINY_CHAT_ID
from jobs_support import kill_group, wait_for, wait_state
from jobs_support import run_job_here as _run

from core.jobs import queue, worker
from core.tasks.spec import get_task, load_split
from core.workflows import generate as gen

pytestmark = pytest.mark.usefixtures("one_thread")
# the tiny random model writes noise: rules loose enough that some records are kept
LOOSE = {
    "min_instruction_words": 0,
    "min_response_words": 0,
    "min_instruction_tokens": 0,
    "min_response_tokens": 0,
    "min_finance_relevance": 0.0,
    "require_finished_response": False,
    "min_letter_share": 0.0,
    "max_repeated_ngram_share": 1.0,
}
SETTINGS = {
    "model_id": TINY_CHAT_ID,
    "count": 24,
    "batch_size": 4,
    "checkpoint_every": 4,
    "max_new_tokens": 24,
    "instruction_tokens": 12,
    "seed": 3,
    "quality": LOOSE,
    "require_finished_instruction": False,
}


def kept_records(name: str) -> list[tuple]:
    spec = get_task(name)
    return sorted(
        (item.id, item.fields["prompt"], item.answer)
        for split in ("train", "validation", "test")
        for item in load_split(spec, split).items
    )


def test_user_prefix_is_the_chat_template_before_the_user_s_words(finboard_home):
    from pathlib import Path

    from core.models.loading import load_tokenizer
    from core.models.registry import get_model

    tokenizer = load_tokenizer(Path(get_model(TINY_CHAT_ID).source.path))
    prefix = gen.user_prefix(tokenizer)
    rendered = tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False)
    assert rendered.startswith(prefix + "Hi") and prefix


def test_bad_settings_are_refused_at_submit_and_store_nothing(db):
    from core.jobs.kinds import JobError

    for bad, message in [
        ({"checkpoint_every": 6}, "multiple of batch_size"),
        ({"temperature": 0}, "temperature"),
        ({"quality": {"ngram": "x"}}, "threshold 'ngram'"),
        ({"colour": 1}, "Unknown generate option"),
    ]:
        with pytest.raises(JobError, match=message):
            queue.submit(db, "generate", {**SETTINGS, "name": "gen_bad", **bad})
    assert queue.list_jobs(db) == []


def test_kill9_halfway_then_resume_loses_no_kept_record(jobs_env, db):
    from core.models.loading import load_model
    from core.models.registry import get_model

    # the same run, uninterrupted, in this process
    loaded = load_model(get_model(TINY_CHAT_ID, db))  # the dtype and device a job picks
    reference = gen.generate(loaded, gen.GenerateSettings(name="gen_ref", **SETTINGS))
    assert reference["raw"] == 24
    assert reference["raw"] == reference["kept"] + sum(reference["rejected"].values())
    assert reference["kept"] > 0

    job_id = queue.submit(db, "generate", {**SETTINGS, "name": "gen_kill"})
    worker.ensure_worker(idle_exit_s=60)
    raw = gen.work_dir("gen_kill") / "raw.jsonl"

    def checkpointed() -> int:
        return len(raw.read_text().splitlines()) if raw.is_file() else 0

    wait_for(lambda: checkpointed() >= 8, timeout=120, interval=0.02, what="two checkpoints")
    job = queue.get(db, job_id)
    os.kill(job["pid"], signal.SIGKILL)
    failed = wait_state(db, job_id)
    assert failed["state"] == "failed"
    made = checkpointed()
    assert 8 <= made < 24, "killed halfway"

    kill_group(worker.running_worker_pid())  # the resumed job runs here, in this process
    again = queue.resume(db, job_id)
    assert _run(db, again) == "succeeded", queue.get(db, again)["error"]
    done = queue.get(db, again)
    result = done["result"]
    assert result["resumed_from"] >= made - made % 4
    assert result["raw"] == 24 == result["kept"] + sum(result["rejected"].values())
    assert kept_records("gen_kill") == kept_records("gen_ref")  # the same records, none lost
    lines = [json.loads(line) for line in raw.read_text().splitlines()]
    assert [line["index"] for line in lines] == list(range(24))
