"""Single-request latency: the fine-tuned encoder against the fine-tuned SmolLM2, same task.

Both models answer the same test items of one choice task, one request at a time (batch size
1, as a service sees a client's message), in the same process, on the same CPU threads, one
after the other:

- the encoder: tokenize, forward, the task's head, argmax (``core.models.encoder.predict``);
- the LLM: the prompt the leaderboard scores it with, and the log-likelihood of each label
  (``core.evaluation.runner.label_logprobs``, the LoRA merged into the weights); its
  contextual-calibration constants are computed once beforehand, as a service would.

Each model's p50 / p95 in ms (wall time, and the process's CPU time per request, which on
one thread is about the wall time of an idle core), and its batched throughput (items/s; encoder batch 32, LLM
batch 16) are printed. The models are the newest fine-tunes of each kind on the task in the
store, or the ids given; ``--train`` first fine-tunes the missing ones (the encoder with the
``encoder`` preset, SmolLM2 with ``quick`` on ``--llm-examples`` examples).

    python bench/encoder_latency.py [--task fin_sentiment] [--items 100] [--train]
        [--encoder ID] [--llm ID] [--threads N]

The last line is a JSON object with both models' figures and ``ratio`` = LLM p50 ÷ encoder
p50. Target: encoder p50 <= 12 ms for a one-sentence message on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from machine import cpu_flags

from core import store
from core.evaluation.hf import HFLanguageModel
from core.evaluation.runner import build_prompts, label_logprobs
from core.models import registry
from core.models.encoder import free_cpu_threads, is_encoder, load_encoder, predict
from core.models.loading import load_model
from core.tasks.prompts import choice_continuations
from core.tasks.spec import get_task, load_split


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def newest_finetune(db: Any, task: str, encoder: bool) -> str | None:
    for entry in registry.finetuned_models(db):  # newest first
        if entry.trained_on_task == task and is_encoder(entry) == encoder:
            return entry.id
    return None


def train(db: Any, base_id: str, task: str, preset: str, overrides: dict[str, Any]) -> str:
    """Fine-tune ``base_id`` on ``task`` through the fine-tune-and-compare workflow; its id."""
    from core.training.config import preset_config
    from core.training.finetune import TrainPlan, default_run_dir, new_model_id

    base, spec = registry.get_model(base_id, db), get_task(task)
    config = preset_config(preset, overrides)
    model_id = new_model_id(base_id, task, config.method)
    plan = TrainPlan(base, spec, config, model_id, default_run_dir(model_id))
    print(f"training {model_id} ({preset}) ...", flush=True)
    if is_encoder(base):
        from core.workflows.encoder_compare import encoder_finetune_compare

        encoder_finetune_compare(plan, [spec], {}, db)
    else:
        from core.workflows.finetune_compare import finetune_compare

        finetune_compare(plan, db)
    return model_id


def timed(call: Any, requests: list[Any]) -> tuple[list[float], list[float]]:
    """Each request's wall time and this process's CPU time for it, in ms.

    On one thread the CPU time is about what the wall time would be on an idle core: on a
    shared, loaded machine the wall time also counts the waits for a core.
    """
    call(requests[0])  # warm-up: first-call allocations are not a request
    latency, cpu = [], []
    for request in requests:
        start, start_cpu = time.perf_counter(), time.process_time()
        call(request)
        latency.append(1000 * (time.perf_counter() - start))
        cpu.append(1000 * (time.process_time() - start_cpu))
    return latency, cpu


def throughput(call: Any, requests: list[Any], batch: int) -> float:
    start = time.perf_counter()
    for first in range(0, len(requests), batch):
        call(requests[first : first + batch])
    return len(requests) / (time.perf_counter() - start)


def summary(
    name: str, dtype: str, times: tuple[list[float], list[float]], items_per_s: float
) -> dict:
    latency, cpu = times
    return {
        "model": name,
        "dtype": dtype,
        "p50_ms": round(statistics.median(latency), 2),
        "p95_ms": round(percentile(latency, 0.95), 2),
        "cpu_p50_ms": round(statistics.median(cpu), 2),
        "items_per_s_batched": round(items_per_s, 1),
    }


def measure_encoder(model_id: str, db: Any, spec: Any, texts: list[str]) -> dict[str, Any]:
    loaded = load_encoder(registry.get_model(model_id, db))
    latency = timed(lambda text: predict(loaded, [text], spec.name), texts)
    speed = throughput(lambda batch: predict(loaded, batch, spec.name), texts, 32)
    return summary(model_id, loaded.dtype_name, latency, speed)


def measure_llm(model_id: str, db: Any, spec: Any, items: list[Any]) -> dict[str, Any]:
    loaded = load_model(registry.get_model(model_id, db))
    instruct = loaded.entry.instruct
    prompts = build_prompts(spec, items, loaded.tokenizer, instruct, [])
    forms = choice_continuations(spec, loaded.tokenizer, instruct)

    def answer(batch: list[str]) -> Any:
        lm = HFLanguageModel(loaded.model, loaded.tokenizer, loaded.device, len(batch))
        return label_logprobs(lm, batch, forms, lambda indices, seconds: None)

    latency = timed(lambda prompt: answer([prompt]), prompts)
    return summary(model_id, loaded.dtype_name, latency, throughput(answer, prompts, 16))


def settle(below: float = 0.75, wait_s: float = 180.0) -> None:
    """Wait (up to ``wait_s``) for the 1-minute load average to fall ``below``: measured on a
    quiet machine, and with the threads an idle one would get."""
    deadline = time.monotonic() + wait_s
    while os.getloadavg()[0] >= below and time.monotonic() < deadline:
        time.sleep(5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="fin_sentiment")
    parser.add_argument("--items", type=int, default=100)
    parser.add_argument("--encoder", help="fine-tuned encoder id (default: the newest)")
    parser.add_argument("--llm", help="fine-tuned LLM id (default: the newest)")
    parser.add_argument("--train", action="store_true", help="fine-tune the missing models")
    parser.add_argument("--encoder-base", default="minilm-l6")
    parser.add_argument("--llm-base", default="smollm2-135m-instruct")
    parser.add_argument("--llm-examples", type=int, default=200)
    parser.add_argument("--threads", type=int, help="torch threads (default: the free cores)")
    args = parser.parse_args()
    db = store.connect()
    spec = get_task(args.task)
    ids = {
        "encoder": args.encoder or newest_finetune(db, spec.name, True),
        "llm": args.llm or newest_finetune(db, spec.name, False),
    }
    if args.train:
        if not ids["encoder"]:
            ids["encoder"] = train(db, args.encoder_base, spec.name, "encoder", {})
        if not ids["llm"]:
            overrides = {"max_train_examples": args.llm_examples}
            ids["llm"] = train(db, args.llm_base, spec.name, "quick", overrides)
    missing = [kind for kind, model_id in ids.items() if not model_id]
    if missing:
        raise SystemExit(
            f"No fine-tuned {' or '.join(missing)} model on {spec.name} in {store.file_of(db)}: "
            "run with --train, or pass --encoder / --llm"
        )
    if args.train and not args.threads:
        settle()  # the fine-tunes just run leave the load average up for a minute or two
    threads = args.threads or free_cpu_threads()
    torch.set_num_threads(threads)
    items = load_split(spec, "test").items[: args.items]
    texts = [item.fields["text"] for item in items]
    print(f"{spec.name}: {len(items)} test items, {threads} torch thread(s), one request at a time")
    encoder = measure_encoder(ids["encoder"], db, spec, texts)
    print(
        f"encoder {encoder['model']} ({encoder['dtype']}): p50 {encoder['p50_ms']} ms, p95 {encoder['p95_ms']} ms "
        f"(CPU time p50 {encoder['cpu_p50_ms']} ms)"
    )
    llm = measure_llm(ids["llm"], db, spec, items)
    print(
        f"LLM     {llm['model']} ({llm['dtype']}): p50 {llm['p50_ms']} ms, p95 {llm['p95_ms']} ms "
        f"(CPU time p50 {llm['cpu_p50_ms']} ms)"
    )
    out = {
        "task": spec.name,
        "items": len(items),
        "threads": threads,
        "cpu_flags": cpu_flags(),
        "load_average": round(os.getloadavg()[0], 2),
        "mean_words": round(statistics.mean(len(t.split()) for t in texts), 1),
        "encoder": encoder,
        "llm": llm,
        "ratio": round(llm["p50_ms"] / encoder["p50_ms"], 2),
        "encoder_target_met": encoder["p50_ms"] <= 12.0,
        "encoder_cpu_time_within_target": encoder["cpu_p50_ms"] <= 12.0,
        "store": str(Path(store.file_of(db) or "")),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
