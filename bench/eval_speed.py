"""Choice-task scoring speed: our evaluator against the naive loop most scripts use.

Both sides get the same weights (the same model directory), the same items and the same
prompt texts, in one run, on the same threads:

- naive: the script most people write. ``AutoModelForCausalLM.from_pretrained(dir)`` with its
  default dtype, then for each item ``model.generate`` (greedy, ``--max-new-tokens``) and the
  first label word found in the text (case-insensitive; no label found counts as wrong);
- ours: ``load_model`` (the dtype the hardware runs best) and ``HFLanguageModel`` (batched,
  length-sorted, shared prompt prefix, one forward pass per item) through the same
  ``score_items`` the app uses, with the task's own scoring (for fin_sentiment: label
  log-likelihoods with contextual calibration; the three content-free prompts are timed too).

To separate the dtype from the method, the naive loop also runs on our loaded model
(``same_dtype_ratio``).

The sides are interleaved so that both see the same machine: a shared 2-core VM drifts by
±15% within minutes. Each of ``--rounds`` rounds scores all items our way (our batching needs
the whole set) and runs both naive loops on the next slice of the items; each side's items/s
is its items over its total time. Prints both accuracies and, as its last line, a JSON object with
``ratio`` = our items/s ÷ naive items/s. Target: ratio >= 10 with our accuracy not below the
naive loop's.

    python bench/eval_speed.py [--model smollm2-135m-instruct] [--task fin_sentiment] [--limit 200]
"""

from __future__ import annotations

import argparse
import json
import re
import time

import torch

from core.evaluation.hf import HFLanguageModel
from core.evaluation.runner import build_prompts, content_free_prompts, score_items
from core.models.loading import LoadedModel, load_model, model_directory
from core.models.registry import get_model
from core.tasks.prompts import choice_continuations
from core.tasks.spec import get_task, load_split


def naive_label(text: str, labels: list[str]) -> str | None:
    """The first label word that occurs in the generated text."""
    found = [
        (m.start(), label)
        for label in labels
        if (m := re.search(rf"\b{re.escape(label)}\b", text, re.I))
    ]
    return min(found)[1] if found else None


@torch.inference_mode()
def naive_loop(
    loaded: LoadedModel, prompts: list[str], labels: list[str], max_new_tokens: int
) -> list[str | None]:
    tokenizer, model = loaded.tokenizer, loaded.model
    answers = []
    for prompt in prompts:
        bos = tokenizer.bos_token
        inputs = tokenizer(
            prompt, return_tensors="pt", add_special_tokens=not (bos and prompt.startswith(bos))
        )
        output = model.generate(
            **inputs.to(loaded.device),
            max_new_tokens=max_new_tokens,
            do_sample=False,
            pad_token_id=tokenizer.pad_token_id,
        )
        text = tokenizer.decode(output[0, inputs["input_ids"].shape[1] :], skip_special_tokens=True)
        answers.append(naive_label(text, labels))
    return answers


def plain_load(loaded: LoadedModel) -> LoadedModel:
    """The same weights loaded the way a plain script does: from_pretrained defaults."""
    from transformers import AutoModelForCausalLM

    model = (
        AutoModelForCausalLM.from_pretrained(model_directory(loaded.entry)).to(loaded.device).eval()
    )
    return LoadedModel(
        loaded.entry, model, loaded.tokenizer, loaded.device, model.dtype, loaded.weights_hash
    )


class NaiveSide:
    """The naive loop on one loaded model, timed over slices of the items."""

    def __init__(self, loaded: LoadedModel, labels: list[str], max_new_tokens: int) -> None:
        self.loaded, self.labels, self.max_new_tokens = loaded, labels, max_new_tokens
        self.answers: list[str | None] = []
        self.seconds = 0.0

    def run(self, prompts: list[str]) -> None:
        start = time.perf_counter()
        self.answers += naive_loop(self.loaded, prompts, self.labels, self.max_new_tokens)
        self.seconds += time.perf_counter() - start

    def summary(self, golds: list[str]) -> dict:
        return {
            "dtype": str(self.loaded.model.dtype).removeprefix("torch."),
            "items_per_s": round(len(self.answers) / self.seconds, 2),
            "accuracy": round(sum(a == g for a, g in zip(self.answers, golds)) / len(golds), 4),
            "unparseable_rate": round(sum(a is None for a in self.answers) / len(golds), 4),
        }


