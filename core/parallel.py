"""The data-parallel world a process belongs to: its rank, the world size, and the few
collective operations training and evaluation need.

A job launched with several processes (``core.jobs.launch``: Hugging Face Accelerate's
launcher over torch.distributed) finds ``WORLD_SIZE`` > 1 in its environment; ``current()``
then joins the process group through Accelerate (NCCL on GPUs, gloo on CPU) once. A plain
process is a world of one, and every operation below is then a no-op, so the single-process
code path is the same code.

    >>> world = World()
    >>> world.size, world.is_main, world.share(list(range(5)))
    (1, True, [0, 1, 2, 3, 4])
    >>> World(rank=1, size=2).share(list(range(5)))
    [1, 3]
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0
    device: str | None = None  # this rank's device under a launcher (cuda:<local rank>)

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes files, rows and the log's progress lines."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def device_type(self) -> str:
        """ "cuda" when the ranks run on GPUs, else "cpu" (the device mesh's type)."""
        return "cuda" if self.device and self.device.startswith("cuda") else "cpu"

    def share(self, items: Sequence[T]) -> list[T]:
        """This rank's share of ``items``: every ``size``-th one from ``rank`` on.

        The shares are disjoint and together are ``items``; strided, so the ranks of a
        length-sorted batch get examples of about the same lengths.
        """
        return list(items[self.rank :: self.size])

    def sum_(self, tensor: Any) -> Any:
        """``tensor`` summed over every rank, in place (and returned)."""
        if self.distributed:
            import torch.distributed as dist

            dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
        return tensor

    def sum_floats(self, *values: float) -> list[float]:
        """Each value summed over every rank (one collective for all of them)."""
        if not self.distributed:
            return list(values)
        import torch

        tensor = torch.tensor(values, dtype=torch.float64, device=self._collective_device())
        return [float(v) for v in self.sum_(tensor).tolist()]

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` is true on any rank (every rank gets the same answer)."""
        return self.sum_floats(float(flag))[0] > 0

    def broadcast_(self, tensor: Any) -> Any:
        """Rank 0's ``tensor`` on every rank, in place."""
        if self.distributed:
            import torch.distributed as dist

            dist.broadcast(tensor, src=0)
        return tensor

    def gather(self, value: T) -> list[T] | None:
        """Every rank's ``value`` (any picklable object) on rank 0, in rank order; None on the
        other ranks."""
        if not self.distributed:
            return [value]
        import torch.distributed as dist

        gathered: list[Any] | None = [None] * self.size if self.is_main else None
        dist.gather_object(value, gathered, dst=0)
        return gathered

    def share_from_main(self, value: T) -> T:
        """Rank 0's ``value`` (any picklable object) on every rank."""
        if not self.distributed:
            return value
        import torch.distributed as dist

        box = [value if self.is_main else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def barrier(self) -> None:
        """Wait until every rank got here."""
        if self.distributed:
            import torch.distributed as dist

            dist.barrier()

    def _collective_device(self) -> str:
        """Where tensors for collectives live: NCCL needs them on the GPU, gloo on the CPU."""
        return self.device if self.device and self.device.startswith("cuda") else "cpu"


_CURRENT: World | None = None


def launched_size() -> int:
    """The world size a launcher set in the environment (1 for a plain process)."""
    try:
        return max(1, int(os.environ.get("WORLD_SIZE", "1")))
    except ValueError:
        return 1


def current() -> World:
    """This process's world, joining the process group on first use under a launcher."""
    global _CURRENT
    if _CURRENT is None:
        _CURRENT = _join() if launched_size() > 1 else World()
    return _CURRENT


def _join() -> World:
    import torch
    from accelerate import PartialState

    state = PartialState(cpu=not torch.cuda.is_available())
    device = str(state.device) if state.device.type == "cuda" else None
    return World(
        rank=state.process_index,
        size=state.num_processes,
        local_rank=state.local_process_index,
        device=device,
    )
