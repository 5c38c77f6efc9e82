"""What a job asks for to run on: GPUs (``gpus``) or, on a CPU-only machine, processes.

Every job kind takes two optional params, checked at submit:

- ``gpus``: how many GPUs the job's data-parallel run uses: a whole number >= 1 (default 1)
  or ``"all"`` (one run over every GPU of the machine). Ignored where there is no GPU.
- ``processes``: on a machine without a GPU, how many CPU processes run the job data-parallel
  (torch.distributed with gloo; default 1). Ignored where GPUs are used.
- ``external``: true for a job that a multi-machine launch will run (``accelerate launch
  --num_machines N ... -m core.jobs.run ID`` on every machine): the worker leaves it queued.

    >>> check_request({"gpus": "all"}), check_request({"processes": 2})
    ({'gpus': 'all'}, {'processes': 2})
    >>> check_request({"gpus": 0})
    Traceback (most recent call last):
    ...
    core.jobs.devices.DeviceRequestError: gpus must be a whole number of at least 1 or 'all', not 0
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

DEVICE_PARAMS = ("gpus", "processes", "external")
ALL = "all"


class DeviceRequestError(ValueError):
    """A ``gpus`` / ``processes`` request that makes no sense; the message says why."""


@dataclass(frozen=True)
class DeviceRequest:
    gpus: int | str = 1  # a count, or ALL
    processes: int = 1  # CPU processes where no GPU is used
    external: bool = False  # started by a multi-machine launch, never by the worker

    def gpu_count(self, machine_gpus: int) -> int:
        """The GPUs this request takes on a machine with ``machine_gpus`` (0: none).

        >>> DeviceRequest(gpus="all").gpu_count(4), DeviceRequest(gpus=2).gpu_count(0)
        (4, 0)
        """
        if machine_gpus <= 0:
            return 0
        return machine_gpus if self.gpus == ALL else int(self.gpus)


def _whole(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def check_request(params: dict[str, Any]) -> dict[str, Any]:
    """The ``gpus`` / ``processes`` params of a request, checked and normalised (only those
    given); DeviceRequestError for a bad one."""
    checked: dict[str, Any] = {}
    if params.get("gpus") is not None:
        gpus = params["gpus"]
        count = _whole(gpus)
        if isinstance(gpus, str) and gpus.strip().lower() == ALL:
            checked["gpus"] = ALL
        elif count is None or count < 1:
            raise DeviceRequestError(
                f"gpus must be a whole number of at least 1 or 'all', not {gpus!r}"
            )
        else:
            checked["gpus"] = count
    if params.get("processes") is not None:
        count = _whole(params["processes"])
        if count is None or count < 1:
            raise DeviceRequestError(
                f"processes must be a whole number of at least 1, not {params['processes']!r}"
            )
        checked["processes"] = count
    if params.get("external") is not None:
        if not isinstance(params["external"], bool):
            raise DeviceRequestError(f"external must be true or false, not {params['external']!r}")
        checked["external"] = params["external"]
    return checked


def request_of(params: dict[str, Any]) -> DeviceRequest:
    """The device request stored in a job's params (defaults where none was given)."""
    checked = check_request(params)
    return DeviceRequest(
        gpus=checked.get("gpus", 1),
        processes=checked.get("processes", 1),
        external=checked.get("external", False),
    )
