"""Fine-tune an encoder with one classification head per task, on one task or several at once.

    >>> loaded = load_encoder(get_model("minilm-l6"), heads=task_heads(specs), training=True)  # doctest: +SKIP
    >>> result = EncoderTrainer(loaded, specs, {"client_priority": 2.0}, config,
    ...                         Path("runs/x")).run()                              # doctest: +SKIP

Methods (``TrainConfig.method``):

- ``lora``: low-rank adapters on the encoder's linear layers (peft), heads trained in full;
- ``head``: the encoder frozen, only the heads trained;
- ``full``: every weight of the encoder and the heads trained.

Multi-task: the training examples of all tasks are joined by item id (a message scored for
sentiment, category and priority is one example with three labels); a task without a label
for an example adds nothing to its loss. The loss of a batch is the weighted mean of the
tasks' cross-entropies (``weights``, 1 by default) over the tasks labelled in that batch.

The loop follows ``core.training.trainer``: seeded batch order (one shuffle per epoch), a
progress row every ``log_every`` steps, validation loss and per-task accuracy every
``eval_every`` steps, checkpoints (trainable weights, optimizer, scheduler, step) every
``save_every`` steps that ``run(resume_from=...)`` continues exactly, ``hooks.should_stop()``
before every step (a cancel saves a checkpoint and returns "cancelled"), and early stopping
that keeps the best weights. One process (encoders this size train fast on one device).
"""

from __future__ import annotations

import json
import math
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from core.models.encoder import (
    FULL_DIR,
    LORA_DIR,
    LoadedEncoder,
    autocast,
    cpu_threads,
    save_heads,
    tokenize,
)
from core.tasks.spec import TaskSpec, load_split
from core.training.config import TrainConfig
from core.training.trainer import NoHooks, TrainHooks, TrainResult, peak_memory_mb

ENCODER_METHODS = {"lora": "LoRA", "head": "Head only", "full": "Full fine-tune"}
IGNORE = -100  # a task without a label for an example


@dataclass(frozen=True)
class MultiTaskExample:
    item_id: str
    text: str
    labels: dict[str, int]  # task -> label index; tasks without a label are absent


def task_heads(specs: list[TaskSpec]) -> dict[str, list[str]]:
    """One head per task, with the task's labels (choice and rating tasks only)."""
    for spec in specs:
        if spec.is_generation or not spec.labels:
            raise ValueError(
                f"Task '{spec.name}' is a {spec.kind} task: an encoder classifies, so it "
                "trains and scores on choice tasks (a fixed list of labels) only."
            )
    return {spec.name: list(spec.labels) for spec in specs}


def multitask_examples(specs: list[TaskSpec], split: str) -> list[MultiTaskExample]:
    """The examples of ``split`` of every task, joined by item id, in first-seen order.

    >>> from core.tasks.spec import get_task
    >>> names = ("client_sentiment", "client_priority")
    >>> examples = multitask_examples([get_task(n) for n in names], "validation")
    >>> sorted(examples[0].labels), len(examples)
    (['client_priority', 'client_sentiment'], 150)
    """
    merged: dict[str, MultiTaskExample] = {}
    for spec in specs:
        for item in load_split(spec, split).items:
            text = item.fields.get("text", "")
            example = merged.setdefault(item.id, MultiTaskExample(item.id, text, {}))
            if example.text != text:
                raise ValueError(
                    f"Item '{item.id}' has a different text in task '{spec.name}' than in "
                    f"{', '.join(example.labels)}: multi-task items must share id and text."
                )
            example.labels[spec.name] = spec.labels.index(item.answer)
    return list(merged.values())


