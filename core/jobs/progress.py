"""One progress bar and ETA for a whole job, across its phases, from each phase's estimated cost.

    >>> clock = iter([0.0, 0.0, 20.0, 60.0]).__next__  # seconds since the job began
    >>> bar = JobProgress([Phase("loading", 10), Phase("training", 80), Phase("scoring", 10)],
    ...                   clock=clock)
    >>> bar.enter("loading"); bar.enter("training"); bar.update(0.5)
    >>> bar.fraction  # 10 + 40 of the 100 planned seconds
    0.5
    >>> round(bar.eta_s)  # 50 planned seconds left, at the pace so far (50 in 60 s)
    60

A job's plan names its phases in order with the seconds each is expected to take (measured
speeds of earlier runs where there are any, see ``core.analysis.estimates.job_plan``). The
bar is the share of the planned seconds done: finished phases count whole, the current one by
the fraction it reports (or, until it reports one, by the time spent in it against its
estimate, capped below its end so the bar moves from the first second but never runs ahead).
The bar never goes back. The ETA is the planned seconds left, scaled by how the job has done
so far against its plan.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

CREEP_CAP = 0.9  # a phase without its own progress reports is shown at most this far along


@dataclass(frozen=True)
class Phase:
    name: str
    seconds: float  # its estimated cost


class JobProgress:
    """The whole-job fraction and ETA of a job following ``plan``."""

    def __init__(self, plan: list[Phase], clock: Callable[[], float] = time.monotonic) -> None:
        self.plan = [Phase(p.name, max(0.1, float(p.seconds))) for p in plan]
        self.clock = clock
        self.started = clock()
        self.index = -1
        self.phase_started = self.started
        self.phase_fraction = 0.0
        self.reported = False  # the current phase reported a fraction of its own
        self.best = 0.0

    @property
    def total(self) -> float:
        return sum(p.seconds for p in self.plan)

    def enter(self, name: str) -> None:
        """The job starts phase ``name`` (one not in the plan is added with an average cost)."""
        names = [p.name for p in self.plan]
        if name in names[self.index + 1 :]:
            self.index = names.index(name, self.index + 1)
        else:
            average = self.total / max(1, len(self.plan))
            self.plan.insert(self.index + 1, Phase(name, average))
            self.index += 1
        self.phase_started = self.clock()
        self.phase_fraction, self.reported = 0.0, False

    def update(self, fraction: float) -> None:
        """The current phase is ``fraction`` (0..1) done."""
        self.phase_fraction = max(self.phase_fraction, min(1.0, max(0.0, float(fraction))))
        self.reported = True

    def _current_fraction(self) -> float:
        if self.reported or self.index < 0:
            return self.phase_fraction
        spent = self.clock() - self.phase_started
        return min(CREEP_CAP, spent / self.plan[self.index].seconds)

    def _done_seconds(self) -> float:
        if self.index < 0:
            return 0.0
        done = sum(p.seconds for p in self.plan[: self.index])
        return done + self.plan[self.index].seconds * self._current_fraction()

    @property
    def fraction(self) -> float:
        """The share of the whole job done (never less than an earlier reading)."""
        self.best = max(self.best, min(1.0, self._done_seconds() / self.total))
        return self.best

    @property
    def eta_s(self) -> float | None:
        """Seconds left: the planned seconds left, scaled by the pace so far."""
        done = self._done_seconds()
        left = max(0.0, self.total - done)
        elapsed = self.clock() - self.started
        if done < 0.05 * self.total or elapsed <= 0:
            return left
        return left * (elapsed / done)

    @property
    def phase_name(self) -> str | None:
        return self.plan[self.index].name if self.index >= 0 else None
