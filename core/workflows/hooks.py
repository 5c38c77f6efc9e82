"""The one object a recipe reports to: phases, training and evaluation progress, stop, energy.

    >>> hooks = Hooks()
    >>> hooks.phase("training"); hooks.eval_progress(3, 10); hooks.should_stop()
    False

A job (``core.jobs.run.JobContext``) subclasses it to write the reports into the store; the CLI
and tests use it as it is, or a subclass that records what it was told.
"""

from __future__ import annotations

from typing import Any


class Hooks:
    """No-op hooks: report nothing, never stop, no energy reading."""

    job_id: int | None = None

    def phase(self, name: str) -> None:
        """A new phase of the work begins (``name`` is shown to the user)."""

    def train_progress(self, row: dict[str, Any]) -> None:
        """One training progress row (step, losses, learning rate, tokens/s, ETA)."""

    def train_step(self, step: int, total_steps: int) -> None:
        """An optimizer step is done (every step; ``train_progress`` comes every few)."""

    def eval_progress(self, done: float, total: float) -> None:
        """How far the current evaluation phase is: ``done`` of ``total`` (items scored, or for
        a phase that scores several tasks, their expected seconds)."""

    def note(self, message: str) -> None:
        """One line for the job's log: what was done and what came of it."""

    def should_stop(self) -> bool:
        """True once the user asked to stop."""
        return False

    def energy_wh(self) -> float | None:
        """Energy used so far in Wh (None where it is not measured)."""
        return None
