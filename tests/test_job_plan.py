"""A fine-tune-and-compare's plan and bar cover every task both models are scored on, and a
GGUF model's first use is in its load estimate."""

from __future__ import annotations

import pytest

from core.analysis import estimates
from core.evaluation.runner import EvalOptions
from core.models.loading import load_model
from core.models.registry import get_model
from core.tasks.authoring import create_synthetic_task
from core.tasks.spec import get_task
from core.training.config import preset_config
from core.workflows import finetune_compare
from core.workflows.finetune_compare import SeriesProgress, scored_tasks, training_budget_s
from core.workflows.hooks import Hooks

pytestmark = pytest.mark.usefixtures("one_thread")


class RecordedProgress(Hooks):
    """Hooks that keep each evaluation progress report as a fraction."""

    def __init__(self) -> None:
        self.fractions: list[float] = []
        self.notes: list[str] = []

    def eval_progress(self, done: float, total: float) -> None:
        self.fractions.append(done / total)

    def note(self, message: str) -> None:
        self.notes.append(message)


@pytest.fixture
def chat(finboard_home):
    return get_model("tiny-llama-chat")


@pytest.fixture
def small_task(finboard_home):
    """A user task outside the default suite: a fine-tune of it is scored on four tasks."""
    return create_synthetic_task(
        "sentiment_small", "fin_sentiment", 7, {"train": 32, "validation": 8, "test": 24}
    )


def _phases(plan) -> dict[str, float]:
    return {phase.name: phase.seconds for phase in plan}


def test_the_plan_counts_every_task_both_models_are_scored_on(db, chat, small_task):
    hw = estimates.hardware()
    config = preset_config("quick")
    tasks = scored_tasks(db, chat, small_task)
    assert [t.name for t in tasks][0] == "sentiment_small" and len(tasks) == 4
    plan = _phases(estimates.training_plan(chat, small_task, config, hw, db, compare=True))
    each = [estimates.estimate_eval(chat, task, hw, db).seconds for task in tasks]
    assert plan["evaluating base model"] == pytest.approx(sum(each))
    assert plan["evaluating fine-tuned model"] == pytest.approx(sum(each))
    # the trained task alone is the smallest part: 24 of the 524 test items
    assert estimates.estimate_eval(chat, small_task, hw, db).seconds < 0.1 * sum(each)


def test_the_plan_trains_no_longer_than_the_budget_leaves(db, small_task):
    hw = estimates.hardware()
    smollm = get_model("smollm2-135m-instruct")  # estimated from its size: nothing is loaded
    config = preset_config("quick", {"max_minutes": 1, "epochs": 5})  # over a minute of steps
    plan = _phases(estimates.training_plan(smollm, small_task, config, hw, db, compare=True))
    unlimited = estimates.estimate_training(smollm, small_task, config, hw, db).seconds
    before = plan["loading the base model"] + plan["evaluating base model"]
    budget = training_budget_s(config, before, plan["evaluating fine-tuned model"])
    assert budget < unlimited and plan["training"] == pytest.approx(budget)


def test_a_phase_of_several_tasks_moves_through_all_of_them():
    hooks = RecordedProgress()
    series = SeriesProgress(hooks, [10.0, 30.0, 60.0])  # each task's expected seconds
    ends = []
    for index, items in enumerate([4, 2, 5]):
        report = series.of_task(index)
        for done in range(items + 1):
            report(done, items)
        ends.append(hooks.fractions[-1])
    assert ends == pytest.approx([0.1, 0.4, 1.0])  # each task ends at its share, not at 1
    assert hooks.fractions == sorted(hooks.fractions)


def test_the_base_scores_report_one_bar_over_the_tasks(db, chat, small_task):
    loaded = load_model(chat, device="cpu")
    tasks = [small_task, get_task("fin_sentiment")]
    hooks = RecordedProgress()
    scoring = {"db": db, "options": EvalOptions(limit=8), "job_id": None}
    scores = finetune_compare._base_scores(db, loaded, tasks, hooks, scoring)
    assert set(scores) == {"sentiment_small", "fin_sentiment"}
    assert hooks.fractions == sorted(hooks.fractions) and hooks.fractions[-1] == pytest.approx(1)
    # the first task ends at its share of the expected time, not at a full bar
    weights = estimates.evaluation_seconds(chat, tasks, estimates.hardware(), None)
    first_share = weights[0] / sum(weights)
    assert first_share < 0.5
    assert any(f == pytest.approx(first_share) for f in hooks.fractions)
    # the job's log says what each evaluation gave
    assert [note.split(":")[0] for note in hooks.notes] == [
        "task 1/2 sentiment_small",
        "task 2/2 fin_sentiment",
    ]
    assert "base accuracy" in hooks.notes[1] and "(8 items" in hooks.notes[1]
    again = RecordedProgress()
    finetune_compare._base_scores(
        db, loaded, tasks, again, {**scoring, "options": EvalOptions()}
    )  # whole test splits: stored, then reused by a second job
    reused = RecordedProgress()
    finetune_compare._base_scores(db, loaded, tasks, reused, {**scoring, "options": EvalOptions()})
    assert len(reused.notes) == 2
    assert all("stored score of these weights is reused" in note for note in reused.notes)


def test_a_gguf_models_first_use_is_in_its_load_time(isolated_cache, finboard_home):
    hw = estimates.hardware()
    smollm, tiny = get_model("smollm2-135m-instruct"), get_model("tiny-llama-chat")
    assert estimates.prepare_seconds(smollm) == estimates.GGUF_PREPARE_S[smollm.id]
    assert estimates.load_seconds(smollm, hw) > estimates.GGUF_PREPARE_S[smollm.id]
    assert estimates.prepare_seconds(tiny) == 0.0  # a local directory: nothing to prepare
