"""Choice-task scoring speed: our evaluator against lm-evaluation-harness and a naive loop.

Both peers get the same weights (the same loaded model object for lm-eval and for
"naive, our dtype"), the same items and the same prompt texts, in one run, on the same threads:

- lm-eval (``--peers lmeval``): lm-evaluation-harness 0.4's ``HFLM`` (hf backend, batch
  ``--batch-size``) on a ``multiple_choice`` task YAML written from our task spec
  (``bench/lmeval_peer.py``): its documents are our rendered prompts (chat template applied
  by our renderer) and its choices our labels' continuations. Ours is scored the way lm-eval
  scores (one surface form a label, no calibration), so the accuracies must agree (within
  0.5 points) and the items/s ratio ``lmeval_ratio`` measures speed alone. The machine's
  matmul peak in that dtype is measured too, and each side's model FLOP/s as a share of it
  (``utilisation``): decoder FLOPs of the tokens actually run (ours: the shared prefix once,
  then each suffix; lm-eval: every full context) plus the LM head on the positions kept.
- naive (``--peers naive``): ``AutoModelForCausalLM.from_pretrained(dir)`` with its default
  dtype, then for each item ``model.generate`` (greedy, ``--max-new-tokens``) and the first
  label word found in the text (case-insensitive; no label found counts as wrong), against
  ours as the app scores (all surface forms, contextual calibration with its three
  content-free prompts timed too). The naive loop also runs on our loaded model
  (``same_dtype_ratio``) to separate the dtype from the method.

The sides are interleaved so that both see the same machine: a shared 2-core VM drifts by
±15% within minutes. Each of ``--rounds`` rounds scores all items our way (our batching needs
the whole set) and runs the peer on the next slice of the items; each side's items/s is its
items over its total time. The first line names the dtype and the CPU flags that decided it.
The last line is a JSON object with ``lmeval_ratio``, ``utilisation`` and ``ratio`` (ours ÷
naive). Targets: lmeval_ratio >= 3 with the accuracies within 0.5 points; ratio >= 10.

    python bench/eval_speed.py [--model smollm2-135m-instruct] [--task fin_sentiment] [--limit 200]
        [--peers naive,lmeval]

Needs the bench extra: pip install -e ".[bench]" (lm-eval, trl).
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from pathlib import Path

import torch
from machine import cpu_flags, decoder_flops_per_token, matmul_peak_flops, memory_settings

from core.evaluation.hf import HFLanguageModel
from core.evaluation.runner import build_prompts, content_free_prompts, score_items
from core.models.loading import LoadedModel, load_model, model_directory
from core.models.registry import get_model
from core.models.tokens import common_prefix_length
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


def utilisation(
    model: torch.nn.Module, tokens: int, kept_positions: int, seconds: float, peak: float
) -> dict:
    """Model FLOP/s reached over ``seconds`` and its share of the measured matmul peak.

    ``tokens`` went through the decoder; ``kept_positions`` through the LM head.
    """
    head = model.get_output_embeddings().weight
    flops = decoder_flops_per_token(model) * tokens + 2.0 * head.numel() * kept_positions
    return {
        "model_gflop_per_s": round(flops / seconds / 1e9, 1),
        "utilisation": round(flops / seconds / peak, 3),
    }


def ours_forward_tokens(lm: HFLanguageModel, prompts: list[str], longest: int) -> tuple[int, int]:
    """(decoder tokens, LM-head positions) of one scoring pass of ours over ``prompts``.

    The shared prefix runs once; every suffix runs with the longest label's tokens but its
    last riding along; the LM head sees only those label positions.
    """
    encoded = [lm.encode(prompt) for prompt in prompts]
    prefix = common_prefix_length(encoded) if len(encoded) > 1 else 0
    tokens = prefix + sum(len(ids) - prefix + longest - 1 for ids in encoded)
    return tokens, len(encoded) * longest


def lmeval_forward_tokens(lm: HFLanguageModel, prompts: list[str], longest: int) -> int:
    """Decoder tokens (= LM-head positions: HFLM keeps every position's logits) of lm-eval."""
    return sum(len(lm.encode(prompt)) + longest - 1 for prompt in prompts)


def compare_with_lmeval(
    loaded: LoadedModel,
    spec,
    items: list,
    prompts: list[str],
    continuations: list[list[str]],
    args: argparse.Namespace,
) -> dict:
    """Ours vs lm-evaluation-harness on single surface forms, uncalibrated, interleaved."""
    from lmeval_peer import LmEvalSide, write_task

    single = [[forms[0]] for forms in continuations]
    golds = [spec.labels.index(item.answer) for item in items]
    lm = HFLanguageModel(loaded.model, loaded.tokenizer, loaded.device, args.batch_size)
    with tempfile.TemporaryDirectory(prefix="lmeval_task_") as folder:
        peer = LmEvalSide(
            loaded.model,
            loaded.tokenizer,
            write_task(Path(folder), prompts, [forms[0] for forms in continuations], golds),
            args.batch_size,
        )
        peer.run([0, 1])  # warm-up, not timed
        peer.correct.clear()
        peer.seconds = 0.0
        ours_seconds, ours = [], []
        for part in slices(len(items), args.rounds):
            start = time.perf_counter()
            ours = score_items(lm, spec, items, prompts, single)
            ours_seconds.append(time.perf_counter() - start)
            peer.run(list(range(part.start, part.stop)))
            print(
                f"lm-eval round {len(ours_seconds)}: ours {len(items) / ours_seconds[-1]:.2f} "
                f"items/s; lm-eval items {part.start}-{part.stop - 1} done",
                flush=True,
            )
    peak = matmul_peak_flops(loaded.model.dtype)
    longest = max(len(loaded.tokenizer(c[0], add_special_tokens=False).input_ids) for c in single)
    ours_tokens, ours_kept = ours_forward_tokens(lm, prompts, longest)
    ours_rate = len(items) * len(ours_seconds) / sum(ours_seconds)
    peer_summary = peer.summary(loaded.dtype_name)
    peer_tokens = lmeval_forward_tokens(lm, prompts, longest)
    ours_accuracy = sum(r.correct for r in ours) / len(items)
    return {
        "ours_dtype": loaded.dtype_name,
        "ours_items_per_s": round(ours_rate, 2),
        "ours_accuracy": round(ours_accuracy, 4),
        "lmeval": peer_summary,
        "accuracy_points_apart": round(100 * abs(ours_accuracy - peer_summary["accuracy"]), 2),
        "matmul_peak_gflop_per_s": round(peak / 1e9, 1),
        "ours_compute": utilisation(
            loaded.model, ours_tokens, ours_kept, len(items) / ours_rate, peak
        ),
        "lmeval_compute": utilisation(
            loaded.model,
            peer_tokens,
            peer_tokens,
            len(peer.correct) / peer_summary["items_per_s"] * len(items) / len(peer.correct),
            peak,
        ),
        "lmeval_ratio": round(ours_rate / peer_summary["items_per_s"], 2),
    }


def compare_with_naive(
    loaded: LoadedModel,
    spec,
    items: list,
    prompts: list[str],
    continuations: list[list[str]],
    args: argparse.Namespace,
) -> dict:
    """Ours (the app's scoring, calibrated) vs the naive generate loop, interleaved."""
    entry = loaded.entry
    calibration = content_free_prompts(spec, loaded.tokenizer, entry.instruct, shots=[])
    golds = [item.answer for item in items]
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
    return {
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--task", default="fin_sentiment")
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--max-new-tokens", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (see above)")
    parser.add_argument("--dtype", default=None, help="default: the best for the device")
    parser.add_argument(
        "--peers", default="naive,lmeval", help="comma-separated: naive, lmeval (default both)"
    )
    args = parser.parse_args()
    peers = {peer.strip() for peer in args.peers.split(",") if peer.strip()}

    spec = get_task(args.task)
    if spec.is_generation:
        parser.error(f"{spec.name} is a generation task; this benchmark compares choice scoring")
    items = load_split(spec, "test").head(args.limit).items
    entry = get_model(args.model)
    loaded = load_model(entry, dtype=args.dtype)
    prompts = build_prompts(spec, items, loaded.tokenizer, entry.instruct, shots=[])
    continuations = choice_continuations(spec, loaded.tokenizer, entry.instruct)
    print(
        f"model={entry.id} dtype={loaded.dtype_name} device={loaded.device} task={spec.name} "
        f"items={len(items)} torch_threads={torch.get_num_threads()} rounds={args.rounds} "
        f"cpu_flags={cpu_flags()} memory={memory_settings()}"
    )
    figures: dict = {"model": entry.id, "task": spec.name, "items": len(items)}
    figures["cpu_flags"] = cpu_flags()
    figures["memory_settings"] = memory_settings()
    if "naive" in peers:
        figures.update(compare_with_naive(loaded, spec, items, prompts, continuations, args))
    if "lmeval" in peers:
        against = compare_with_lmeval(loaded, spec, items, prompts, continuations, args)
        print(
            f"ours, uncalibrated ({against['ours_dtype']}): accuracy {against['ours_accuracy']:.3f}  "
            f"{against['ours_items_per_s']:7.2f} items/s  utilisation {against['ours_compute']['utilisation']:.2f}"
        )
        print(
            f"lm-eval hf        ({against['lmeval']['dtype']}): accuracy {against['lmeval']['accuracy']:.3f}  "
            f"{against['lmeval']['items_per_s']:7.2f} items/s  utilisation {against['lmeval_compute']['utilisation']:.2f}"
        )
        figures["against_lmeval"] = against
        figures["lmeval_ratio"] = against["lmeval_ratio"]
        figures["utilisation"] = against["ours_compute"]["utilisation"]
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
