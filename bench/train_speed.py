"""Training speed: our trainer against TRL's SFTTrainer and the plain-PEFT reference script.

Three sides, one after the other in one run, on the same de-quantized model directory, the
same examples (the task's training split) and the same LoRA settings, epochs, batch size,
learning rate and maximum length:

- TRL (``bench/trl_peer.py``): ``SFTTrainer`` with a peft ``LoraConfig`` (same rank, alpha,
  dropout, all-linear modules), completion-only loss, padding-free batches, in the dtype our
  trainer ran in (bf16 on a CPU with AVX-512 BF16, else fp32), on prompt/completion texts
  rendered by our renderer (so both see the same chat-templated text);
- reference: ``../shared/reference/plain_peft_baseline.py`` (transformers.Trainer + peft,
  fp32, pad-to-longest, loss on every token);
- ours: ``core.training.Trainer``.

Tokens/s counts the non-padding prompt and completion tokens of the examples processed (the
reference: its own count; TRL: its tokenized dataset's lengths (every epoch's rows); ours: the same
examples' tokens, the shared prompt prefix included although it is computed once per batch).
Times are the training loops' wall time.

Losses on one basis: after training, both ours and TRL's adapters are scored on the same
``--heldout`` validation rows by the same function, the mean cross-entropy of the completion
tokens (``heldout_completion_loss``). The reference's training loss (all tokens) is printed
so a run that trained badly shows.

    python bench/train_speed.py [--model smollm2-135m-instruct] [--task fin_sentiment]
        [--examples 200] [--epochs 1] [--heldout 64] [--seeds 3]

Paired: TRL trains on our trainer's batches, in our order, from our adapter's initial
weights (``trl_peer.trl_train``'s ``batches`` and ``init``). On 200 rows and 25 steps, one
shuffle's held-out loss differs from another's by ~0.05 (measured: TRL over its own six
shuffles 0.389-0.452), more than any difference between the trainers; unpaired, the
comparison measured the luck of the shuffle. Paired, what is left is the trainers
themselves (their dropout masks and rounding). ``--seeds`` seeds (order, init, dropout)
are run, and the losses compared as means over the seeds (tokens/s as medians).
``--first-seed K`` adds seeds to an earlier run's sample; ``bench/seeds.py`` pools such
runs' outputs into one paired comparison.

The last line is a JSON object with ``trl_ratio`` = our tokens/s ÷ TRL's, ``ratio`` = ours ÷
the reference's and both held-out losses. Targets: trl_ratio >= 1.5 with our held-out loss
no worse than TRL's; ratio >= 2.0 on a 2-core CPU.

On a GPU (the issue's throughput check; the weights do not matter for speed, and a lent
machine has no hub access), a randomly initialised Llama-3.2-1B-shaped model, bf16:

    python bench/train_speed.py --random-shape llama-3.2-1b --no-reference --seeds 1 \
        --examples 512 --batch-size 32

``device`` and ``device_name`` in the last line say where it ran; the matmul peak is then
measured on the GPU in that dtype (8192-wide products).

Needs the bench extra: pip install -e ".[bench]" (lm-eval, trl).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from machine import (
    cpu_flags,
    decoder_flops_per_token,
    device_name,
    executed_training_flops,
    head_flops_per_token,
    matmul_peak_flops,
    memory_settings,
)
from random_model import SHAPES, write_random_model
from seeds import paired_ci
from transformers import AutoTokenizer
from trl_peer import heldout_completion_loss, load_adapter, trl_train

from core.data.items import Item
from core.models.loading import model_directory
from core.models.registry import ModelEntry, ModelSource, get_model
from core.tasks.examples import Example, build_examples
from core.tasks.prompts import render, user_message
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


def lora_settings(args: argparse.Namespace) -> dict:
    """The LoRA settings both our trainer and the TRL peer use."""
    return {
        "r": args.lora_r,
        "lora_alpha": 2 * args.lora_r,
        "lora_dropout": args.lora_dropout,
        "target_modules": "all-linear",
    }


def rendered_rows(entry, spec, items: list[Item]) -> list[dict[str, str]]:
    """Prompt/completion texts exactly as our trainer renders them (chat template applied)."""
    tokenizer = AutoTokenizer.from_pretrained(model_directory(entry))
    rows = []
    for item in items:
        rendered = render(spec, item, tokenizer, entry.instruct)
        rows.append({"prompt": rendered.prompt, "completion": rendered.completion})
    return rows


def held_out_examples(entry, spec, args: argparse.Namespace) -> list[Example]:
    """The validation rows both adapters are scored on, tokenized as our trainer does."""
    tokenizer = AutoTokenizer.from_pretrained(model_directory(entry))
    items = load_split(spec, "validation").items[: args.heldout]
    return build_examples(spec, items, tokenizer, entry.instruct, args.max_length)


def summary(seeds: list[dict], side: str) -> dict:
    """One side over the seeds: the first seed's figures, the median tokens/s (a noisy
    machine's slow run counts less) and the mean held-out loss, with each seed's."""
    runs = [s[side] for s in seeds]
    losses = [r["heldout_loss"] for r in runs]
    return {
        **runs[0],
        "tokens_per_s": round(statistics.median(r["tokens_per_s"] for r in runs), 2),
        "heldout_losses": losses,
        "heldout_loss": round(statistics.fmean(losses), 4),
    }


def training_order(trainer: Trainer) -> list[list[int]]:
    """Every batch our trainer will train on (indices into its examples), in its order."""
    batches = []
    for epoch in range(math.ceil(trainer.total_micro / trainer.batches_per_epoch)):
        batches += trainer.epoch_batches(epoch)
    return batches[: trainer.total_micro]


def initial_adapter(trainer: Trainer) -> dict[str, torch.Tensor]:
    """The adapter's weights before the first step, by parameter name (fp32 copies)."""
    return {
        name: param.detach().float().clone()
        for name, param in trainer.model.named_parameters()
        if param.requires_grad
    }


