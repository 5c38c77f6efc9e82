"""Synthetic finance instructions from a local instruct model (Magpie-style), checkpointed.

The model is given its chat template's user-turn prefix followed by a short topic seed
("Explain how dividends ...") and writes the rest of a user's instruction; then it answers
that instruction in a normal chat turn. Every raw record is kept in
``user_data_dir()/generated/<name>/raw.jsonl``; after each ``checkpoint_every`` records the new
lines are appended and flushed to disk (fsync), so a cancelled, failed or killed job resumes
from the last checkpoint: records are made in batches seeded by their position
(``seed + first index``), so the records made again after a kill are the same ones, and no
record is lost or changed. At the end the raw records pass through the quality pipeline
(``core.data.quality``, mode ``filter``) and the kept ones become task ``<name>`` (split by a
hash of the record id), with the report stored beside it.

    >>> user_prefix_of("<|im_start|>user\\n\\x00<|im_end|>\\n")
    '<|im_start|>user\\n'
    >>> seed_text(3, ["dividends"])
    'What does dividends tell an investor'
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from core import paths
from core.data import quality
from core.data.items import SPLIT_NAMES, Item
from core.workflows.hooks import Hooks

TOPICS = (
    "earnings per share",
    "revenue growth",
    "dividends",
    "interest rates",
    "cash flow statements",
    "balance sheets",
    "bond yields",
    "inflation",
    "stock valuation ratios",
    "profit margins",
    "credit risk",
    "portfolio diversification",
)
SEEDS = (
    "Explain {topic}",
    "How do I calculate {topic}",
    "What does {topic} tell an investor",
    "Give a worked example of {topic}",
)
MARK = "\x00"
SPLIT = {"validation": 0.1, "test": 0.1}


@dataclass(frozen=True)
class GenerateSettings:
    """One generation run; ``name`` is also the task it makes."""

    name: str
    model_id: str
    count: int = 200
    temperature: float = 0.9
    top_p: float = 0.95
    max_new_tokens: int = 128  # for each answer
    instruction_tokens: int = 48  # for each instruction
    topics: list[str] = field(default_factory=lambda: list(TOPICS))
    checkpoint_every: int = 8
    batch_size: int = 8
    seed: int = 0
    quality: dict[str, Any] = field(default_factory=dict)
    require_finished_instruction: bool = True  # else a cut instruction is kept (format rule)
    # CPU threads for torch (0: torch's default). On a busy shared CPU, 1 thread avoids
    # threads waiting on each other: measured 10x faster decoding on a loaded 2-core VM.
    threads: int = 0

    def problems(self) -> list[str]:
        """What is wrong with these settings (empty when they can run)."""
        found = []
        if not 1 <= self.count <= 100_000:
            found.append("count must be 1..100000")
        if not (math.isfinite(self.temperature) and 0 < self.temperature <= 5):
            found.append("temperature must be in (0, 5]")
        if not 0 < self.top_p <= 1:
            found.append("top_p must be in (0, 1]")
        for key in ("max_new_tokens", "instruction_tokens"):
            if not 1 <= getattr(self, key) <= 4096:
                found.append(f"{key} must be 1..4096")
        if not 0 <= self.threads <= 1024:
            found.append("threads must be 0..1024")
        if not 1 <= self.batch_size <= 256:
            found.append("batch_size must be 1..256")
        if self.checkpoint_every < 1 or self.checkpoint_every % self.batch_size:
            found.append("checkpoint_every must be a positive multiple of batch_size")
        if not self.topics or any(not str(t).strip() for t in self.topics):
            found.append("topics must be a non-empty list of non-empty strings")
        try:
            quality.load_thresholds(self.quality)
        except ValueError as exc:
            found.append(str(exc))
        return found

    def identity(self) -> dict[str, Any]:
        """What makes the records: a resumed run must match it (the count may grow)."""
        skip = ("count", "quality", "threads")
        return {k: v for k, v in asdict(self).items() if k not in skip}


def work_dir(name: str) -> Path:
    return paths.user_data_dir() / "generated" / name


def user_prefix_of(rendered: str) -> str:
    """The text of a chat template before a user turn's content (``rendered`` holds MARK)."""
    return rendered.split(MARK, 1)[0]


def user_prefix(tokenizer: Any) -> str:
    """The chat template's user-turn prefix: what a model sees before a user's words."""
    if not getattr(tokenizer, "chat_template", None):
        raise ValueError("the model has no chat template: choose an instruct model")
    messages = [{"role": "user", "content": MARK}]
    return user_prefix_of(tokenizer.apply_chat_template(messages, tokenize=False))


