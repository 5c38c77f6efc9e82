"""The time budget (``max_minutes``): fitting the steps, re-planning the schedule, the job's share."""

from __future__ import annotations

import dataclasses
import time

import pytest
import torch
from test_training import TINY

from core.models.registry import get_model
from core.tasks.spec import get_task
from core.training.budget import StepCosts, checks_in, fit_steps
from core.training.config import TrainConfig, preset_config
from core.training.finetune import TrainPlan
from core.training.trainer import Trainer, load_for_training
from core.workflows.finetune_compare import (
    AFTER_TRAINING_S,
    MIN_TRAIN_SHARE,
    TUNED_EVAL_FACTOR,
    over_budget_note,
    with_training_budget,
)

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = dataclasses.replace(TINY, save_every=100, scheduler="linear")  # 4 steps


def _cost(fit, costs: StepCosts, done: int) -> float:
    left = fit.total_steps - done
    return left * costs.per_step_s + checks_in(left, done, fit.eval_every) * costs.per_check_s


@pytest.mark.parametrize("seconds_left", [5.0, 40.0, 100.0, 290.0])
def test_a_cut_run_fits_the_time_left_and_keeps_a_few_checks(seconds_left):
    costs = StepCosts(per_step_s=2.0, per_check_s=6.0)
    fit = fit_steps(costs, seconds_left, done_steps=3, planned_steps=150, eval_every=20)
    assert fit.cut and 3 < fit.total_steps < 150
    assert _cost(fit, costs, 3) <= max(seconds_left, costs.per_step_s + costs.per_check_s)
    assert checks_in(fit.total_steps - 3, 3, fit.eval_every) <= 4


def test_a_run_that_fits_is_left_as_planned():
    fit = fit_steps(StepCosts(1.0, 5.0), 1000.0, done_steps=3, planned_steps=100, eval_every=20)
    assert (fit.total_steps, fit.eval_every, fit.cut) == (100, 20, False)


def test_checks_count_every_nth_step_and_the_last():
    assert checks_in(10, 0, 5) == 2  # steps 5 and 10
    assert checks_in(11, 0, 5) == 3  # 5, 10 and the end (11)
    assert checks_in(7, 3, 5) == 2  # 5 and 10 of steps 4..10


@pytest.fixture
def chat(finboard_home):
    return get_model("tiny-llama-chat")


def test_fitting_replans_the_schedule_over_the_new_total(chat, tmp_path):
    spec = get_task("fin_sentiment")
    config = TrainConfig(**{**SMALL.to_dict(), "max_train_examples": 64, "batch_size": 2})
    trainer = Trainer(load_for_training(chat, config), spec, config, tmp_path)
    trainer.setup()
    assert trainer.total_steps == 32
    trainer.budget_s, trainer.created_at = 10.5, time.perf_counter()
    # 1 s a step and 1 s a check measured; checks may take a quarter of the ~10.5 s left:
    # 2 checks and 8 more steps fit.
    trainer._fit_budget(3, {"train_seconds": 3.0, "tokens": 300}, per_check_s=1.0)
    assert (trainer.total_steps, trainer.eval_every, trainer.total_micro) == (11, 6, 11)
    peak = config.learning_rate
    assert trainer.scheduler.get_last_lr()[0] == pytest.approx(peak * (1 - 3 / 11))
    assert any("11 of 32 planned steps fit" in note for note in trainer.notes)


def test_dear_validation_passes_leave_the_time_to_the_steps():
    # a corpus with long worked answers: 60 s a validation pass, 4.6 s a step, 260 s left
    fit = fit_steps(StepCosts(per_step_s=4.6, per_check_s=60.0), 260.0, 3, 225, 20)
    assert fit.cut and fit.eval_every == fit.total_steps  # one check, at the end
    assert fit.total_steps == 3 + 43  # (260 - 60) / 4.6 steps, not 17 behind three checks


def test_an_ample_budget_changes_nothing(chat, tmp_path):
    spec = get_task("fin_sentiment")
    plain = Trainer(load_for_training(chat, SMALL), spec, SMALL, tmp_path / "plain")
    plain.run()
    budgeted = Trainer(
        load_for_training(chat, SMALL), spec, SMALL, tmp_path / "budget", budget_s=3600.0
    )
    result = budgeted.run()
    assert result.steps == 4
    assert any("all 4 planned steps fit" in note for note in result.notes)
    for a, b in zip(plain.masters, budgeted.masters, strict=True):
        assert torch.equal(a, b)


def test_a_spent_budget_stops_after_the_first_step_and_keeps_the_adapter(chat, tmp_path):
    spec = get_task("fin_sentiment")
    trainer = Trainer(load_for_training(chat, SMALL), spec, SMALL, tmp_path, budget_s=1e-3)
    result = trainer.run()
    assert result.status == "completed" and result.steps == 1
    assert result.adapter_dir and any("time budget reached" in n for n in result.notes)


def quick_plan(base, max_minutes: float) -> TrainPlan:
    """The quick preset's fine-tune of ``base`` on fin_sentiment, with this budget."""
    return TrainPlan(
        base=base,
        task=get_task("fin_sentiment"),
        config=preset_config("quick", {"max_minutes": max_minutes}),
        new_model_id="x",
        run_dir=None,
    )


def test_the_job_gives_training_what_the_evaluations_leave(chat):
    plan = quick_plan(chat, 5)
    budgeted = with_training_budget(plan, elapsed_s=30.0, eval_s=20.0)
    assert budgeted.train_budget_s == pytest.approx(
        300 - 30 - AFTER_TRAINING_S - TUNED_EVAL_FACTOR * 20
    )
    unlimited = with_training_budget(quick_plan(chat, 0), 30.0, 20.0)
    assert unlimited.train_budget_s is None


def test_training_keeps_its_floor_when_the_evaluations_take_the_budget(chat):
    plan = quick_plan(chat, 7)
    # a slow host: loading and the base's evaluations 193 s, the tuned ones as long again
    budgeted = with_training_budget(plan, elapsed_s=193.0, eval_s=184.0)
    assert budgeted.train_budget_s == pytest.approx(MIN_TRAIN_SHARE * 420)
    note = over_budget_note(7, 530.0, budgeted.train_budget_s)
    assert note and "8.8 min of a 7 min budget" in note and "floor of 126 s" in note


def test_a_job_within_its_budget_has_no_overrun_note():
    assert over_budget_note(7, 400.0, 100.0) is None
    assert over_budget_note(0, 4000.0, None) is None
    assert "floor" not in over_budget_note(7, 450.0, 300.0)


def test_the_quick_preset_has_a_budget():
    assert preset_config("quick").max_minutes > 0
