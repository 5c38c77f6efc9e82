"""AppTests of the app's navigation and the Run pages: launch, jobs, GPU monitor."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import code_blocks, metrics, tables, texts
from streamlit.testing.v1 import AppTest

APP_DIR = Path(__file__).resolve().parents[1] / "streamlit_app"


def page(name: str) -> AppTest:
    return AppTest.from_file(str(APP_DIR / "views" / f"{name}.py"), default_timeout=60)


@pytest.fixture
def no_worker(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Record ensure_worker calls instead of starting a real worker process."""
    from core.jobs import worker

    calls: list[int] = []
    monkeypatch.setattr(worker, "ensure_worker", lambda *a, **k: calls.append(1) or 0)
    return calls


def test_app_navigation_lists_every_area(db, no_worker):
    at = AppTest.from_file(str(APP_DIR / "app.py"), default_timeout=60).run()
    assert not at.exception
    assert at.title[0].value == "Leaderboard"  # the default page
    for name in ("launch", "jobs", "gpu_monitor", "comparison", "datasets", "cost_roi"):
        assert (APP_DIR / "views" / f"{name}.py").is_file()


def test_launch_evaluation_submits_a_job(db, no_worker):
    at = page("launch").run()
    assert not at.exception
    assert "Hardware found" in texts(at.info)
    assert at.selectbox[0].value == "tiny-llama"  # the config's default model
    assert "Estimated evaluation time" in metrics(at)
    at.button[0].click().run()
    jobs = list(db.query("select kind, params_json, state from jobs"))
    assert len(jobs) == 1 and jobs[0]["kind"] == "eval" and jobs[0]["state"] == "queued"
    assert no_worker, "a worker is started for the job"


def test_launch_finetune_shows_estimate_and_submits(db, no_worker):
    at = page("launch").run()
    at.radio[0].set_value("Also Fine-tune and Compare").run()
    assert not at.exception
    labels = metrics(at)
    assert "Estimated job time" in labels and "Estimated peak memory" in labels
    assert any(n.label == "max seq length" for n in at.number_input), "advanced knobs are shown"
    assert all(n.help for n in at.number_input), "every knob has its help text as tooltip"
    at.button[0].click().run()
    row = next(iter(db.query("select kind, params_json from jobs")))
    assert row["kind"] == "finetune_compare"
    assert '"new_model_id"' in row["params_json"]


def test_launch_warns_when_a_big_model_meets_a_cpu(db, no_worker, monkeypatch):
    from core.analysis import estimates

    real = estimates.hardware()
    monkeypatch.setattr(
        estimates,
        "hardware",
        lambda: estimates.Hardware(**{**real.__dict__, "gpus": [], "device": "cpu"}),
    )
    from core.models.registry import ModelEntry, ModelSource

    big = ModelEntry("big", "Big 7B", ModelSource(kind="hf", repo="x/y"), params=7_000_000_000)
    from core.tasks.spec import get_task
    from core.training.config import preset_config

    estimate = estimates.estimate_training(
        big, get_task("fin_sentiment"), preset_config("quick"), estimates.hardware()
    )
    assert any("days" in w for w in estimate.warnings)


def test_jobs_page_shows_queue_and_failure_reason(db, no_worker):
    from core.jobs import queue

    job_id = queue.submit(
        db, "eval", {"model_id": "tiny-llama", "tasks": ["fin_sentiment"], "limit": 4}
    )
    queue.mark_running(db, job_id, pid=None)
    queue.mark_failed(db, job_id, "killed (SIGKILL): the system ran out of memory")
    at = page("jobs").run()
    assert not at.exception
    table = tables(at)[0]
    assert str(job_id) in set(table["Job"])
    assert "SIGKILL" in texts(at.error)
    assert "Traceback" not in texts(at.error)


def test_a_running_job_shows_its_latest_log_line_under_the_bar(db, no_worker):
    from pathlib import Path

    from core.jobs import queue

    job_id = queue.submit(
        db, "eval", {"model_id": "tiny-llama", "tasks": ["fin_sentiment"], "limit": 4}
    )
    queue.mark_running(db, job_id, pid=None)
    log = Path(queue.get(db, job_id)["log_path"])
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text(
        "[07:12:01] phase: evaluating base model\n"
        "Loading weights: 100%|##########| 272/272\n"  # a library's line: not the latest of ours
        "[07:12:38] task 2/4 eps_extraction: base accuracy 0.007 (150 items, 37 s)\n"
        "Generating: 40%\n"
    )
    at = page("jobs").run()
    assert not at.exception
    assert "Latest: [07:12:38] task 2/4 eps_extraction: base accuracy 0.007" in texts(at.caption)


def test_jobs_page_empty_state(db):
    at = page("jobs").run()
    assert not at.exception
    assert "No jobs yet" in texts(at.info)


def test_gpu_monitor_without_gpu_shows_cpu_and_ram(db):
    at = page("gpu_monitor").run()
    assert not at.exception
    assert "No NVIDIA GPU" in texts(at.info)
    labels = metrics(at)
    assert "CPU" in labels and "RAM" in labels


def _fine_tune_form(at: AppTest) -> AppTest:
    return at.radio[0].set_value("Also Fine-tune and Compare").run()


def test_switching_presets_fills_every_field_with_the_new_preset(db, no_worker):
    from core.training.config import preset_config

    at = _fine_tune_form(page("launch").run())
    for name in ("standard", "quick", "standard"):
        at.selectbox(key="launch_preset").set_value(name).run()
        assert not at.exception
        wanted = preset_config(name)
        assert at.number_input(key="adv_epochs").value == wanted.epochs
        assert at.number_input(key="adv_batch_size").value == wanted.batch_size
        assert at.select_slider(key="adv_learning_rate").value == wanted.learning_rate
        assert at.selectbox(key="launch_method").value == wanted.method


