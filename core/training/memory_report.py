"""QLoRA's memory saving, measured: the base weights loaded in 4-bit against the same model in
full precision, each in a fresh process, plus the run's peak training memory.

    >>> reduction_percent(250.0, 1000.0)
    75.0

Each load runs in its own Python (``python -m core.training.memory_report MODEL MODE DEVICE``)
so one load's memory cannot hide in the other's: the figure is the process's resident memory
(RSS, from ``/proc/self/status``) after loading minus before, on CPU; on CUDA the allocated
GPU memory after loading (``torch.cuda.memory_allocated``). The tensors' own bytes
(``model.get_memory_footprint()``) are reported beside it. Nothing is computed from the
parameter count.
"""

from __future__ import annotations

import gc
import json
import subprocess
import sys
from typing import Any

MODES = ("4bit", "full")


def rss_mb() -> float:
    """This process's resident memory now (Linux ``VmRSS``), in MiB."""
    with open("/proc/self/status", encoding="ascii") as status:
        lines = status.read().splitlines()
    for line in lines:
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("VmRSS not found in /proc/self/status")


def reduction_percent(small: float | None, large: float | None) -> float | None:
    """How much smaller ``small`` is than ``large``, in percent (None without both)."""
    if not small or not large:
        return None
    return round(100 * (1 - small / large), 1)


def measure_here(model_id: str, mode: str, device: str, dtype: str | None) -> dict[str, Any]:
    """Load the base in ``mode`` in this process and measure what the load added."""
    import torch

    from core.models.loading import load_model
    from core.models.registry import get_model

    entry = get_model(model_id)
    gc.collect()
    before_rss = rss_mb()
    before_cuda = torch.cuda.memory_allocated() if device == "cuda" else 0
    loaded = load_model(entry, device=device, dtype=dtype, load_in_4bit=mode == "4bit")
    gc.collect()
    measured = {
        "mode": mode,
        "dtype": loaded.dtype_name,
        "device": device,
        "tensor_mb": loaded.model.get_memory_footprint() / 2**20,
    }
    if device == "cuda":
        measured["what"] = "CUDA allocated memory after loading the weights"
        measured["mb"] = (torch.cuda.memory_allocated() - before_cuda) / 2**20
    else:
        measured["what"] = "process RSS after loading minus before (CPU)"
        measured["mb"] = rss_mb() - before_rss
    return measured


def measure_in_subprocess(
    model_id: str, mode: str, device: str, dtype: str | None
) -> dict[str, Any]:
    """``measure_here`` in a fresh Python, so the two loads do not share memory."""
    command = [sys.executable, "-m", "core.training.memory_report", model_id, mode, device]
    command += [dtype or "auto"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"Measuring the {mode} load of {model_id} failed: {done.stderr[-600:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def qlora_report(
    model_id: str, device: str, dtype: str | None, peak_training_mb: float | None
) -> dict[str, Any]:
    """The base weights' memory in 4-bit and in full precision, measured, and the reduction."""
    four_bit = measure_in_subprocess(model_id, "4bit", device, dtype)
    full = measure_in_subprocess(model_id, "full", device, dtype)
    return {
        "measured": four_bit["what"],
        "base_4bit_mb": four_bit["mb"],
        "base_full_mb": full["mb"],
        "full_dtype": full["dtype"],
        "reduction_percent": reduction_percent(four_bit["mb"], full["mb"]),
        "tensor_4bit_mb": four_bit["tensor_mb"],
        "tensor_full_mb": full["tensor_mb"],
        "tensor_reduction_percent": reduction_percent(four_bit["tensor_mb"], full["tensor_mb"]),
        "peak_training_mb": peak_training_mb,
        "peak_training_what": "CUDA peak allocation" if device == "cuda" else "peak process RSS",
    }


if __name__ == "__main__":
    model, load_mode, where, wanted = sys.argv[1:5]
    print(json.dumps(measure_here(model, load_mode, where, None if wanted == "auto" else wanted)))
