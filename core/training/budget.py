"""A time budget for one training run: fit the optimizer steps to the speed measured.

A preset's ``max_minutes`` is a promise about the whole fine-tune-and-compare, but the speed
it depends on (tokens/s on this machine, for this task's lengths) is known only once training
runs. So the trainer takes its first few steps as planned, measures them, and — if the rest of
the plan does not fit the seconds left — trains fewer steps, with the learning-rate schedule
re-planned over the new total and the validation checks spaced so a few still happen. A run
that fits is left exactly as planned. Past the deadline (a slower patch of the run than its
start), the trainer stops at the next step and keeps the adapter it has.

    >>> fit = fit_steps(StepCosts(per_step_s=2.0, per_check_s=6.0), seconds_left=100.0,
    ...                 done_steps=3, planned_steps=150, eval_every=20)
    >>> fit.total_steps, fit.eval_every, fit.cut
    (41, 11, True)
    >>> fit_steps(StepCosts(1.0, 2.0), 500.0, done_steps=3, planned_steps=40, eval_every=20).cut
    False
"""

from __future__ import annotations

import math
from dataclasses import dataclass

PROBE_STEPS = 3  # steps measured before fitting (the first carries one-time set-up)
CHECKS_WHEN_CUT = 4  # validation checks a cut run still gets (the last one at the end)...
MAX_CHECK_SHARE = 0.25  # ...as long as they take at most this share of the seconds left


@dataclass(frozen=True)
class StepCosts:
    per_step_s: float  # one optimizer step, measured
    per_check_s: float  # one validation pass (measured, or estimated from tokens)


@dataclass(frozen=True)
class Fit:
    total_steps: int
    eval_every: int
    cut: bool  # fewer steps than planned

    def note(self, planned_steps: int, budget_s: float, costs: StepCosts) -> str:
        """What the budget did, in words, for the run's notes."""
        if not self.cut:
            return (
                f"time budget {budget_s / 60:.1f} min: all {planned_steps} planned steps fit "
                f"({costs.per_step_s:.2f} s a step measured)"
            )
        return (
            f"time budget {budget_s / 60:.1f} min: {self.total_steps} of {planned_steps} planned "
            f"steps fit ({costs.per_step_s:.2f} s a step measured); schedule re-planned over "
            f"{self.total_steps} steps, validation every {self.eval_every}"
        )


def checks_in(steps_left: int, done_steps: int, eval_every: int) -> int:
    """Validation passes in steps ``done+1 .. done+steps_left`` (every ``eval_every`` and at the end)."""
    end = done_steps + steps_left
    return end // eval_every - done_steps // eval_every + (0 if end % eval_every == 0 else 1)


def fit_steps(
    costs: StepCosts, seconds_left: float, done_steps: int, planned_steps: int, eval_every: int
) -> Fit:
    """The steps (and validation spacing) that fit ``seconds_left``; at least one more step."""
    steps_left = planned_steps - done_steps
    needed = (
        steps_left * costs.per_step_s
        + checks_in(steps_left, done_steps, eval_every) * costs.per_check_s
    )
    if steps_left <= 0 or needed <= seconds_left:
        return Fit(planned_steps, eval_every, cut=False)
    # validation is worth some of the time, not most: where a pass is dear (a corpus with long
    # worked answers: 60 s a pass against 4.6 s a step) fewer checks leave the steps the time
    checks = max(
        1, min(CHECKS_WHEN_CUT, math.floor(MAX_CHECK_SHARE * seconds_left / costs.per_check_s))
    )
    while True:
        fit_left = math.floor((seconds_left - checks * costs.per_check_s) / costs.per_step_s)
        if fit_left >= checks or checks == 1:
            break
        checks -= 1
    total = done_steps + max(1, min(steps_left, fit_left))
    return Fit(total, max(1, math.ceil(total / checks)), cut=True)
