"""TRL's SFTTrainer as a benchmark peer, and one held-out loss for every side's adapter.

The peer trains the same base weights, in the same dtype, on the same rendered prompts and
completions (chat template applied by our renderer, so both sides see one text), with the same
LoRA rank, alpha, dropout and target modules, learning rate, schedule, batch size, epochs and
maximum length. TRL computes the loss on completion tokens only (prompt-completion data) and,
where it can, runs padding-free (``padding_free=True``: the batch is one flat sequence with
position ids, which transformers' attention masks split back into rows).

Given ``batches`` (our trainer's batches, as row indices, in its training order) and ``init``
(our adapter's initial weights), the peer trains on exactly those batches in that order from
those weights: with 25 steps on 200 rows one shuffle's held-out loss differs from another's by
~0.05, so without this the comparison measures the luck of the data order, not the trainers.

``heldout_completion_loss`` scores any adapter the same way: the mean cross-entropy of the
completion tokens of the same validation rows, in one plain forward pass per row.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import torch

from core.tasks.examples import Example


def trl_train(
    model_dir: Path,
    dtype: torch.dtype,
    rows: list[dict[str, str]],
    lora: dict[str, Any],
    args: Any,
    out: Path,
    batches: list[list[int]] | None = None,
    init: dict[str, torch.Tensor] | None = None,
) -> tuple[dict, Any]:
    """Train with SFTTrainer; (figures, the trained peft model).

    With ``batches``, one pass over them in order (every epoch's batches listed; all full but
    the last, so consecutive rows cut by the batch size are those batches); with ``init``, the
    adapter starts from those weights (by parameter name).
    """
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    epochs = args.epochs
    if batches is not None:
        if any(len(batch) != args.batch_size for batch in batches[:-1]):
            raise SystemExit("--examples must be a multiple of --batch-size for the paired order")
        rows, epochs = [rows[i] for batch in batches for i in batch], 1
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
    config = SFTConfig(
        output_dir=str(out),
        per_device_train_batch_size=args.batch_size,
        num_train_epochs=epochs,
        # our batches, in our order; without them the sampler's own shuffle
        train_sampling_strategy="sequential" if batches is not None else "random",
        learning_rate=args.lr,
        lr_scheduler_type="linear",
        warmup_steps=0,
        # Padding-free without packing leaves truncation to the caller; the bench's rows are
        # shorter than --max-length (checked below), so no row is cut on either side.
        max_length=None,
        completion_only_loss=True,
        padding_free=True,
        # SFTConfig turns activation checkpointing on by default; ours runs without it, so the
        # peer does too (with it TRL measured 99 tokens/s here instead of its best).
        gradient_checkpointing=False,
        bf16=dtype == torch.bfloat16,
        use_cpu=not torch.cuda.is_available(),
        logging_steps=10**9,
        save_strategy="no",
        report_to=[],
        seed=getattr(args, "seed", 0),
        dataloader_num_workers=0,
        disable_tqdm=True,
    )
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=LoraConfig(task_type="CAUSAL_LM", **lora),
    )
    if init is not None:
        with torch.no_grad():
            for name, param in trainer.model.named_parameters():
                if param.requires_grad:
                    param.copy_(init[name])
    lengths = [len(ids) for ids in trainer.train_dataset["input_ids"]]
    if max(lengths) > args.max_length:
        raise SystemExit(
            f"a row has {max(lengths)} tokens, more than --max-length {args.max_length}"
        )
    tokens = sum(lengths) * epochs
    start = time.perf_counter()
    output = trainer.train()
    seconds = time.perf_counter() - start
    figures = {
        "examples": len(rows),
        "tokens": int(tokens),
        "seconds": round(seconds, 3),
        "tokens_per_s": round(tokens / seconds, 2),
        "final_loss": round(output.training_loss, 4),
        "dtype": str(dtype).removeprefix("torch."),
        "padding_free": trainer.padding_free,
    }
    return figures, trainer.model


@torch.no_grad()
def heldout_completion_loss(model: Any, examples: list[Example]) -> float:
    """Mean cross-entropy per completion token over ``examples``, one row at a time."""
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    for example in examples:
        ids = torch.tensor([example.prompt_ids + example.completion_ids], device=device)
        logits = model(input_ids=ids).logits[0, len(example.prompt_ids) - 1 : -1].float()
        targets = torch.tensor(example.completion_ids, device=device)
        total += float(torch.nn.functional.cross_entropy(logits, targets, reduction="sum"))
        count += len(example.completion_ids)
    return total / max(1, count)


def load_adapter(model_dir: Path, adapter_dir: str, dtype: torch.dtype) -> Any:
    """The base weights with a saved LoRA adapter on top (plain transformers + peft)."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(model_dir, dtype=dtype)
    if torch.cuda.is_available():  # scored where it trained (TRL's model is there too)
        base = base.to("cuda")
    return PeftModel.from_pretrained(base, adapter_dir)