def slices(count: int, parts: int) -> list[slice]:
    bounds = [round(count * part / parts) for part in range(parts + 1)]
    return [slice(bounds[part], bounds[part + 1]) for part in range(parts)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--task", default="fin_sentiment")
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--max-new-tokens", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (see above)")
    parser.add_argument("--dtype", default=None, help="default: the best for the device")
    args = parser.parse_args()

    spec = get_task(args.task)
    if spec.is_generation:
        parser.error(f"{spec.name} is a generation task; this benchmark compares choice scoring")
    items = load_split(spec, "test").head(args.limit).items
    entry = get_model(args.model)
    loaded = load_model(entry, dtype=args.dtype)
    prompts = build_prompts(spec, items, loaded.tokenizer, entry.instruct, shots=[])
    continuations = choice_continuations(spec, loaded.tokenizer, entry.instruct)
    calibration = content_free_prompts(spec, loaded.tokenizer, entry.instruct, shots=[])
    golds = [item.answer for item in items]
    print(
        f"model={entry.id} dtype={loaded.dtype_name} device={loaded.device} task={spec.name} "
        f"items={len(items)} torch_threads={torch.get_num_threads()} rounds={args.rounds}"
    )

    lm = HFLanguageModel(loaded.model, loaded.tokenizer, loaded.device, args.batch_size)
    naive = NaiveSide(plain_load(loaded), spec.labels, args.max_new_tokens)
    same = NaiveSide(loaded, spec.labels, args.max_new_tokens)
    # Warm-up, not timed: one-time set-up (kernels, caches) is not per-item cost.
    score_items(lm, spec, items[:8], prompts[:8], continuations)
    naive_loop(naive.loaded, prompts[:2], spec.labels, args.max_new_tokens)
    naive_loop(same.loaded, prompts[:2], spec.labels, args.max_new_tokens)

    ours_seconds, ours = [], []
    for part in slices(len(items), args.rounds):
        start = time.perf_counter()
        ours = score_items(lm, spec, items, prompts, continuations, calibration_prompts=calibration)
        ours_seconds.append(time.perf_counter() - start)
        naive.run(prompts[part])
        same.run(prompts[part])
        print(
            f"round {len(ours_seconds)}: ours {len(items) / ours_seconds[-1]:.2f} items/s; "
            f"naive items {part.start}-{part.stop - 1} done",
            flush=True,
        )
    ours_accuracy = sum(r.correct for r in ours) / len(items)
    ours_rate = len(items) * len(ours_seconds) / sum(ours_seconds)
    naive_summary, same_summary = naive.summary(golds), same.summary(golds)

    print(
        f"ours              ({loaded.dtype_name}): accuracy {ours_accuracy:.3f}  {ours_rate:7.2f} items/s"
    )
    print(
        f"naive             ({naive_summary['dtype']}): accuracy {naive_summary['accuracy']:.3f}  {naive_summary['items_per_s']:7.2f} items/s, unparseable {naive_summary['unparseable_rate']:.3f}"
    )
    print(
        f"naive, our dtype  ({same_summary['dtype']}): accuracy {same_summary['accuracy']:.3f}  {same_summary['items_per_s']:7.2f} items/s, unparseable {same_summary['unparseable_rate']:.3f}"
    )
    print(
        json.dumps(
            {
                "model": entry.id,
                "task": spec.name,
                "items": len(items),
                "rounds": len(ours_seconds),
                "ours_dtype": loaded.dtype_name,
                "ours_items_per_s": round(ours_rate, 2),
                "ours_items_per_s_by_round": [round(len(items) / s, 2) for s in ours_seconds],
                "ours_accuracy": round(ours_accuracy, 4),
                "naive": naive_summary,
                "naive_same_dtype": same_summary,
                "same_dtype_ratio": round(ours_rate / same_summary["items_per_s"], 2),
                "accuracy_not_below_naive": ours_accuracy
                >= max(naive_summary["accuracy"], same_summary["accuracy"]),
                "ratio": round(ours_rate / naive_summary["items_per_s"], 2),
            }
        )
    )


if __name__ == "__main__":
    main()
