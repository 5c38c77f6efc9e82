"""Training speed: our trainer against the reference plain-PEFT script, same model, data and epochs.

Runs ``../shared/reference/plain_peft_baseline.py`` (transformers.Trainer + peft, fp32,
pad-to-longest, loss on every token) and ``core.training.Trainer`` one after the other in one
run, on the same de-quantized model directory, the same examples (the task's training split,
written as prompt/completion JSONL for the reference) and the same LoRA settings, epochs,
batch size, learning rate and maximum length.

Both tokens/s figures count the non-padding prompt and completion tokens of the examples
processed (the reference: its own count; ours: the same examples' prompt + completion tokens,
the shared prompt prefix included although it is computed once per batch). Our time is the
optimizer steps' wall time; the reference's is ``trainer.train()``'s.

The two losses are each side's mean training loss over the run, on different bases: the
reference's is over every token (prompt and completion), ours over the completion tokens we
train on. Both are printed so a run that trained badly shows.

    python bench/train_speed.py [--model smollm2-135m-instruct] [--task fin_sentiment]
        [--examples 200] [--epochs 1]

The last line is a JSON object with ``ratio`` = our tokens/s ÷ the reference's.
Target: ratio >= 2.0 on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from core.data.items import Item
from core.models.loading import model_directory
from core.models.registry import get_model
from core.tasks.prompts import user_message
from core.tasks.spec import get_task, load_split
from core.training.config import TrainConfig
from core.training.trainer import Trainer, load_for_training

REFERENCE = Path(__file__).resolve().parents[2] / "shared" / "reference" / "plain_peft_baseline.py"


def write_jsonl(spec, items: list[Item], path: Path) -> None:
    """The task's examples as the reference reads them: the user turn and the answer."""
    with path.open("w", encoding="utf-8") as handle:
        for item in items:
            prompt = user_message(spec, item)
            if spec.instruction:
                prompt = f"{spec.instruction}\n\n{prompt}"
            handle.write(json.dumps({"prompt": prompt, "completion": item.answer}) + "\n")


def run_reference(model_dir: Path, data: Path, args: argparse.Namespace) -> dict:
    command = [
        sys.executable,
        str(args.reference),
        "--model",
        str(model_dir),
        "--data",
        str(data),
        "--epochs",
        str(args.epochs),
        "--batch-size",
        str(args.batch_size),
        "--max-length",
        str(args.max_length),
        "--lora-r",
        str(args.lora_r),
        "--lr",
        str(args.lr),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"reference script failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_ours(entry, spec, args: argparse.Namespace, run_dir: Path) -> dict:
    config = TrainConfig(
        method="lora",
        lora_r=args.lora_r,
        lora_alpha=2 * args.lora_r,
        lora_dropout=0.05,
        target_modules="all-linear",
        learning_rate=args.lr,
        epochs=args.epochs,
        batch_size=args.batch_size,
        max_seq_length=args.max_length,
        max_train_examples=args.examples,
        eval_every=10**9,
        save_every=10**9,
        log_every=10**9,
        warmup_ratio=0.0,
        scheduler="linear",
        dtype=args.dtype,
    )
    trainer = Trainer(load_for_training(entry, config), spec, config, run_dir)
    result = trainer.run()
    return {
        "examples": len(trainer.train_examples),
        "tokens": result.train_tokens,
        "seconds": round(result.train_seconds, 3),
        "tokens_per_s": round(result.tokens_per_s, 2),
        "final_loss": round(result.mean_train_loss, 4),
        "dtype": result.dtype,
        "notes": result.notes,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--task", default="fin_sentiment")
    parser.add_argument(
        "--examples", type=int, default=200, help="training examples (from the train split)"
    )
    parser.add_argument("--epochs", type=float, default=1)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--lora-r", type=int, default=16)
    parser.add_argument("--lr", type=float, default=2e-4)
    parser.add_argument(
        "--dtype", default="auto", help="our compute dtype (default: best for the hardware)"
    )
    parser.add_argument("--reference", type=Path, default=REFERENCE)
    args = parser.parse_args()

    entry, spec = get_model(args.model), get_task(args.task)
    items = load_split(spec, "train").items[: args.examples]
    model_dir = model_directory(entry)
    with tempfile.TemporaryDirectory(prefix="train_speed_") as tmp:
        data = Path(tmp) / "train.jsonl"
        write_jsonl(spec, items, data)
        print(
            f"model={entry.id} task={spec.name} examples={len(items)} epochs={args.epochs}",
            flush=True,
        )
        start = time.perf_counter()
        reference = run_reference(model_dir, data, args)
        print(
            f"reference: {reference['tokens_per_s']:8.1f} tokens/s  loss {reference['final_loss']:.4f} (all tokens)   [{time.perf_counter() - start:.0f} s]",
            flush=True,
        )
        start = time.perf_counter()
        ours = run_ours(entry, spec, args, Path(tmp) / "ours")
        print(
            f"ours     : {ours['tokens_per_s']:8.1f} tokens/s  loss {ours['final_loss']:.4f} (completion tokens)   [{time.perf_counter() - start:.0f} s]  {ours['dtype']}; {'; '.join(ours['notes'])}",
            flush=True,
        )
    print(
        json.dumps(
            {
                "model": entry.id,
                "task": spec.name,
                "examples": len(items),
                "epochs": args.epochs,
                "reference": reference,
                "ours": ours,
                "reference_final_loss": reference["final_loss"],
                "ours_final_loss": ours["final_loss"],
                "loss_bases": {"reference": "all tokens", "ours": "completion tokens"},
                "ratio": round(ours["tokens_per_s"] / reference["tokens_per_s"], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
