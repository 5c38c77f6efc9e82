"""How the worker starts a job's process: one function, so another backend is one branch more."""

from __future__ import annotations

import sys
from typing import Any

from core.jobs import kinds


def visible_gpus() -> int:
    """CUDA devices this process may use (CUDA_VISIBLE_DEVICES applied); 0 without a GPU.

    NVML is asked first because it is cheap: with at most one GPU, torch is never imported.
    """
    from core import monitoring

    if monitoring.gpu_count() <= 1:
        return monitoring.gpu_count()
    import torch

    return torch.cuda.device_count()


def launch_command(job_id: int, job: dict[str, Any] | None = None) -> list[str]:
    """The argv that runs job ``job_id`` (``job``: its row, to see its kind; read when None).

    - Default (evaluations, and training on one GPU or on CPU): the job in one Python process,

          [python, "-m", "core.jobs.run", "<id>"]

    - Training with more than one visible CUDA device: Hugging Face Accelerate's launcher starts
      one process per GPU (data parallel); every process runs ``core.jobs.run`` and rank 0 keeps
      the job row up to date:

          [python, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "<N>",
           "-m", "core.jobs.run", "<id>"]

    To add a backend (torchrun, a cluster's ``srun``, a remote host), add a branch here that
    returns its argv; the worker runs whatever this returns in a new process group, with
    stdout/stderr to the job's log, and cancels by SIGTERM to that group.
    """
    run = ["-m", "core.jobs.run", str(job_id)]
    if job is None:
        from core import store
        from core.jobs import queue

        job = queue.get(store.connect(), job_id)
    if kinds.get(job["kind"]).trains:
        gpus = visible_gpus()
        if gpus > 1:
            accelerate = ["-m", "accelerate.commands.launch", "--multi_gpu"]
            return [sys.executable, *accelerate, "--num_processes", str(gpus), *run]
    return [sys.executable, *run]