def run_settings(args: argparse.Namespace) -> dict:
    """What a run trained with, beyond model, task and examples: runs pool their seeds
    (bench/seeds.py) only when these agree."""
    return {
        "batch_size": args.batch_size,
        "max_length": args.max_length,
        "lora_r": args.lora_r,
        "lr": args.lr,
        "lora_dropout": args.lora_dropout,
        "random_shape": args.random_shape,
    }


def run_ours(entry, spec, args: argparse.Namespace, run_dir: Path) -> tuple[dict, str, dict]:
    """Train with our trainer; (figures, adapter directory, what the peer needs to pair with
    it: the batches in order and the initial adapter weights)."""
    lora = lora_settings(args)
    config = TrainConfig(
        method="lora",
        lora_r=lora["r"],
        lora_alpha=lora["lora_alpha"],
        lora_dropout=lora["lora_dropout"],
        target_modules=lora["target_modules"],
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
        seed=args.seed,
    )
    trainer = Trainer(load_for_training(entry, config), spec, config, run_dir)
    trainer.setup()
    pairing = {"batches": training_order(trainer), "init": initial_adapter(trainer)}
    result = trainer.run()
    batches = pairing["batches"]
    examples = [trainer.train_examples[i] for batch in batches for i in batch]
    passes = len(batches) * trainer.micro_split  # the shared prefix runs once in each
    figures = {
        "examples": len(trainer.train_examples),
        "tokens": result.train_tokens,
        # what the decoder and the LM head actually ran on, for the executed-FLOPs utilisation
        "decoder_tokens": sum(e.length for e in examples) + len(trainer.prefix_ids) * passes,
        "head_positions": sum(len(e.completion_ids) for e in examples),
        "seconds": round(result.train_seconds, 3),
        "tokens_per_s": round(result.tokens_per_s, 2),
        "final_loss": round(result.mean_train_loss, 4),
        "dtype": result.dtype,
        "notes": result.notes,
    }
    return figures, result.adapter_dir, pairing


