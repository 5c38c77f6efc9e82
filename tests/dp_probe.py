"""Run by tests/test_data_parallel.py, in 1 process or under torchrun: train or evaluate the tiny
model and write what this rank did to ``OUT/rank-<r>.json``.

    python tests/dp_probe.py train OUT STEPS [fsdp] # STEPS optimizer steps of LoRA
    python tests/dp_probe.py guard OUT STEPS        # the same, rank 0's guard pausing at step 1
    python tests/dp_probe.py eval OUT               # evaluate fin_sentiment (rank 0 stores it)

The training record has, per micro-batch, the training-example indices this rank computed,
and at the end the adapter's fp32 master weights and the first step's summed gradients (rank 0
saves both as safetensors).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

from core import parallel, store
from core.models.registry import get_model
from core.tasks.spec import get_task
from core.training.config import TrainConfig
from core.training.trainer import NoHooks, Trainer, load_for_training

CONFIG = {  # fp32 and no dropout: the 1- and 2-process runs must compute the same thing
    "method": "lora",
    "dtype": "fp32",
    "lora_dropout": 0.0,
    "batch_size": 4,
    "grad_accum": 2,
    "max_train_examples": 48,
    "learning_rate": 5e-3,
    "eval_every": 100000,
    "save_every": 100000,
    "log_every": 1,
    "seed": 11,
}


GUARD_PAUSE_S = 8.0  # rank 0's guard holds step 1 this long ...
GUARD_BUDGET_S = 6.0  # ... longer than the whole time budget: only the held time extends it


class PausingGuard(NoHooks):
    """A resource guard as a job's: on rank 0 it pauses before step 1 and asks for two passes
    per micro-batch; it must never be asked on another rank (rank 0 decides for all)."""

    def __init__(self, rank: int) -> None:
        self.rank = rank

    def between_steps(self, step: int, split: int, max_split: int) -> int:
        assert self.rank == 0, "the guard was asked on a rank other than 0"
        if step == 1:
            time.sleep(GUARD_PAUSE_S)
            return 2
        return split


def train(out: Path, steps: int, fsdp: bool = False, guarded: bool = False) -> None:
    world = parallel.current()
    config = TrainConfig(**CONFIG, fsdp=fsdp)
    loaded = load_for_training(get_model("tiny-llama-chat"), config)
    hooks = PausingGuard(world.rank) if guarded else None
    budget = GUARD_BUDGET_S if guarded else None
    # numeric answers: completions of different lengths, so the ranks' shares hold different
    # numbers of completion tokens and a per-rank loss normalisation would show
    trainer = Trainer(loaded, get_task("eps_extraction"), config, out / "run", hooks, world, budget)
    trainer.setup()
    trainer.total_micro = steps * config.grad_accum  # stop after STEPS optimizer steps
    trainer.total_steps = trainer.planned_steps = steps  # a time budget refits to these
    index = {id(example): i for i, example in enumerate(trainer.train_examples)}
    seen: list[list[int]] = []
    compute = trainer.completion_loss

    def recording(examples):
        if all(id(e) in index for e in examples):  # training, not validation, examples
            seen.append(sorted(index[id(e)] for e in examples))
        return compute(examples)

    trainer.completion_loss = recording
    summed = trainer._sum_over_ranks
    first_grads: list = []

    def keep_first_gradients(loss_sum):
        value = summed(loss_sum)
        if not first_grads:
            first_grads.extend(m.grad.detach().cpu().clone() for m in trainer.masters)
        return value

    trainer._sum_over_ranks = keep_first_gradients
    result = trainer.run()
    masters = {f"p{i}": m.detach().cpu().contiguous() for i, m in enumerate(trainer.masters)}
    if world.is_main:
        save_file(masters, out / "masters.safetensors")
        grads = {f"p{i}": g.contiguous() for i, g in enumerate(first_grads)}
        save_file(grads, out / "first_gradients.safetensors")
    record = {
        "rank": world.rank,
        "size": world.size,
        "seen": seen,
        "batches_per_epoch": trainer.batches_per_epoch,
        "global_batches": [
            sorted(index[id(e)] for e in trainer._micro_batch(m))
            for m in range(trainer.total_micro)
        ],
        "n_train": len(trainer.train_examples),
        "steps": result.steps,
        "tokens": result.train_tokens,
        "mean_train_loss": result.mean_train_loss,
        "world_size": result.world_size,
        "notes": result.notes,
    }
    (out / f"rank-{world.rank}.json").write_text(json.dumps(record))


def evaluate(out: Path) -> None:
    from core.evaluation.runner import EvalOptions
    from core.evaluation.runner import evaluate as run_eval
    from core.models.loading import load_model

    world = parallel.current()
    db = store.connect()
    loaded = load_model(get_model("tiny-llama"), dtype="fp32")
    summary = run_eval(loaded, get_task("fin_sentiment"), db=db, options=EvalOptions())
    (out / f"rank-{world.rank}.json").write_text(json.dumps({"summary": summary}, default=str))


if __name__ == "__main__":
    torch.set_num_threads(1)
    kind, folder = sys.argv[1], Path(sys.argv[2])
    folder.mkdir(parents=True, exist_ok=True)
    if kind in ("train", "guard"):
        train(folder, int(sys.argv[3]), fsdp="fsdp" in sys.argv[4:], guarded=kind == "guard")
    else:
        evaluate(folder)
