"""How the worker starts a job's process: one function, one branch per backend.

>>> launch_command(7, {"kind": "eval", "params": {}})[1:]
['-m', 'core.jobs.run', '7']
>>> launch_command(7, {"kind": "train", "params": {}}, gpu_ids=[2, 3], port=29611)[1:6]
['-m', 'accelerate.commands.launch', '--multi_gpu', '--num_processes', '2']
"""

from __future__ import annotations

import os
import socket
import sys
from typing import Any

from core.jobs.devices import request_of


def free_port() -> int:
    """A TCP port nobody listens on now: each data-parallel job rendezvous on its own port, so
    two jobs on one machine never meet."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def process_count(job: dict[str, Any], gpu_ids: list[int] | None) -> int:
    """How many processes run the job: one per GPU it was given, else its CPU ``processes``."""
    if gpu_ids:
        return len(gpu_ids)
    return request_of(job.get("params") or {}).processes


def launch_command(
    job_id: int,
    job: dict[str, Any] | None = None,
    gpu_ids: list[int] | None = None,
    port: int | None = None,
) -> list[str]:
    """The argv that runs job ``job_id`` (``job``: its row; read when None).

    ``gpu_ids``: the GPUs the worker gave the job (it sets ``CUDA_VISIBLE_DEVICES`` to them);
    None or empty on a machine without GPUs.

    - One process (one GPU, or the CPU with ``processes`` 1): ``python -m core.jobs.run ID``.
    - Several (GPUs, or CPU ``processes`` > 1): Hugging Face Accelerate's launcher, which runs
      torch.distributed's elastic agent: one process per GPU (NCCL) or per CPU share (gloo),
      every one running ``core.jobs.run ID``; rank 0 keeps the job row up to date. If any rank
      dies the agent stops the others and exits with an error (the job fails with the reason).
      (``--multi_gpu`` is Accelerate's name for "torchrun"; on CPU the ranks use gloo.)

    Several machines run the same entry point through ``accelerate launch --num_machines N
    --machine_rank R --main_process_ip HEAD`` (README, "More than one GPU").
    """
    run = ["-m", "core.jobs.run", str(job_id)]
    if job is None:
        from core import store
        from core.jobs import queue

        job = queue.get(store.connect(), job_id)
    processes = process_count(job, gpu_ids)
    if processes <= 1:
        return [sys.executable, *run]
    accelerate = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu"]
    accelerate += ["--num_processes", str(processes), "--num_machines", "1"]
    accelerate += ["--main_process_port", str(port or free_port())]
    accelerate += ["--mixed_precision", "no", "--dynamo_backend", "no", "--monitor_interval", "0.2"]
    if not gpu_ids:
        # CPU ranks share the cores; without this every rank would start one thread per core.
        threads = max(1, (os.cpu_count() or 1) // processes)
        accelerate += ["--num_cpu_threads_per_process", str(threads)]
    return [*accelerate, *run]


def machines_command(
    job_id: int, machines: int, machine_rank: int, processes: int, head: str, port: int = 29500
) -> list[str]:
    """The argv to run on machine ``machine_rank`` of ``machines`` for an ``external`` job.

    ``processes``: all ranks together (e.g. 2 machines x 4 GPUs = 8). Every machine runs the
    same entry point; they meet at ``head:port``; global rank 0 (on machine 0) keeps the job's
    row up to date, so every machine must reach the store (``FINBOARD_DB`` on a shared disk)
    and the adapters folder.

    >>> machines_command(9, 2, 1, 8, "10.0.0.1")[4:12]
    ['--num_machines', '2', '--machine_rank', '1', '--main_process_ip', '10.0.0.1', '--main_process_port', '29500']
    """
    accelerate = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu"]
    accelerate += ["--num_machines", str(machines), "--machine_rank", str(machine_rank)]
    accelerate += ["--main_process_ip", head, "--main_process_port", str(port)]
    accelerate += ["--num_processes", str(processes), "--mixed_precision", "no"]
    accelerate += ["--dynamo_backend", "no", "--monitor_interval", "0.2"]
    return [*accelerate, "-m", "core.jobs.run", str(job_id)]