def test_a_method_other_than_the_preset_s_is_said_and_queued_as_shown(db, no_worker):
    import json
    import shlex

    from click.testing import CliRunner

    from core.cli import main

    at = _fine_tune_form(page("launch").run())
    at.selectbox(key="launch_method").set_value("prompt-tuning").run()
    assert "preset is a LoRA preset: this run uses **Prompt tuning**" in texts(at.info)
    shown = [n.label for n in at.number_input]
    assert "num virtual tokens" in shown and "lora r" not in shown  # only that method's knobs
    at.number_input(key="adv_epochs").set_value(2.0).run()
    command = next(c for c in code_blocks(at) if c.startswith("finboard finetune-compare"))
    assert "--method prompt-tuning" in command and "--set epochs=2.0" in command
    next(b for b in at.button if b.label.startswith("Start")).click().run()
    from_page = json.loads(db.execute("select params_json from jobs").fetchone()[0])
    assert from_page["config"]["method"] == "prompt-tuning" and from_page["config"]["epochs"] == 2.0

    result = CliRunner().invoke(main, [*shlex.split(command)[1:], "--no-wait"])
    assert result.exit_code == 0, result.output
    from_cli = json.loads(db.execute("select params_json from jobs order by id desc").fetchone()[0])
    for params in (from_page, from_cli):
        params.pop("new_model_id")
    assert from_cli == from_page  # the preview is exactly the job the button queued


def test_the_estimate_covers_the_whole_job(db, no_worker):
    at = _fine_tune_form(page("launch").run())
    words = texts(at.caption)
    for phase in ("evaluating base model", "training", "evaluating fine-tuned model"):
        assert phase in words


def test_jobs_page_shows_the_guard_s_pauses_and_the_attempts(db, no_worker):
    from core.jobs import queue

    job_id = queue.submit(
        db, "eval", {"model_id": "tiny-llama", "tasks": ["fin_sentiment"], "limit": 4}
    )
    queue.mark_running(db, job_id, pid=None)
    queue.add_event(db, job_id, "pause", "paused before step 3: GPU 0 at 88 °C (limit 82 °C)")
    queue.add_event(db, job_id, "resume", "resumed after 42.0 s paused", 42.0)
    first = {"attempt": 1, "micro_batch": 8, "outcome": "out of memory", "reason": "out of memory"}
    queue.set_attempts(db, job_id, [first])
    at = page("jobs").run()
    assert not at.exception
    markdown = texts(at.markdown)
    assert "Resource guard" in markdown and "paused 42 s" in markdown
    frames = [frame.value for frame in at.dataframe]
    events = next(t for t in frames if "Event" in t.columns)
    assert list(events["Event"]) == ["pause", "resume"] and "88 °C" in events["What"].iloc[0]
    attempts = next(t for t in frames if "outcome" in t.columns)
    assert list(attempts["outcome"]) == ["out of memory"]


def test_gpu_monitor_shows_the_guard_limits_and_saves_new_ones(db, finboard_home):
    from core import guard

    at = page("gpu_monitor").run()
    assert not at.exception
    assert "Resource guard" in texts(at.subheader)
    assert "CPU runs pause while less than 512 MB" in texts(at.caption)
    at.number_input[2].set_value(2048.0)
    at.selectbox[0].set_value("shrink")
    at = at.button[0].click().run()
    assert not at.exception and "Saved" in texts(at.success)
    saved = guard.load_settings()
    assert saved.min_free_ram_mb == 2048.0 and saved.action == "shrink"
    assert (Path(finboard_home) / "guard.yaml").is_file()


def test_launch_previews_how_a_record_becomes_the_model_s_input(db, no_worker):
    from conftest import code_blocks

    at = _fine_tune_form(page("launch").run())
    assert not at.exception
    assert any("prompt tokens (no loss)" in c for c in texts(at.caption).split("\n")) or (
        "prompt tokens (no loss)" in texts(at.caption)
    )
    assert any("\u27e6" in block for block in code_blocks(at))


def test_jobs_page_shows_a_generate_job_s_running_counts(db, no_worker):
    import os

    from core.jobs import queue

    params = {"name": "gen_page", "model_id": "tiny-llama-chat", "count": 16, "batch_size": 4}
    job_id = queue.submit(db, "generate", {**params, "checkpoint_every": 4})
    queue.mark_running(db, job_id, pid=os.getpid())
    queue.set_phase(db, job_id, "generating: 8/16 raw, 5 kept, 3 rejected, eta 20s")
    queue.set_progress(db, job_id, 0.5, 20)
    at = page("jobs").run()
    assert not at.exception
    assert "Generate data" in set(tables(at)[0]["Kind"])
    assert "generating: 8/16 raw, 5 kept, 3 rejected" in " ".join(tables(at)[0]["Phase"])


def test_the_jobs_page_moves_along_the_demo_s_jobs_until_the_user_picks_one(db, no_worker):
    from core.jobs import queue

    params = {"model_id": "tiny-llama", "tasks": ["fin_sentiment"], "limit": 4}
    first, second = (queue.submit(db, "eval", params) for _ in range(2))
    queue.mark_running(db, first, pid=None)
    at = page("jobs")
    at.session_state["followed_jobs"] = [first, second]  # as "Run the demo" leaves it
    at.run()
    assert at.selectbox[0].value == first
    queue.mark_succeeded(db, first, {})
    queue.mark_running(db, second, pid=None)
    at.run()
    assert at.selectbox[0].value == second  # the panel followed the demo to its next job
    at.selectbox[0].set_value(first).run()
    queue.mark_succeeded(db, second, {})
    at.run()
    assert at.selectbox[0].value == first  # the job the user picked stays shown