def seed_text(index: int, topics: list[str]) -> str:
    """The topic seed of record ``index``: topics in turn, each with the next seed phrase."""
    topic = topics[index % len(topics)]
    return SEEDS[(index // len(topics) + index) % len(SEEDS)].format(topic=topic)


# ---------------------------------------------------------------- the checkpoint file


def read_raw(folder: Path, batch_size: int) -> list[dict[str, Any]]:
    """The checkpointed records: complete lines only, cut to whole batches."""
    path = folder / "raw.jsonl"
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").split("\n"):
        try:
            records.append(json.loads(line))
        except ValueError:
            break  # a line cut by a kill: it and anything after it are made again
    return records[: len(records) - len(records) % batch_size]


def checkpoint(folder: Path, records: list[dict[str, Any]]) -> None:
    """Write all ``records`` as the new raw file, durably, then swap it in."""
    path = folder / "raw.jsonl"
    tmp = folder / "raw.jsonl.tmp"
    with tmp.open("w", encoding="utf-8") as handle:
        handle.write("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
        handle.flush()
        os.fsync(handle.fileno())
    tmp.replace(path)


def start_or_resume(settings: GenerateSettings) -> tuple[Path, list[dict[str, Any]]]:
    """The run's folder and the records it holds (none for a new run)."""
    folder = work_dir(settings.name)
    folder.mkdir(parents=True, exist_ok=True)
    stored = folder / "settings.json"
    if stored.is_file():
        before = json.loads(stored.read_text(encoding="utf-8"))
        if before != settings.identity():
            raise ValueError(
                f"{folder} holds a generation run with other settings; choose another name "
                "(or remove that folder)"
            )
    else:
        stored.write_text(json.dumps(settings.identity(), indent=1), encoding="utf-8")
    return folder, read_raw(folder, settings.batch_size)


# ---------------------------------------------------------------- making records


def _sample(
    loaded: Any, prompts: list[str], max_new_tokens: int, settings: GenerateSettings, seed: int
):
    """(text, finished) per prompt: sampled continuations, cut at the end of the turn."""
    import torch

    tokenizer = loaded.tokenizer
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    batch = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    batch = {k: v.to(loaded.device) for k, v in batch.items()}
    torch.manual_seed(seed)
    with torch.no_grad():
        out = loaded.model.generate(
            **batch,
            do_sample=True,
            temperature=settings.temperature,
            top_p=settings.top_p,
            max_new_tokens=max_new_tokens,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
    results = []
    for row in out[:, batch["input_ids"].shape[1] :].tolist():
        finished = tokenizer.eos_token_id in row
        if finished:
            row = row[: row.index(tokenizer.eos_token_id)]
        results.append((tokenizer.decode(row, skip_special_tokens=True).strip(), finished))
    return results


def make_batch(loaded: Any, settings: GenerateSettings, start: int, prefix: str) -> list[dict]:
    """Records ``start .. start + batch_size - 1``: instruction, then its answer."""
    indices = range(start, min(start + settings.batch_size, settings.count))
    seeds = [seed_text(i, settings.topics) for i in indices]
    begun = time.perf_counter()
    written = _sample(
        loaded,
        [prefix + s for s in seeds],
        settings.instruction_tokens,
        settings,
        settings.seed + start,
    )
    instructions = [
        f"{s}{text if text[:1] in ',.?!:;' else ' ' + text}".strip()
        for s, (text, _) in zip(seeds, written)
    ]
    chats = [
        loaded.tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
        )
        for text in instructions
    ]
    answers = _sample(
        loaded, chats, settings.max_new_tokens, settings, settings.seed + start + 10**6
    )
    seconds = (time.perf_counter() - begun) / max(1, len(seeds))
    return [
        {
            "index": i,
            "topic": settings.topics[i % len(settings.topics)],
            "seed": s,
            "instruction": instruction,
            "instruction_finished": finished_instruction,
            "response": answer,
            "response_finished": finished_answer,
            "seconds": round(seconds, 3),
        }
        for i, s, instruction, (_, finished_instruction), (answer, finished_answer) in zip(
            indices, seeds, instructions, written, answers
        )
    ]


@dataclass
class FormatError:
    """A raw record that is not an instruction record (counted as ``format``)."""

    id: str
    message: str
    split: str = "train"

    def __str__(self) -> str:
        return f"{self.id}: {self.message}"


def to_items(
    records: list[dict[str, Any]], require_finished: bool = True
) -> tuple[dict[str, list[Item]], list[FormatError]]:
    """Raw records as instruction items by split (hash of the id); the malformed ones apart."""
    from core.tasks.spec import split_of

    by_split: dict[str, list[Item]] = {split: [] for split in SPLIT_NAMES}
    errors = []
    for record in records:
        record_id = f"gen-{record['index']:06d}"
        if require_finished and not record["instruction_finished"]:
            errors.append(FormatError(record_id, "the instruction did not end within its tokens"))
            continue
        if not record["instruction"] or not record["response"]:
            errors.append(FormatError(record_id, "empty instruction or response"))
            continue
        item = Item(
            record_id,
            {"prompt": record["instruction"]},
            record["response"],
            {"record": "instruction", "topic": record["topic"]},
        )
        by_split[split_of(record_id, 0, SPLIT)].append(item)
    return by_split, errors


def running_counts(
    records: list[dict[str, Any]], thresholds: quality.Thresholds, require_finished: bool
) -> tuple[int, int]:
    """(kept, rejected) by the per-record rules so far (duplicates are counted at the end)."""
    by_split, errors = to_items(records, require_finished)
    kept = 0
    for split, items in by_split.items():
        for item in items:
            record = quality.record_of(item, split, False)
            if all(rule(record, thresholds, None) is None for rule in quality.RULES.values()):
                kept += 1
    return kept, len(records) - kept


Progress = Callable[[int, int, int, int, float], None]  # raw, count, kept, rejected, eta_s


def generate(
    loaded: Any,
    settings: GenerateSettings,
    hooks: Hooks | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Make (or finish making) the records, filter them, store the task; the summary."""
    hooks = hooks or Hooks()
    problems = settings.problems()
    if problems:
        raise ValueError("; ".join(problems))
    thresholds = quality.load_thresholds(settings.quality)
    if settings.threads:
        import torch

        torch.set_num_threads(settings.threads)
    prefix = user_prefix(loaded.tokenizer)
    folder, records = start_or_resume(settings)
    resumed = len(records)
    pending: list[dict[str, Any]] = []
    begun = time.perf_counter()
    hooks.phase("generating")
    while len(records) < settings.count:
        if hooks.should_stop():
            checkpoint(folder, records)
            return {"status": "cancelled", "raw": len(records), "folder": str(folder)}
        batch = make_batch(loaded, settings, len(records), prefix)
        records += batch
        pending += batch
        if len(pending) >= settings.checkpoint_every or len(records) >= settings.count:
            checkpoint(folder, records)
            pending = []
        kept, rejected = running_counts(records, thresholds, settings.require_finished_instruction)
        made = len(records) - resumed
        eta = (time.perf_counter() - begun) / made * (settings.count - len(records))
        if progress is not None:
            progress(len(records), settings.count, kept, rejected, eta)
    hooks.phase("filtering")
    return finish(settings, records, thresholds, folder, resumed)


def finish(
    settings: GenerateSettings,
    records: list[dict[str, Any]],
    thresholds: quality.Thresholds,
    folder: Path,
    resumed: int,
) -> dict[str, Any]:
    """Quality pipeline over the raw records; the kept ones become task ``settings.name``."""
    from core.tasks.prepared import store_prepared

    by_split, errors = to_items(records, settings.require_finished_instruction)
    kept, report = quality.check_records(
        by_split, response_is_label=False, thresholds=thresholds, format_errors=errors
    )
    data = {
        "name": settings.name,
        "version": 1,
        "description": f"Synthetic finance instructions by {settings.model_id} ({len(records)} raw, "
        f"{report.kept} kept; temperature {settings.temperature}, seed {settings.seed})",
        "kind": "text",
        "source": {
            "type": "prepared",
            "records": "instruction",
            "files": {},
            "raw": str(folder / "raw.jsonl"),
        },
        "template": "{prompt}",
        "generation": {"max_new_tokens": settings.max_new_tokens, "stop": []},
        "quality": dict(settings.quality),
    }
    store_prepared(settings.name, data, kept, report.to_dict())
    return {
        "task": settings.name,
        "raw": report.raw,
        "kept": report.kept,
        "rejected": {k: v for k, v in report.rejected.items() if v},
        "resumed_from": resumed,
        "splits": {split: len(items) for split, items in kept.items()},
        "folder": str(folder),
        "seconds_per_record": sum(r["seconds"] for r in records) / max(1, len(records)),
    }
