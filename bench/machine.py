"""What the machine can do: the CPU flags that decide the dtype, and measured matmul throughput.

A benchmark's items/s or tokens/s on an AVX2-only CPU (fp32) and on an AVX-512-BF16 one (bf16)
differ by about 2x for the same code; the matmul peak measured here, in the dtype a side ran
in, turns either figure into a utilisation that can be compared across machines.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path

import torch

ISA_CAP_VARIABLES = ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY")  # read by oneDNN and ATen
# glibc's heap arenas and oneDNN's compiled-kernel cache: on a bf16 CPU the cache alone moved
# training from 314 to 461 tokens/s (core/jobs/worker.py job_env sets both for job processes)
MEMORY_VARIABLES = ("MALLOC_ARENA_MAX", "ONEDNN_PRIMITIVE_CACHE_CAPACITY")


def cpu_flags() -> str:
    """The CPU features that decide bf16 on CPU."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown"
    flags = next(
        (line.split(":", 1)[1].split() for line in text.splitlines() if "flags" in line), []
    )
    wanted = ("avx2", "avx512f", "avx512_bf16", "amx_bf16")
    found = " ".join(flag for flag in wanted if flag in flags) or "none of avx2/avx512"
    return found + isa_caps()


def isa_caps() -> str:
    """The instruction-set caps in force, said beside the flags: an AVX2-only run emulated on a
    newer CPU (oneDNN and ATen kept to AVX2) is labelled so, never passed off as the real one."""
    caps = [f"{name}={os.environ[name]}" for name in ISA_CAP_VARIABLES if os.environ.get(name)]
    return f" (capped: {', '.join(caps)})" if caps else ""


def memory_settings(env: Mapping[str, str] | None = None) -> str:
    """The allocator and kernel-cache settings in ``env`` (this process's by default), said with
    every figure: in-process benches run both sides on the libraries' defaults, jobs on
    ``job_env``'s."""
    env = os.environ if env is None else env
    found = [f"{name}={env[name]}" for name in MEMORY_VARIABLES if env.get(name)]
    return " ".join(found) or "library defaults"


@torch.inference_mode()
def matmul_peak_flops(
    dtype: torch.dtype, device: str = "cpu", size: int | None = None, repeats: int = 8
) -> float:
    """The best FLOP/s of a square ``size`` matmul in ``dtype`` on ``device``.

    On the CPU all of torch's threads, 1024-wide; on a GPU 8192-wide (a GPU needs large
    products to reach its peak). The best of ``repeats`` timings, each of several products,
    so a neighbour's burst on a shared machine lowers the figure less than it would a mean.
    """
    size = size or (8192 if device.startswith("cuda") else 1024)
    a = torch.randn(size, size, device=device).to(dtype)
    b = torch.randn(size, size, device=device).to(dtype)

    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    torch.mm(a, b)  # warm-up: kernel selection, page faults
    sync()
    per_timing = 4
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(per_timing):
            torch.mm(a, b)
        sync()
        best = min(best, (time.perf_counter() - start) / per_timing)
    return 2 * size**3 / best


def device_name(device: str) -> str:
    """The accelerator's name (``NVIDIA H200``), or the CPU flags that decide the dtype."""
    if device.startswith("cuda"):
        return torch.cuda.get_device_name()
    return cpu_flags()


def decoder_flops_per_token(model: torch.nn.Module) -> float:
    """Forward FLOPs per token of the weight matmuls, embeddings excluded: 2 x parameters.

    The LM head is excluded too (it runs only on the positions a scorer keeps; count it
    separately). Attention's own products are small at these lengths and left out, so the
    utilisation computed from this is a slight underestimate.
    """
    skip = {id(p) for p in model.get_input_embeddings().parameters()}
    head = model.get_output_embeddings()
    if head is not None:
        skip |= {id(p) for p in head.parameters()}
    return 2.0 * sum(p.numel() for p in model.parameters() if id(p) not in skip)


def head_flops_per_token(model: torch.nn.Module) -> float:
    """Forward FLOPs of the LM head at one position: 2 x its weights (0 without a head)."""
    head = model.get_output_embeddings()
    return 2.0 * head.weight.numel() if head is not None else 0.0


def executed_training_flops(
    body_per_token: float, head_per_token: float, decoder_tokens: int, head_positions: int
) -> float:
    """The matmul FLOPs a LoRA training run executes in the frozen model: the forward pass and
    the backward pass's input gradients (each as much as the forward) for every token run
    through the decoder, and for every position the LM head is applied at.

    Frozen weights get no weight gradients, so this is 4 x parameters a token where the
    usual MFU counts 6; the adapter's own products are a fraction of a percent and left out.
    Work done once for many rows (a shared prompt prefix) counts once.
    """
    return 2.0 * (body_per_token * decoder_tokens + head_per_token * head_positions)
