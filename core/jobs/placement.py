"""Which queued jobs start now, and on which GPUs: the worker's placement, pure and testable.

    >>> plan = place([0, 1, 2, 3], [[1]], [{"id": 7, "params": {"gpus": 2}},
    ...                                    {"id": 8, "params": {}}])
    >>> [(p.job_id, p.gpu_ids) for p in plan.start]
    [(7, [0, 2]), (8, [3])]

The rules (``place``):

- a GPU is never given to two jobs; a job gets the lowest free indices it asks for (``gpus``,
  default 1); a ``"gpus": "all"`` job waits until every GPU of the machine is free;
- strict first in, first out: when the oldest queued job cannot be placed yet, no later job
  starts, so a big job is never starved by a stream of small ones behind it;
- a job asking for more GPUs than the machine has would wait forever: it is refused (the
  worker fails it with the reason, "asks for 8 GPUs; this machine has 4");
- on a machine without a GPU, one job runs at a time (whatever it asks): CPU jobs share the
  same cores, and its ``processes`` already spread one job over them;
- a job submitted ``external`` (to be started by a multi-machine launch) is never started
  here and holds nobody up.

The machine's GPUs (``machine_gpus``) are the ones NVML sees, unless ``FINBOARD_GPUS`` says
otherwise: a count (``FINBOARD_GPUS=4``: GPUs 0-3) or a list of indices (``FINBOARD_GPUS=0,2``;
one GPU alone as ``2,``); ``0`` or an empty value means none (jobs run on the CPU, one at a
time). It lets a user keep some GPUs for other work (the worker never gives a job a GPU not
listed), and lets the tests fake a 4-GPU machine on a CPU-only box. The worker sets each job's
``CUDA_VISIBLE_DEVICES`` to the indices it gave the job (that overrides one in the worker's own
environment: restrict the worker with ``FINBOARD_GPUS`` instead).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from core.jobs.devices import DeviceRequestError, request_of

GPUS_ENV = "FINBOARD_GPUS"


# ---------------------------------------------------------------- the machine


def parse_gpus(text: str) -> list[int]:
    """The GPU indices ``FINBOARD_GPUS`` names: a count, or indices with a comma.

    >>> parse_gpus("4"), parse_gpus("0,2"), parse_gpus("2,"), parse_gpus("0"), parse_gpus("")
    ([0, 1, 2, 3], [0, 2], [2], [], [])
    """
    text = text.strip()
    if not text:
        return []
    parts = [part.strip() for part in text.split(",")]
    if not all(part.isdigit() for part in parts if part) or not any(parts):
        raise ValueError(
            f"{GPUS_ENV} must be a GPU count ('4') or GPU indices ('0,2'), not {text!r}"
        )
    if "," not in text:
        return list(range(int(text)))
    return sorted({int(part) for part in parts if part})


def machine_gpus() -> list[int]:
    """The GPU indices the worker may give jobs: ``FINBOARD_GPUS`` when set, else every GPU
    NVML sees (cheap: torch is never imported); [] on a machine without a GPU."""
    configured = os.environ.get(GPUS_ENV)
    if configured is not None:
        return parse_gpus(configured)
    from core import monitoring

    return list(range(monitoring.gpu_count()))


# ---------------------------------------------------------------- recording devices


def devices_text(gpu_ids: list[int] | None, processes: int = 1) -> str:
    """What a job runs on, as the jobs table shows it.

    >>> devices_text([0, 1]), devices_text(None), devices_text(None, 2)
    ('cuda:0,1', 'cpu', 'cpu x2')
    """
    if gpu_ids:
        return "cuda:" + ",".join(str(index) for index in gpu_ids)
    return "cpu" if processes <= 1 else f"cpu x{processes}"


def gpus_of(devices: str | None, machine: list[int]) -> list[int]:
    """The GPUs a running job holds, from its ``devices`` text. A job without one was started
    by a worker that gave every job every GPU, so it holds them all until it ends.

    >>> gpus_of("cuda:1,3", [0, 1, 2, 3]), gpus_of("cpu x2", [0, 1]), gpus_of(None, [0, 1])
    ([1, 3], [], [0, 1])
    """
    if devices is None:
        return list(machine)
    if not devices.startswith("cuda:"):
        return []
    return [int(part) for part in devices.removeprefix("cuda:").split(",") if part.isdigit()]


# ---------------------------------------------------------------- placing jobs


@dataclass(frozen=True)
class Start:
    """Start job ``job_id`` now on ``gpu_ids`` (None: on the CPU, the machine has no GPU)."""

    job_id: int
    gpu_ids: list[int] | None


@dataclass(frozen=True)
class Refusal:
    """Job ``job_id`` can never run here: fail it with ``reason``."""

    job_id: int
    reason: str


@dataclass
class Plan:
    start: list[Start] = field(default_factory=list)
    refuse: list[Refusal] = field(default_factory=list)


def _too_big(asked: int, machine: list[int]) -> str:
    return f"asks for {asked} GPUs; this machine has {len(machine)}"


def _external(job: dict[str, Any]) -> bool:
    """A job a multi-machine launch runs (a bad request is refused below, not skipped)."""
    return (job.get("params") or {}).get("external") is True


def place(machine: list[int], running: Iterable[list[int]], queued: list[dict[str, Any]]) -> Plan:
    """Which of the ``queued`` jobs (rows with ``id`` and ``params``, oldest first) start now.

    ``machine``: the GPU indices jobs may use ([] without a GPU); ``running``: the GPUs each
    running job holds (one list per job, [] for one on the CPU). See the module's rules.
    """
    running = list(running)
    plan = Plan()
    queued = [job for job in queued if not _external(job)]
    if not machine:
        if not running and queued:
            plan.start.append(Start(int(queued[0]["id"]), None))
        return plan
    held = {index for gpus in running for index in gpus}
    free = [index for index in sorted(machine) if index not in held]
    for job in queued:
        try:
            asked = request_of(job.get("params") or {}).gpu_count(len(machine))
        except DeviceRequestError as exc:
            plan.refuse.append(Refusal(int(job["id"]), str(exc)))
            continue
        if asked > len(machine):
            plan.refuse.append(Refusal(int(job["id"]), _too_big(asked, machine)))
            continue
        if asked > len(free):
            break  # strict FIFO: nobody overtakes the oldest job
        plan.start.append(Start(int(job["id"]), free[:asked]))
        free = free[asked:]
    return plan
