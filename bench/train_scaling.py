"""Data-parallel scaling: the quick preset on the embedded model with 1 and with N processes.

Both sides train the same examples with the same settings (the quick preset: LoRA, batch 8,
the same global batches and schedule) through ``core.training.Trainer``; the N-process side runs
under torch.distributed's launcher (the one ``accelerate launch`` wraps), each rank computing
its share of every global batch and the adapter's gradients summed over the ranks (gloo on
CPU, NCCL on GPUs). The cores are split evenly: 1 process uses every core, N processes use
cores / N threads each, so the ratio says what splitting the same machine buys.

On CPU the ratio shows the overhead honestly: the ranks share the same cores and memory
bandwidth, and each step adds one all-reduce of the adapter's gradients. On a machine with
several GPUs (``--device cuda``), each rank gets a GPU of its own.

    python bench/train_scaling.py [--processes 2] [--examples 96] [--device cpu|cuda]

Prints both sides' tokens/s and their dtype, the CPU flags that chose the dtype, and as its last
line a JSON object with ``one``, ``many`` (tokens/s, seconds, mean loss) and ``ratio``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from machine import cpu_flags

REPO = Path(__file__).resolve().parents[1]
MODEL = "smollm2-135m-instruct"


def train_here(out: Path, examples: int) -> None:
    """One side's training (every rank runs this); rank 0 writes the figures to ``out``."""
    import torch

    from core import parallel
    from core.models.registry import get_model
    from core.tasks.spec import get_task
    from core.training.config import preset_config
    from core.training.trainer import Trainer, load_for_training

    world = parallel.current()
    threads = max(1, (os.cpu_count() or 1) // world.size)
    torch.set_num_threads(threads)
    config = preset_config(
        "quick", {"max_train_examples": examples, "eval_every": 100000, "save_every": 100000}
    )
    loaded = load_for_training(get_model(MODEL), config, device=world.device)
    trainer = Trainer(loaded, get_task("fin_sentiment"), config, out / "run", world=world)
    result = trainer.run()
    if world.is_main:
        figures = {
            "processes": world.size,
            "threads_per_process": threads,
            "tokens_per_s": round(result.tokens_per_s, 1),
            "train_seconds": round(result.train_seconds, 1),
            "steps": result.steps,
            "tokens": result.train_tokens,
            "mean_train_loss": round(result.mean_train_loss or 0.0, 4),
            "dtype": result.dtype,
            "device": result.device,
        }
        (out / "result.json").write_text(json.dumps(figures))


def side(processes: int, examples: int, root: Path) -> dict:
    out = root / f"p{processes}"
    out.mkdir(parents=True)
    me = [str(Path(__file__).resolve()), "--run-here", str(out), "--examples", str(examples)]
    if processes == 1:
        command = [sys.executable, *me]
    else:
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        command += ["--nproc-per-node", str(processes), *me]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    subprocess.run(command, cwd=REPO, env=env, check=True)
    return json.loads((out / "result.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--examples", type=int, default=96)
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    parser.add_argument("--run-here", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if args.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
    if args.run_here:
        train_here(args.run_here, args.examples)
        return
    root = Path(tempfile.mkdtemp(prefix="train_scaling_"))
    one = side(1, args.examples, root)
    many = side(args.processes, args.examples, root)
    ratio = many["tokens_per_s"] / one["tokens_per_s"]
    print(f"CPU flags: {cpu_flags()}")
    for name, figures in (("1 process", one), (f"{args.processes} processes", many)):
        print(
            f"{name:12s} {figures['tokens_per_s']:8.1f} tokens/s  {figures['train_seconds']:6.1f} s"
            f"  loss {figures['mean_train_loss']:.4f}  {figures['dtype']} on {figures['device']}"
            f"  ({figures['threads_per_process']} threads each)"
        )
    print(f"scaling ratio ({args.processes} / 1): {ratio:.2f}")
    print(json.dumps({"one": one, "many": many, "ratio": round(ratio, 3)}))


if __name__ == "__main__":
    main()