def parse_task_weights(text: str) -> tuple[list[str], dict[str, float]]:
    """``"a,b:2"`` -> (["a", "b"], {"a": 1.0, "b": 2.0}): tasks and their loss weights.

    >>> parse_task_weights("client_sentiment, client_priority:2")
    (['client_sentiment', 'client_priority'], {'client_sentiment': 1.0, 'client_priority': 2.0})
    """
    names, weights = [], {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, _, weight = part.partition(":")
        try:
            value = float(weight) if weight else 1.0
        except ValueError as exc:
            raise ValueError(f"Task weight of '{name}' must be a number, not {weight!r}") from exc
        if not math.isfinite(value) or value <= 0:
            raise ValueError(f"Task weight of '{name}' must be more than 0, not {weight}")
        if name in weights:
            raise ValueError(f"Task '{name}' is listed twice")
        names.append(name)
        weights[name] = value
    if not names:
        raise ValueError("Name at least one task")
    return names, weights


def multitask_loss(
    logits: dict[str, torch.Tensor], labels: dict[str, torch.Tensor], weights: dict[str, float]
) -> torch.Tensor:
    """Weighted mean of the tasks' cross-entropies over the tasks labelled in this batch.

    >>> logits = {"a": torch.zeros(2, 3), "b": torch.zeros(2, 2)}
    >>> labels = {"a": torch.tensor([0, IGNORE]), "b": torch.tensor([IGNORE, IGNORE])}
    >>> round(multitask_loss(logits, labels, {"a": 1.0, "b": 5.0}).item(), 4)  # ln 3; b unlabelled
    1.0986
    """
    total, weight_sum = None, 0.0
    for task, task_logits in logits.items():
        target = labels[task]
        if not bool((target != IGNORE).any()):
            continue
        loss = weights.get(task, 1.0) * F.cross_entropy(
            task_logits.float(), target, ignore_index=IGNORE
        )
        total = loss if total is None else total + loss
        weight_sum += weights.get(task, 1.0)
    if total is None:
        return next(iter(logits.values())).sum() * 0.0
    return total / weight_sum


def _linear_layers(body: torch.nn.Module) -> list[str]:
    """Every linear layer of the encoder body except a pooler (mean pooling does not use it)."""
    return [
        name
        for name, module in body.named_modules()
        if isinstance(module, torch.nn.Linear) and "pooler" not in name
    ]


def prepare_for_training(loaded: LoadedEncoder, config: TrainConfig) -> tuple[int, int]:
    """Make the method's weights trainable (LoRA wraps the body); (trainable, total) params."""
    model = loaded.model
    if config.method not in ENCODER_METHODS:
        raise ValueError(
            f"An encoder trains with {', '.join(ENCODER_METHODS)}, not '{config.method}'"
        )
    if config.method == "lora":
        from peft import LoraConfig, get_peft_model

        targets = (
            _linear_layers(model.body)
            if config.target_modules == "all-linear"
            else [t.strip() for t in config.target_modules.split(",") if t.strip()]
        )
        lora = LoraConfig(
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=targets,
        )
        model.body = get_peft_model(model.body, lora)
    elif config.method == "head":
        model.body.requires_grad_(False)
    else:
        model.body.requires_grad_(True)
    model.heads.requires_grad_(True)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


def save_trained(loaded: LoadedEncoder, target: Path, method: str) -> None:
    """The heads, plus the LoRA adapter or the whole body, as ``load_encoder`` reads them."""
    shutil.rmtree(target, ignore_errors=True)
    save_heads(loaded.model, target, method)
    body = loaded.model.body
    if method == "lora":
        body.save_pretrained(target / LORA_DIR)
    elif method == "full":
        body.save_pretrained(target / FULL_DIR)


class EncoderTrainer:
    def __init__(
        self,
        loaded: LoadedEncoder,
        specs: list[TaskSpec],
        weights: dict[str, float],
        config: TrainConfig,
        run_dir: Path,
        hooks: TrainHooks | None = None,
    ) -> None:
        self.loaded, self.specs, self.config = loaded, specs, config
        self.weights = {spec.name: float(weights.get(spec.name, 1.0)) for spec in specs}
        self.run_dir = Path(run_dir)
        self.hooks = hooks or NoHooks()
        self.train = multitask_examples(specs, "train")
        if config.max_train_examples:
            self.train = self.train[: config.max_train_examples]
        self.validation = multitask_examples(specs, "validation")
        if not self.train:
            raise ValueError(f"Task '{specs[0].name}' has no training examples")
        self.trainable, self.total = prepare_for_training(loaded, config)
        self.params = [p for p in loaded.model.parameters() if p.requires_grad]
        self.named = {n: p for n, p in loaded.model.named_parameters() if p.requires_grad}
        self.optimizer = torch.optim.AdamW(
            self.params, lr=config.learning_rate, weight_decay=config.weight_decay
        )
        per_step = config.batch_size * config.grad_accum
        self.total_steps = max(1, math.ceil(config.epochs * len(self.train) / per_step))
        from transformers import get_scheduler

        name = "constant_with_warmup" if config.scheduler == "constant" else config.scheduler
        self.scheduler = get_scheduler(
            name,
            self.optimizer,
            num_warmup_steps=int(config.warmup_ratio * self.total_steps),
            num_training_steps=self.total_steps,
        )

    # ------------------------------------------------------------------ data

    def micro_batches(self, step: int) -> list[list[MultiTaskExample]]:
        """The micro-batches of optimizer step ``step`` (0-based): one seeded shuffle an epoch."""
        size, accum, n = self.config.batch_size, self.config.grad_accum, len(self.train)
        batches = []
        for micro in range(step * accum, (step + 1) * accum):
            start = micro * size
            epoch, offset = divmod(start, n)
            order = list(range(n))
            random.Random(f"{self.config.seed}:{epoch}").shuffle(order)
            picked = [self.train[i] for i in order[offset : offset + size]]
            batches.append(picked)
        return batches

    def _tensors(self, batch: list[MultiTaskExample]) -> tuple[dict, dict[str, torch.Tensor]]:
        device = self.loaded.device
        inputs = tokenize(
            self.loaded.tokenizer, [e.text for e in batch], device, self.config.max_seq_length
        )
        labels = {
            spec.name: torch.tensor([e.labels.get(spec.name, IGNORE) for e in batch], device=device)
            for spec in self.specs
        }
        return inputs, labels

    # ------------------------------------------------------------------ validation

    @torch.no_grad()
    def validate(self) -> tuple[float | None, dict[str, float]]:
        """(validation loss, accuracy per task) on the validation split; (None, {}) without one."""
        if not self.validation:
            return None, {}
        model = self.loaded.model
        model.eval()
        losses, right, seen = [], dict.fromkeys(self.weights, 0), dict.fromkeys(self.weights, 0)
        for start in range(0, len(self.validation), 64):
            inputs, labels = self._tensors(self.validation[start : start + 64])
            logits = model(**inputs)
            losses.append(multitask_loss(logits, labels, self.weights).item())
            for task, target in labels.items():
                mask = target != IGNORE
                right[task] += int((logits[task].argmax(-1)[mask] == target[mask]).sum())
                seen[task] += int(mask.sum())
        model.train()
        accuracy = {task: right[task] / seen[task] for task in seen if seen[task]}
        return sum(losses) / len(losses), accuracy

    # ------------------------------------------------------------------ checkpoints

    def save_checkpoint(self, step: int, state: dict[str, Any]) -> Path:
        target = self.run_dir / "checkpoints" / f"step-{step:06d}"
        tmp = target.with_name(target.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        save_file(
            {n: p.detach().contiguous() for n, p in self.named.items()},
            tmp / "trainable.safetensors",
        )
        if state.get("best") is not None:
            save_file(state["best"], tmp / "best.safetensors")
        torch.save(
            {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()},
            tmp / "optimizer.pt",
        )
        meta = {k: v for k, v in state.items() if k != "best"}
        (tmp / "state.json").write_text(
            json.dumps({**meta, "step": step, "config": self.config.to_dict()}, indent=2)
        )
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
        old = sorted(self.run_dir.glob("checkpoints/step-*[0-9]"))[: -self.config.keep_checkpoints]
        for path in old:
            shutil.rmtree(path, ignore_errors=True)
        return target

    def _restore(self, checkpoint: Path) -> dict[str, Any]:
        state = json.loads((checkpoint / "state.json").read_text())
        saved = load_file(checkpoint / "trainable.safetensors")
        missing = set(self.named) - set(saved)
        if missing:
            raise ValueError(
                f"Checkpoint {checkpoint} does not match this model and method "
                f"(missing {sorted(missing)[:3]}): resume with the same settings."
            )
        with torch.no_grad():
            for name, param in self.named.items():
                param.copy_(saved[name])
        optim = torch.load(checkpoint / "optimizer.pt", weights_only=True)
        self.optimizer.load_state_dict(optim["optimizer"])
        self.scheduler.load_state_dict(optim["scheduler"])
        best = checkpoint / "best.safetensors"
        state["best"] = load_file(best) if best.is_file() else None
        return state

    # ------------------------------------------------------------------ the loop

    def run(self, resume_from: Path | None = None) -> TrainResult:
        with cpu_threads(self.loaded.device):
            return self._run(resume_from)

    def _run(self, resume_from: Path | None) -> TrainResult:
        cfg, model, hooks = self.config, self.loaded.model, self.hooks
        state: dict[str, Any] = {
            **{"train_tokens": 0, "train_seconds": 0.0, "losses": [], "best_val": None},
            **{"best": None, "stale_checks": 0, "val_loss": None, "val_accuracy": {}},
        }
        if resume_from is not None:
            state = {**state, **self._restore(Path(resume_from))}
        step = int(state.get("step", 0))
        wall_start = time.perf_counter()
        model.train()
        status, window = "completed", []
        while step < self.total_steps:
            if hooks.should_stop():
                status = "cancelled"
                break
            torch.manual_seed(cfg.seed * 1_000_003 + step)  # dropout: the same on resume
            started = time.perf_counter()
            batches = self.micro_batches(step)
            for batch in batches:
                inputs, labels = self._tensors(batch)
                with autocast(self.loaded.device, cfg.dtype):
                    logits = model(**inputs)
                loss = multitask_loss(logits, labels, self.weights) / len(batches)
                loss.backward()
                window.append(loss.item() * len(batches))
                state["train_tokens"] += int(inputs["attention_mask"].sum())
            torch.nn.utils.clip_grad_norm_(self.params, 1.0)
            self.optimizer.step()
            self.scheduler.step()
            self.optimizer.zero_grad(set_to_none=True)
            step += 1
            state["train_seconds"] += time.perf_counter() - started
            hooks.train_step(step, self.total_steps)
            validate_now = step % cfg.eval_every == 0 or step == self.total_steps
            if validate_now:
                state["val_loss"], state["val_accuracy"] = self.validate()
                if state["val_loss"] is not None:
                    if state["best_val"] is None or state["val_loss"] < state["best_val"]:
                        state["best_val"], state["stale_checks"] = state["val_loss"], 0
                        state["best"] = {
                            n: p.detach().clone().contiguous() for n, p in self.named.items()
                        }
                    else:
                        state["stale_checks"] += 1
            if step % cfg.log_every == 0 or validate_now or step == self.total_steps:
                state["losses"].append(sum(window) / max(1, len(window)))
                window = []
                hooks.train_progress(self._row(step, state, validate_now))
            if step % cfg.save_every == 0 and step < self.total_steps:
                self.save_checkpoint(step, state)
            patience = cfg.early_stopping_patience
            if patience and state["stale_checks"] >= patience:
                status = "early_stopped"
                break
        checkpoint = self.save_checkpoint(step, state) if status == "cancelled" else None
        if status != "cancelled" and state["best"] is not None and cfg.early_stopping_patience:
            with torch.no_grad():  # early stopping keeps the best weights seen
                for name, param in self.named.items():
                    param.copy_(state["best"][name])
        model.eval()
        adapter_dir = None
        if status != "cancelled":
            adapter_dir = self.run_dir / "adapter"
            save_trained(self.loaded, adapter_dir, cfg.method)
        return self._result(status, step, state, wall_start, adapter_dir, checkpoint)

    def _row(self, step: int, state: dict[str, Any], validated: bool) -> dict[str, Any]:
        seconds = state["train_seconds"]
        return {
            "step": step,
            "total_steps": self.total_steps,
            "epoch": step * self.config.batch_size * self.config.grad_accum / len(self.train),
            "train_loss": state["losses"][-1],
            "val_loss": state["val_loss"] if validated else None,
            "learning_rate": self.scheduler.get_last_lr()[0],
            "tokens_per_s": state["train_tokens"] / seconds if seconds else None,
            "elapsed_s": seconds,
            "eta_s": seconds / step * (self.total_steps - step),
            "val_accuracy": state.get("val_accuracy") if validated else None,
        }

    def _result(
        self,
        status: str,
        step: int,
        state: dict[str, Any],
        wall_start: float,
        adapter_dir: Path | None,
        checkpoint: Path | None,
    ) -> TrainResult:
        losses, seconds = state["losses"], state["train_seconds"]
        per_step = self.config.batch_size * self.config.grad_accum
        notes = [f"tasks: {', '.join(f'{t} (weight {w:g})' for t, w in self.weights.items())}"]
        if state.get("val_accuracy"):
            accuracy = ", ".join(f"{t} {a:.3f}" for t, a in state["val_accuracy"].items())
            notes.append(f"validation accuracy: {accuracy}")
        return TrainResult(
            status=status,
            adapter_dir=str(adapter_dir) if adapter_dir else None,
            steps=step,
            total_steps=self.total_steps,
            epochs_done=step * per_step / len(self.train),
            final_train_loss=losses[-1] if losses else None,
            mean_train_loss=sum(losses) / len(losses) if losses else None,
            final_val_loss=state["val_loss"],
            best_val_loss=state["best_val"],
            train_tokens=state["train_tokens"],
            train_seconds=seconds,
            wall_seconds=time.perf_counter() - wall_start,
            tokens_per_s=state["train_tokens"] / seconds if seconds else 0.0,
            trainable_params=self.trainable,
            total_params=self.total,
            peak_memory_mb=peak_memory_mb(self.loaded.device),
            device=self.loaded.device,
            dtype=self.loaded.dtype_name,
            checkpoint=str(checkpoint) if checkpoint else None,
            notes=notes,
        )