def bench_model(args: argparse.Namespace, tmp: Path) -> ModelEntry:
    """The registered model ``--model``, or with ``--random-shape`` a randomly initialised
    model of that shape saved under ``tmp`` (the tokenizer and chat template of ``--model``)."""
    if args.tokenizer_dir is not None:  # a bare GPU machine: no embedded model to read it from
        tokenizer_dir, instruct = args.tokenizer_dir, True
    else:
        entry = get_model(args.model)
        if not args.random_shape:
            return entry
        tokenizer_dir, instruct = model_directory(entry), entry.instruct
    out = write_random_model(args.random_shape, tmp / "random-model", tokenizer_dir)
    return ModelEntry(
        id=f"random-{args.random_shape}",
        display_name=f"{args.random_shape} shape, random weights",
        source=ModelSource(kind="local", path=str(out)),
        instruct=instruct,
    )


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
        "--lora-dropout",
        type=float,
        default=0.05,
        help="both sides' LoRA dropout (the quick preset trains with 0)",
    )
    parser.add_argument(
        "--dtype", default="auto", help="our compute dtype (default: best for the hardware)"
    )
    parser.add_argument("--reference", type=Path, default=REFERENCE)
    parser.add_argument("--heldout", type=int, default=64, help="validation rows for the losses")
    parser.add_argument(
        "--seeds",
        type=int,
        default=3,
        help="ours and TRL (paired: our batches, order and initial adapter) trained with seeds "
        "0..N-1 (from --first-seed); held-out losses compared as means",
    )
    parser.add_argument(
        "--first-seed",
        type=int,
        default=0,
        help="the first seed: more seeds for an earlier run's sample without repeating its own "
        "(the pairing is deterministic, so seed k gives the same losses in every run)",
    )
    parser.add_argument(
        "--random-shape",
        choices=list(SHAPES),
        default=None,
        help="train a randomly initialised model of this shape (e.g. llama-3.2-1b on a GPU: "
        "throughput and MFU do not depend on the weights), with --model's tokenizer",
    )
    parser.add_argument(
        "--tokenizer-dir",
        type=Path,
        default=None,
        help="with --random-shape: the tokenizer and chat template from this directory instead "
        "of --model's (bench/gpu_kit.sh puts SmolLM2's in .gpu/tokenizer for a lent GPU)",
    )
    parser.add_argument(
        "--no-reference", action="store_true", help="skip the plain-PEFT reference side"
    )
    args = parser.parse_args()
    if args.tokenizer_dir is not None and not args.random_shape:
        parser.error("--tokenizer-dir goes with --random-shape")
    if args.seeds < 1:
        parser.error("--seeds must be at least 1")
    if args.first_seed < 0:
        parser.error("--first-seed must be 0 or more")

    spec = get_task(args.task)
    items = load_split(spec, "train").items[: args.examples]
    with tempfile.TemporaryDirectory(prefix="train_speed_") as tmp:
        entry = bench_model(args, Path(tmp))
        model_dir = model_directory(entry)
        data = Path(tmp) / "train.jsonl"
        write_jsonl(spec, items, data)
        device = "cuda" if torch.cuda.is_available() else "cpu"
        print(
            f"model={entry.id} task={spec.name} examples={len(items)} epochs={args.epochs} "
            f"device={device} memory={memory_settings()}",
            flush=True,
        )
        reference = None
        if not args.no_reference:
            start = time.perf_counter()
            reference = run_reference(model_dir, data, args)
            print(
                f"reference: {reference['tokens_per_s']:8.1f} tokens/s  loss {reference['final_loss']:.4f} (all tokens)   [{time.perf_counter() - start:.0f} s]",
                flush=True,
            )
        heldout = held_out_examples(entry, spec, args)
        dtype = None
        seeds = []
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            run = argparse.Namespace(**{**vars(args), "seed": seed})
            start = time.perf_counter()
            ours, adapter_dir, pairing = run_ours(entry, spec, run, Path(tmp) / f"ours-{seed}")
            print(
                f"seed {seed} ours   : {ours['tokens_per_s']:8.1f} tokens/s  loss {ours['final_loss']:.4f} (completion tokens)   [{time.perf_counter() - start:.0f} s]  {ours['dtype']}; {'; '.join(ours['notes'])}",
                flush=True,
            )
            if ours["examples"] != len(items):  # the pairing indexes the same rows
                raise SystemExit(f"ours trained on {ours['examples']} of {len(items)} rows")
            dtype = getattr(torch, ours["dtype"])
            trl, trl_model = trl_train(
                model_dir,
                dtype,
                rendered_rows(entry, spec, items),
                lora_settings(args),
                run,
                Path(tmp) / f"trl-{seed}",
                **pairing,
            )
            print(
                f"seed {seed} TRL SFT: {trl['tokens_per_s']:8.1f} tokens/s  loss {trl['final_loss']:.4f} (completion tokens)   [{trl['seconds']:.0f} s]  {trl['dtype']}; padding-free {trl['padding_free']}",
                flush=True,
            )
            trl["heldout_loss"] = round(heldout_completion_loss(trl_model, heldout), 4)
            frozen = trl_model.get_base_model()
            body, head = decoder_flops_per_token(frozen), head_flops_per_token(frozen)
            per_token = 3 * body  # MFU's 6 x parameters a token
            # TRL runs every token through the decoder and the LM head (padding-free, no
            # shared prefix); ours skips the prefix's repeats and the head off the completion
            trl.update(decoder_tokens=trl["tokens"], head_positions=trl["tokens"])
            for side in (ours, trl):
                flops = executed_training_flops(
                    body, head, side["decoder_tokens"], side["head_positions"]
                )
                side["executed_flops_per_token"] = flops / side["tokens"]
            del trl_model
            tuned = load_adapter(model_dir, adapter_dir, dtype)
            ours["heldout_loss"] = round(heldout_completion_loss(tuned, heldout), 4)
            del tuned
            print(
                f"seed {seed} held-out completion loss on {len(heldout)} validation rows: "
                f"ours {ours['heldout_loss']:.4f}, TRL {trl['heldout_loss']:.4f}",
                flush=True,
            )
            seeds.append({"seed": seed, "ours": ours, "trl": trl})
        # MFU as usually defined: 6 x (non-embedding parameters) FLOPs a token, over the
        # measured matmul peak of the dtype (a LoRA run does less: frozen weights get no
        # weight gradients, and ours computes the shared prompt prefix once per batch, so
        # this overstates our work and can pass 1). The executed-FLOPs utilisation counts
        # what each side really ran (machine.executed_training_flops): how close it came to
        # the machine's limit.
        peak = matmul_peak_flops(dtype, device)
        ours, trl = summary(seeds, "ours"), summary(seeds, "trl")
        for side in (ours, trl):
            side["mfu"] = round(side["tokens_per_s"] * per_token / peak, 3)
            executed = side.pop("executed_flops_per_token")
            side["executed_utilisation"] = round(side["tokens_per_s"] * executed / peak, 3)
        print(
            f"matmul peak {peak / 1e9:.1f} GFLOP/s ({trl['dtype']}); MFU ours {ours['mfu']:.2f}, "
            f"TRL {trl['mfu']:.2f}; of the peak on the FLOPs each executed: ours "
            f"{ours['executed_utilisation']:.2f}, TRL {trl['executed_utilisation']:.2f}",
            flush=True,
        )
        print(
            f"over {len(seeds)} seeds: held-out loss ours {ours['heldout_loss']:.4f} "
            f"(each {ours['heldout_losses']}), TRL {trl['heldout_loss']:.4f} "
            f"(each {trl['heldout_losses']}); tokens/s (median) ours {ours['tokens_per_s']:.1f}, "
            f"TRL {trl['tokens_per_s']:.1f}",
            flush=True,
        )
        ours_loss, trl_loss = ours["heldout_loss"], trl["heldout_loss"]
        differences = [s["ours"]["heldout_loss"] - s["trl"]["heldout_loss"] for s in seeds]
        print(
            f"paired difference ours - TRL: mean {statistics.fmean(differences):+.4f}, "
            f"95% CI {paired_ci(differences)} (a CI across 0: the trainers are not told apart)",
            flush=True,
        )
    print(
        json.dumps(
            {
                "model": entry.id,
                "task": spec.name,
                "examples": len(items),
                "epochs": args.epochs,
                "device": device,
                "reference": reference,
                "ours": ours,
                "reference_final_loss": reference["final_loss"] if reference else None,
                "ours_final_loss": ours["final_loss"],
                "loss_bases": {"reference": "all tokens", "ours": "completion tokens"},
                "ratio": round(ours["tokens_per_s"] / reference["tokens_per_s"], 2)
                if reference
                else None,
                "trl": trl,
                "heldout_rows": len(heldout),
                "settings": run_settings(args),
                "seeds": args.seeds,
                "first_seed": args.first_seed,
                "ours_heldout_loss": round(ours_loss, 4),
                "trl_heldout_loss": round(trl_loss, 4),
                "heldout_loss_not_worse_than_trl": ours_loss <= trl_loss,
                "paired": "TRL trained on our batches, in our order, from our initial adapter",
                "heldout_loss_differences": [round(d, 4) for d in differences],
                "heldout_loss_difference_ci95": paired_ci(differences),
                "cpu_flags": cpu_flags(),
                "memory_settings": memory_settings(),
                "device_name": device_name(device),
                "matmul_peak_gflop_per_s": round(peak / 1e9, 1),
                "trl_ratio": round(ours["tokens_per_s"] / trl["tokens_per_s"], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
