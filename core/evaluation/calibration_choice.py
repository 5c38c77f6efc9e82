"""Whether to calibrate a model's answers on a task, decided on the validation split.

Contextual calibration removes a zero-shot model's bias towards one label, but it can hurt a
fine-tuned model whose raw label probabilities are already right (SmolLM2 fine-tuned on
``fin_sentiment``: 0.910 calibrated against 0.985 uncalibrated). So, per model and task, both
ways are scored on the **validation** split (never the test split, which would leak the
choice into the reported score) and the better one is used for the reported score:

    >>> choose([True, True, False], [True, False, False]).calibrated
    True
    >>> choose([True, False, False], [True, True, False]).calibrated
    False
    >>> choose([True, False], [True, False]).calibrated   # a tie: the simpler, raw answer
    False
    >>> choose([], []).calibrated is None                 # no validation items: the task's default
    True

The choice and both validation accuracies are stored with the score (``calibration_choice``
in its metrics); the test split's calibrated and uncalibrated accuracies are stored too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

RULE = (
    "calibrate only when it raises the validation accuracy (a tie keeps the raw answer); "
    "chosen on the validation split, never the test split"
)


@dataclass(frozen=True)
class CalibrationChoice:
    """The decision and what it was decided on."""

    calibrated: bool | None  # None: no validation items to decide on (the task's default used)
    validation_calibrated: float | None
    validation_uncalibrated: float | None
    n_validation: int
    rule: str = RULE

    def apply(self, task_default: bool = True) -> bool:
        """Whether to calibrate: the choice, or the task's default without validation items."""
        return task_default if self.calibrated is None else self.calibrated

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _accuracy(correct: Sequence[bool]) -> float | None:
    return sum(map(bool, correct)) / len(correct) if correct else None


def choose(calibrated_correct: Sequence[bool], raw_correct: Sequence[bool]) -> CalibrationChoice:
    """Calibrate when the calibrated answers are right more often on the validation items."""
    if len(calibrated_correct) != len(raw_correct):
        raise ValueError("calibrated and raw answers must cover the same validation items")
    calibrated, raw = _accuracy(calibrated_correct), _accuracy(raw_correct)
    decision = None if calibrated is None or raw is None else calibrated > raw
    return CalibrationChoice(decision, calibrated, raw, len(raw_correct))


def primary_label(metrics: dict[str, Any]) -> str | None:
    """How a stored score's primary metric was answered: 'calibrated', 'uncalibrated' or None.

    >>> primary_label({"calibration_choice": {"calibrated": False}})
    'uncalibrated'
    >>> primary_label({"accuracy": {"value": 1.0}}) is None
    True
    """
    choice = metrics.get("calibration_choice")
    if not isinstance(choice, dict) or choice.get("calibrated") is None:
        return None
    return "calibrated" if choice["calibrated"] else "uncalibrated"
