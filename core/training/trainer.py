"""The training loop: LoRA, QLoRA or prompt tuning on a task's training split, read top to bottom.

    >>> from core.training.config import preset_config
    >>> config = preset_config("quick")
    >>> loaded = load_for_training(get_model("smollm2-135m-instruct"), config)      # doctest: +SKIP
    >>> trainer = Trainer(loaded, get_task("fin_sentiment"), config, Path("runs/demo"))  # doctest: +SKIP
    >>> result = trainer.run()                                                         # doctest: +SKIP

What makes it fast (and what the result reports):

- bf16 compute for the base *and* the adapter where the hardware runs bf16 natively, with
  fp32 master copies of the trainable weights in the optimizer (so small updates are not lost);
- length-grouped batches (little padding; the padding that remains is not counted as tokens);
- loss on the completion tokens only, and the LM head applied only at those positions: the
  vocabulary projection is a large share of a small model's compute and is skipped elsewhere.

Checkpoints (adapter weights, fp32 masters, optimizer, scheduler, RNG, step) every
``save_every`` steps let ``run(resume_from=...)`` continue the step count, schedule and
optimizer state exactly. ``hooks.should_stop()`` (a cancel request) is checked before every
step: the trainer saves a checkpoint and returns with status "cancelled". Progress rows go to
``hooks.train_progress(row)``. The trainer never loads weights itself: it is handed a loaded
base model (``load_for_training``), so a caller can use the same weights for other work first.

Data parallel (``core.parallel``: several processes under ``accelerate launch``): the
length-grouped batches are formed over the whole training set exactly as in one process, and
each rank computes the loss of its share of every global batch (``World.share``). The loss is
normalised by the global batch's completion tokens, and the adapter's gradients (the only
trainable weights) are summed over the ranks in one collective per step, so every rank makes
the same update a single process would make with the same global batch, seed and schedule.
Rank 0 alone reports progress and writes checkpoints and the adapter; a cancel on any rank
stops all of them at the same step.
"""

from __future__ import annotations

import json
import math
import resource
import shutil
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from core import parallel
from core.models.kv import cache_kwargs, output_cache
from core.models.loading import LoadedModel, load_model
from core.models.registry import ModelEntry
from core.models.tokens import common_prefix_length
from core.tasks.examples import Example, build_examples
from core.tasks.spec import TaskSpec, load_split
from core.training.augmented import training_examples
from core.training.budget import PROBE_STEPS, StepCosts, fit_steps
from core.training.config import TrainConfig
from core.training.data import collate, length_grouped_batches

MAX_GRAD_NORM = 1.0


class TrainHooks(Protocol):
    """What the trainer calls back: a progress row per log step, the step count every step,
    and "stop now?" before every step."""

    def train_progress(self, row: dict[str, Any]) -> None: ...

    def train_step(self, step: int, total_steps: int) -> None: ...

    def should_stop(self) -> bool: ...


class NoHooks:
    """Hooks that report nothing and never stop."""

    def train_progress(self, row: dict[str, Any]) -> None:
        pass

    def train_step(self, step: int, total_steps: int) -> None:
        pass

    def should_stop(self) -> bool:
        return False


def load_for_training(
    entry: ModelEntry, config: TrainConfig, device: str | None = None
) -> LoadedModel:
    """The base weights of ``entry`` as training needs them: its dtype, 4-bit for QLoRA."""
    return load_model(
        entry,
        device=device,
        dtype=config.dtype,
        load_in_4bit=config.method == "qlora",
        with_adapter=False,
    )


@dataclass
class TrainResult:
    status: str  # "completed" | "early_stopped" | "cancelled"
    adapter_dir: str | None
    steps: int
    total_steps: int
    epochs_done: float
    final_train_loss: float | None
    mean_train_loss: float | None  # over the whole run, per completion token
    final_val_loss: float | None
    best_val_loss: float | None
    train_tokens: int
    train_seconds: float
    wall_seconds: float
    tokens_per_s: float
    trainable_params: int
    total_params: int
    peak_memory_mb: float
    device: str
    dtype: str
    checkpoint: str | None = None
    notes: list[str] = field(default_factory=list)
    world_size: int = 1  # data-parallel processes; tokens and tokens/s count all of them

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def cost_figures(self) -> dict[str, Any]:
        """What the run cost and how much of the model it trained, as results report them."""
        return {
            "trainable_params": self.trainable_params,
            "total_params": self.total_params,
            "trainable_percent": 100 * self.trainable_params / max(1, self.total_params),
            "train_seconds": self.train_seconds,
            "tokens_per_s": self.tokens_per_s,
            "peak_memory_mb": self.peak_memory_mb,
        }


def split_batch(examples: list[Example], parts: int) -> list[list[Example]]:
    """``examples`` in up to ``parts`` consecutive pieces of near-equal size (none empty).

    >>> [len(piece) for piece in split_batch(list(range(5)), 2)]
    [3, 2]
    """
    parts = max(1, min(parts, len(examples)))
    size = max(1, math.ceil(len(examples) / parts))
    return [examples[start : start + size] for start in range(0, len(examples), size)]


@contextmanager
def dropout_off(model: torch.nn.Module) -> Iterator[None]:
    """Every dropout layer of ``model`` in eval mode for the block; the rest as it was."""
    switched = [m for m in model.modules() if isinstance(m, torch.nn.Dropout) and m.training]
    for module in switched:
        module.eval()
    try:
        yield
    finally:
        for module in switched:
            module.train()


def peak_memory_mb(device: str) -> float:
    """Peak process RSS (Linux reports KiB); on CUDA the max allocated GPU memory instead."""
    if device == "cuda":
        return torch.cuda.max_memory_allocated() / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def unpacked_numel(param: torch.Tensor) -> int:
    """How many weights a parameter holds: a 4-bit one packs two (or more) per stored element.

    bitsandbytes keeps the original shape in the parameter's quant state; counting the packed
    storage instead would halve a QLoRA base and double its trainable share.
    """
    quant_state = getattr(param, "quant_state", None)
    shape = getattr(quant_state, "shape", None)
    return int(torch.Size(shape).numel()) if shape is not None else param.numel()


class Trainer:
    def __init__(
        self,
        loaded: LoadedModel,
        spec: TaskSpec,
        config: TrainConfig,
        run_dir: Path,
        hooks: TrainHooks | None = None,
        world: parallel.World | None = None,
        budget_s: float | None = None,
    ) -> None:
        """``loaded``: the base model from ``load_for_training`` (it is wrapped in place).

        ``world``: the data-parallel world (default: this process's, ``parallel.current()``).
        ``budget_s``: seconds this trainer may take from now (default: the config's
        ``max_minutes``; see ``core.training.budget``).
        """
        self.loaded, self.entry = loaded, loaded.entry
        self.spec, self.config = spec, config.validate()
        self.run_dir = Path(run_dir)
        self.hooks = hooks or NoHooks()
        self.world = world or parallel.current()
        self.notes: list[str] = []
        if budget_s is None and self.config.max_minutes:
            budget_s = 60.0 * self.config.max_minutes
        self.budget_s = budget_s
        self.created_at = time.perf_counter()  # the budget's clock starts here
        # passes per micro-batch: more on an out-of-memory retry; the guard may raise it
        self.micro_split = self.config.micro_split

    # ------------------------------------------------------------------ set-up

    def _load(self) -> None:
        from peft import get_peft_model

        cfg, loaded = self.config, self.loaded
        torch.manual_seed(cfg.seed)
        self.device, self.dtype, self.tokenizer = loaded.device, loaded.dtype, loaded.tokenizer
        base = loaded.model
        if cfg.gradient_checkpointing:
            base.gradient_checkpointing_enable(
                gradient_checkpointing_kwargs={"use_reentrant": False}
            )
            base.enable_input_require_grads()
        self.model = get_peft_model(base, self._peft_config())
        self.model.train()
        self.base = self.model.get_base_model()
        self.decoder = self.base.model  # the transformer body, without the LM head
        self.lm_head = self.base.get_output_embeddings()
        self.softcap = getattr(self.base.config, "final_logit_softcapping", None)
        self.n_virtual = cfg.num_virtual_tokens if cfg.method == "prompt-tuning" else 0
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        # fp32 master copies: the optimizer updates these, the model computes in its own dtype.
        self.masters = [torch.nn.Parameter(p.detach().float().clone()) for p in self.params]
        self._same_start_on_every_rank()
        self.sharded = False
        if cfg.fsdp:
            self._shard_base()
        self.trainable_params = sum(p.numel() for p in self.params)
        self.total_params = sum(unpacked_numel(p) for p in self.model.parameters())

    def _same_start_on_every_rank(self) -> None:
        """Rank 0's initial adapter weights everywhere; then a dropout stream of its own per rank.

        Every rank seeds the same, so the weights already agree; the broadcast makes sure.
        """
        if not self.world.distributed:
            return
        with torch.no_grad():
            for param, master in zip(self.params, self.masters):
                self.world.broadcast_(master.data)
                param.copy_(master)
        if not self.world.is_main:
            torch.manual_seed(self.config.seed + 7919 * self.world.rank)
        self.notes.append(f"data parallel over {self.world.size} processes")

    def _shard_base(self) -> None:
        """FSDP: every decoder layer's frozen weights sharded over the ranks (torch's
        ``fully_shard``, the FSDP2 engine Accelerate's FSDP plugin drives).

        A layer's weights are gathered just before it runs and freed after, forward and
        backward, so each rank holds 1/size of the base plus one layer at a time. The adapter's
        weights stay whole on every rank (``ignored_params``): they are tiny, and the step's
        one all-reduce keeps them in sync exactly as without sharding. The embeddings (often
        tied to the LM head) stay whole too.
        """
        if not self.world.distributed:
            self.notes.append("fsdp asked for, but the run has one process: nothing to shard")
            return
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        layers = getattr(self.decoder, "layers", None)
        if layers is None:
            raise ValueError(f"fsdp: cannot find the decoder layers of '{self.entry.id}'")
        mesh = init_device_mesh(self.world.device_type, (self.world.size,))
        keep = set(self.params) | set(self.base.get_input_embeddings().parameters())
        for layer in layers:
            fully_shard(
                layer, mesh=mesh, ignored_params={p for p in layer.parameters() if p in keep}
            )
        fully_shard(self.decoder, mesh=mesh, ignored_params=keep)
        self.sharded = True
        self.notes.append(f"base weights sharded over {self.world.size} processes (FSDP)")

    def _peft_config(self) -> Any:
        from peft import LoraConfig, PromptTuningConfig, PromptTuningInit, TaskType

        cfg = self.config
        if cfg.method == "prompt-tuning":
            use_text = cfg.prompt_init == "text" and bool(self.spec.instruction)
            return PromptTuningConfig(
                task_type=TaskType.CAUSAL_LM,
                num_virtual_tokens=cfg.num_virtual_tokens,
                prompt_tuning_init=PromptTuningInit.TEXT if use_text else PromptTuningInit.RANDOM,
                prompt_tuning_init_text=self.spec.instruction if use_text else None,
                tokenizer_name_or_path=str(self.tokenizer.name_or_path) if use_text else None,
            )
        targets = (
            cfg.target_modules
            if cfg.target_modules == "all-linear"
            else [m.strip() for m in cfg.target_modules.split(",")]
        )
        return LoraConfig(
            r=cfg.lora_r,
            lora_alpha=cfg.lora_alpha,
            lora_dropout=cfg.lora_dropout,
            target_modules=targets,
            task_type=TaskType.CAUSAL_LM,
        )

    def _data(self) -> None:
        cfg = self.config
        train_items = load_split(self.spec, "train").items
        if cfg.max_train_examples:
            train_items = train_items[: cfg.max_train_examples]
        val_items = load_split(self.spec, "validation").items
        instruct, max_length = self.entry.instruct, cfg.max_seq_length
        # an augmented corpus (source.augment) trains on every view of each record
        train = training_examples(self.spec, train_items, self.tokenizer, instruct, max_length)
        val = build_examples(self.spec, val_items, self.tokenizer, instruct, max_length)
        if not train:
            raise ValueError(f"Task '{self.spec.name}' has no training examples")
        # The prompt start every example shares (system prompt, instruction) is computed once
        # per batch; gradient checkpointing recomputes layers and cannot reuse a cache, and
        # under FSDP the gradient through a cache would reach layers whose weights are freed.
        shared = 0
        if not cfg.gradient_checkpointing and not (cfg.fsdp and self.world.distributed):
            shared = common_prefix_length([e.prompt_ids for e in train + val])
        self.prefix_ids = train[0].prompt_ids[:shared]
        self.train_examples = [Example(e.prompt_ids[shared:], e.completion_ids) for e in train]
        self.val_examples = [Example(e.prompt_ids[shared:], e.completion_ids) for e in val]
        if shared:
            self.notes.append(f"{shared} shared prompt tokens computed once per batch")
        self.lengths = [e.length for e in self.train_examples]
        self._epoch_order: tuple[int, list[list[int]]] | None = None
        self.batches_per_epoch = math.ceil(len(self.train_examples) / cfg.batch_size)
        self.total_micro = max(1, round(self.batches_per_epoch * cfg.epochs))
        self.total_steps = math.ceil(self.total_micro / cfg.grad_accum)
        self.planned_steps, self.eval_every = self.total_steps, cfg.eval_every
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0

    def _optimizer(self) -> None:
        cfg = self.config
        self.optimizer = torch.optim.AdamW(
            self.masters, lr=cfg.learning_rate, weight_decay=cfg.weight_decay
        )
        self._schedule()

    def _schedule(self, done_steps: int = 0) -> None:
        """The learning-rate schedule over ``self.total_steps``, advanced past ``done_steps``."""
        from transformers import get_scheduler

        cfg = self.config
        for group in self.optimizer.param_groups:  # a new schedule starts from the peak rate
            group["lr"] = group.get("initial_lr", cfg.learning_rate)
        self.scheduler = get_scheduler(
            cfg.scheduler if cfg.scheduler != "constant" else "constant_with_warmup",
            self.optimizer,
            num_warmup_steps=round(cfg.warmup_ratio * self.total_steps),
            num_training_steps=self.total_steps,
        )
        with warnings.catch_warnings():  # fast-forwarding a new schedule is not a misuse
            warnings.filterwarnings("ignore", message="Detected call of `lr_scheduler.step")
            for _ in range(done_steps):
                self.scheduler.step()

    # ------------------------------------------------------------------ the loss

    def _prefix_cache(self, rows: int) -> tuple[int, Any]:
        """Keys/values of the shared prefix (virtual tokens + common prompt start), once, for ``rows`` rows.

        Computed with gradients, so the adapter learns from the prefix as it would if every
        example carried it; it is just not recomputed per example. It is computed without
        LoRA dropout: one pass means one dropout mask for every row of the batch, which
        regularises nothing (the rows are not decorrelated) and only adds the same noise to
        every row's gradient; drawing a mask per row would mean a pass per row. The examples'
        own tokens get dropout as configured.
        """
        if not self.prefix_ids and not self.n_virtual:
            return 0, None
        ids = torch.tensor([self.prefix_ids], dtype=torch.long, device=self.device)
        embeds = self.base.get_input_embeddings()(ids)
        if self.n_virtual:
            embeds = torch.cat(
                [self.model.get_prompt(batch_size=1).to(embeds.dtype), embeds], dim=1
            )
        with dropout_off(self.model):
            cache = output_cache(self.decoder(inputs_embeds=embeds, use_cache=True))
        cache.batch_repeat_interleave(rows)
        return embeds.shape[1], cache

    def _hidden_states(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        prefix_len, cache = self._prefix_cache(ids.shape[0])
        if cache is None:
            return self.decoder(
                input_ids=ids, attention_mask=mask, use_cache=False
            ).last_hidden_state
        ones = torch.ones((ids.shape[0], prefix_len), dtype=mask.dtype, device=mask.device)
        positions = prefix_len + torch.arange(ids.shape[1], device=ids.device).expand(
            ids.shape[0], -1
        )
        out = self.decoder(
            input_ids=ids,
            attention_mask=torch.cat([ones, mask], dim=1),
            position_ids=positions,
            **cache_kwargs(self.decoder, cache),
            use_cache=True,
        )
        return out.last_hidden_state

    def completion_loss(self, examples: list[Example]) -> tuple[torch.Tensor, int, int]:
        """Summed cross-entropy over completion tokens; also their count and the examples' tokens.

        Token counts include the shared prefix: they are the examples' prompt + completion
        tokens, whether or not the prefix was computed once for the batch.
        """
        batch = collate(examples, self.pad_id, self.device)
        hidden = self._hidden_states(batch.input_ids, batch.attention_mask)
        selected = hidden[batch.target_rows, batch.target_positions]
        logits = self.lm_head(selected).float()
        if self.softcap:
            logits = torch.tanh(logits / self.softcap) * self.softcap
        loss = F.cross_entropy(logits, batch.targets, reduction="sum")
        return loss, len(batch.targets), batch.tokens + len(self.prefix_ids) * len(examples)

    @torch.no_grad()
    def validation_loss(self) -> float | None:
        if not self.val_examples:
            return None
        self.model.eval()
        total, count = 0.0, 0
        order = sorted(range(len(self.val_examples)), key=lambda i: self.val_examples[i].length)
        size = self.config.batch_size * 2
        batches = [order[start : start + size] for start in range(0, len(order), size)]
        mine = self.world.share(batches)  # each rank scores its share of the batches
        turns = math.ceil(len(batches) / self.world.size) if self.sharded else len(mine)
        for turn in range(turns):
            # Sharded ranks gather each layer's weights together, so every rank runs the same
            # number of forward passes: a rank out of batches repeats one and counts nothing.
            batch, weight = (mine[turn], 1) if turn < len(mine) else (batches[0], 0)
            loss, n, _ = self.completion_loss([self.val_examples[i] for i in batch])
            total, count = total + weight * float(loss), count + weight * n
        total, count = self.world.sum_floats(total, count)
        self.model.train()
        return total / max(1, count)

    # ------------------------------------------------------------------ one optimizer step

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """The batches of ``epoch``, as indices into ``train_examples``, in training order."""
        return [list(batch) for batch in self._batch_order(epoch)]

    def _batch_order(self, epoch: int) -> list[list[int]]:
        # drawn once per epoch, not once per micro-batch
        if self._epoch_order is None or self._epoch_order[0] != epoch:
            order = length_grouped_batches(
                self.lengths, self.config.batch_size, self.config.seed + epoch
            )
            self._epoch_order = (epoch, order)
        return self._epoch_order[1]

    def _micro_batch(self, micro: int) -> list[Example]:
        epoch, index = divmod(micro, self.batches_per_epoch)
        return [self.train_examples[i] for i in self._batch_order(epoch)[index]]

    def _step(self, first_micro: int) -> tuple[float, int, int]:
        """Accumulate gradients over up to grad_accum micro-batches, then update.

        Returns the global batch's loss per completion token, its completion tokens and its
        tokens (all ranks together). Each rank computes its share of every micro-batch; the
        loss is divided by the global count of completion tokens, so the summed gradients are
        those of the whole global batch.
        """
        last = min(first_micro + self.config.grad_accum, self.total_micro)
        examples = [self._micro_batch(m) for m in range(first_micro, last)]
        n_targets = sum(sum(len(e.completion_ids) for e in batch) for batch in examples)
        n_examples = sum(len(batch) for batch in examples)
        tokens = sum(e.length for batch in examples for e in batch)
        tokens += len(self.prefix_ids) * n_examples
        loss_sum = 0.0
        for batch in examples:
            share, weight = self.world.share(batch), 1.0
            if not share:  # a last batch smaller than the world: this rank sits it out
                if not self.sharded:
                    continue
                share, weight = batch[:1], 0.0  # ...but runs the same passes as the others
            for piece in split_batch(share, self.micro_split):  # same sum, smaller passes
                loss, _, _ = self.completion_loss(piece)
                (weight * loss / n_targets).backward()
                loss_sum += weight * loss.item()
        for param, master in zip(self.params, self.masters):
            master.grad = param.grad.float() if param.grad is not None else torch.zeros_like(master)
            param.grad = None
        loss_sum = self._sum_over_ranks(loss_sum)
        torch.nn.utils.clip_grad_norm_(self.masters, MAX_GRAD_NORM)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            for param, master in zip(self.params, self.masters):
                param.copy_(master)
        return loss_sum / n_targets, n_targets, tokens

    def _sum_over_ranks(self, loss_sum: float) -> float:
        """Sum the masters' gradients (and the loss) over the ranks: one collective per step."""
        if not self.world.distributed:
            return loss_sum
        grads = [master.grad for master in self.masters]
        flat = torch.cat([g.reshape(-1) for g in grads] + [grads[0].new_tensor([loss_sum])])
        self.world.sum_(flat)
        offset = 0
        for grad in grads:
            grad.copy_(flat[offset : offset + grad.numel()].view_as(grad))
            offset += grad.numel()
        return float(flat[-1])

    # ------------------------------------------------------------------ checkpoints

    def _checkpoint_dir(self, step: int) -> Path:
        return self.run_dir / "checkpoints" / f"step-{step:06d}"

    def save_checkpoint(self, step: int, micro: int, state: dict[str, Any]) -> Path:
        """Write a checkpoint (rank 0; every rank holds the same state) and return its path."""
        target = self._checkpoint_dir(step)
        if not self.world.is_main:
            return target
        tmp = target.with_name(target.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        save_file(
            {f"p{i}": m.detach().contiguous() for i, m in enumerate(self.masters)},
            tmp / "masters.safetensors",
        )
        if state.get("best_weights") is not None:
            save_file(
                {f"p{i}": w.contiguous() for i, w in enumerate(state["best_weights"])},
                tmp / "best.safetensors",
            )
        torch.save(
            {
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "rng": torch.get_rng_state(),
            },
            tmp / "optimizer.pt",
        )
        meta = {k: v for k, v in state.items() if k != "best_weights"}
        (tmp / "state.json").write_text(
            json.dumps(
                {
                    **meta,
                    "step": step,
                    "micro": micro,
                    "world_size": self.world.size,
                    "config": self.config.to_dict(),
                },
                indent=2,
            )
        )
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
        for old in sorted(self.run_dir.glob("checkpoints/step-*[0-9]"))[
            : -self.config.keep_checkpoints
        ]:
            shutil.rmtree(old, ignore_errors=True)
        return target

    def _restore(self, checkpoint: Path) -> dict[str, Any]:
        state = json.loads((checkpoint / "state.json").read_text())
        masters = load_file(checkpoint / "masters.safetensors")
        with torch.no_grad():
            for i, (param, master) in enumerate(zip(self.params, self.masters)):
                master.copy_(masters[f"p{i}"])
                param.copy_(master)
        saved = torch.load(checkpoint / "optimizer.pt", weights_only=True)
        self.optimizer.load_state_dict(saved["optimizer"])
        self.scheduler.load_state_dict(saved["scheduler"])
        torch.set_rng_state(saved["rng"])
        if not self.world.is_main:
            torch.manual_seed(self.config.seed + 7919 * self.world.rank + state["step"])
        saved_world = state.pop("world_size", 1)
        if saved_world != self.world.size:
            self.notes.append(
                f"resumed on {self.world.size} process(es) from a checkpoint of {saved_world}: "
                "the global batches are the same, only each process's share is cut anew"
            )
        best = checkpoint / "best.safetensors"
        if best.is_file():
            weights = load_file(best)
            state["best_weights"] = [weights[f"p{i}"] for i in range(len(self.masters))]
        return state

    # ------------------------------------------------------------------ the run

    def setup(self) -> None:
        self._load()
        self._data()
        self._optimizer()

    def run(self, resume_from: Path | None = None) -> TrainResult:
        if not hasattr(self, "model"):
            self.setup()
        cfg = self.config
        wall_start = time.perf_counter()
        state: dict[str, Any] = {
            "best_val": None,
            "best_weights": None,
            "bad_evals": 0,
            "val_loss": None,
            "tokens": 0,
            "train_seconds": 0.0,
            "loss_sum": 0.0,
            "loss_targets": 0,
        }
        step, micro = 0, 0
        if resume_from:
            state.update(self._restore(Path(resume_from)))
            step, micro = state["step"], state["micro"]
            self.notes.append(f"resumed from {Path(resume_from).name} at step {step}")
        status, window, last_loss = (
            "completed",
            {"loss": 0.0, "targets": 0, "tokens": 0, "seconds": 0.0},
            None,
        )
        while micro < self.total_micro:
            if self.world.any(self.hooks.should_stop()):  # all ranks stop at the same step
                status = "cancelled"
                break
            if step and self.world.any(self._past_deadline()):
                self.notes.append(f"time budget reached: stopped after step {step}")
                break
            self._guard(step)
            started = time.perf_counter()
            loss, targets, tokens = self._step(micro)
            seconds = time.perf_counter() - started
            micro = min(micro + cfg.grad_accum, self.total_micro)
            step += 1
            if self.world.is_main and hasattr(self.hooks, "train_step"):
                self.hooks.train_step(step, self.total_steps)
            state["tokens"] += tokens
            state["loss_sum"] += loss * targets
            state["loss_targets"] += targets
            state["train_seconds"] += seconds
            window = {
                k: window[k] + v
                for k, v in zip(
                    ("loss", "targets", "tokens", "seconds"),
                    (loss * targets, targets, tokens, seconds),
                )
            }
            last_loss = loss
            if step == PROBE_STEPS and not resume_from:
                self._fit_budget(step, state, per_check_s=None)
            evaluated = step % self.eval_every == 0 or micro >= self.total_micro
            check_started = time.perf_counter()
            if evaluated and self._evaluate(state):
                status = "early_stopped"
            if evaluated and not state.get("check_measured") and not resume_from:
                state["check_measured"] = True  # refit once with a measured validation pass
                self._fit_budget(step, state, per_check_s=time.perf_counter() - check_started)
            if (
                step % cfg.log_every == 0
                or step == 1  # the curve starts where training did, as HF's logging_first_step
                or evaluated
                or micro >= self.total_micro
                or status != "completed"
            ):
                self._report(step, micro, window, state, wall_start)
                window = {"loss": 0.0, "targets": 0, "tokens": 0, "seconds": 0.0}
            if step % cfg.save_every == 0 and micro < self.total_micro:
                self.save_checkpoint(step, micro, state)
            if status == "early_stopped":
                break
        checkpoint = self.save_checkpoint(step, micro, state) if status == "cancelled" else None
        adapter_dir = None if status == "cancelled" else self._save_adapter(state)
        return TrainResult(
            status=status,
            adapter_dir=str(adapter_dir) if adapter_dir else None,
            steps=step,
            total_steps=self.total_steps,
            epochs_done=micro / self.batches_per_epoch,
            final_train_loss=last_loss,
            mean_train_loss=state["loss_sum"] / state["loss_targets"]
            if state["loss_targets"]
            else None,
            final_val_loss=state["val_loss"],
            best_val_loss=state["best_val"],
            train_tokens=state["tokens"],
            train_seconds=state["train_seconds"],
            wall_seconds=time.perf_counter() - wall_start,
            tokens_per_s=state["tokens"] / state["train_seconds"]
            if state["train_seconds"]
            else 0.0,
            trainable_params=self.trainable_params,
            total_params=self.total_params,
            peak_memory_mb=peak_memory_mb(self.device),
            device=self.device,
            dtype=str(self.dtype).removeprefix("torch.")
            + ("+nf4" if cfg.method == "qlora" else ""),
            checkpoint=str(checkpoint) if checkpoint else None,
            notes=self.notes,
            world_size=self.world.size,
        )

    def _guard(self, step: int) -> None:
        """Between optimizer steps: the resource guard (``hooks.between_steps``, if any) may
        wait here, or ask for each micro-batch to be computed in more passes."""
        between = getattr(self.hooks, "between_steps", None)
        if between is None:
            return
        most = self.micro_split if self.sharded else self.config.batch_size  # sharded: pause only
        started = time.perf_counter()
        # Rank 0 decides for every rank (one reading, one decision) and the others wait for it
        # here: a pause holds every rank at the same step, and each counts the same time held,
        # so no rank finds its time budget spent while rank 0 was paused.
        split = between(step, self.micro_split, most) if self.world.is_main else self.micro_split
        split = self.world.share_from_main(split)
        if self.budget_s is not None:  # time held by the guard is not the run's to lose
            self.budget_s += time.perf_counter() - started
        if split != self.micro_split:
            self.notes.append(f"from step {step + 1} each micro-batch ran in {split} passes")
        self.micro_split = split

    # ------------------------------------------------------------------ the time budget

    def _past_deadline(self) -> bool:
        return self.budget_s is not None and time.perf_counter() - self.created_at >= self.budget_s

    def _fit_budget(self, step: int, state: dict[str, Any], per_check_s: float | None) -> None:
        """Fit the rest of the run to the time left (``core.training.budget``); every rank agrees."""
        if self.budget_s is None or step >= self.planned_steps:
            return
        per_step = state["train_seconds"] / step
        if per_check_s is None:  # a forward pass over the validation rows: ~1/3 of a step's work
            val_tokens = sum(e.length for e in self.val_examples)
            per_check_s = per_step * val_tokens / max(1.0, 3.0 * state["tokens"] / step)
        costs = StepCosts(per_step, per_check_s)
        seconds_left = self.budget_s - (time.perf_counter() - self.created_at)
        fit = fit_steps(costs, seconds_left, step, self.planned_steps, self.config.eval_every)
        fit = self.world.share_from_main(fit)
        self.notes = [n for n in self.notes if not n.startswith("time budget")]
        self.notes.append(fit.note(self.planned_steps, self.budget_s, costs))
        if (fit.total_steps, fit.eval_every) == (self.total_steps, self.eval_every):
            return
        self.total_steps, self.eval_every = fit.total_steps, fit.eval_every
        self.total_micro = min(
            max(1, round(self.batches_per_epoch * self.config.epochs)),
            fit.total_steps * self.config.grad_accum,
        )
        self._schedule(done_steps=step)

    def _evaluate(self, state: dict[str, Any]) -> bool:
        """Validation loss; keep the best weights. True when early stopping says stop."""
        val = self.validation_loss()
        state["val_loss"] = val
        if val is None:
            return False
        if state["best_val"] is None or val < state["best_val"]:
            state["best_val"], state["bad_evals"] = val, 0
            state["best_weights"] = [m.detach().clone() for m in self.masters]
            return False
        state["bad_evals"] += 1
        patience = self.config.early_stopping_patience
        return bool(patience) and state["bad_evals"] >= patience

    def _report(
        self,
        step: int,
        micro: int,
        window: dict[str, float],
        state: dict[str, Any],
        wall_start: float,
    ) -> None:
        if not self.world.is_main:
            return
        elapsed = time.perf_counter() - wall_start
        per_step = state["train_seconds"] / max(1, step)
        self.hooks.train_progress(
            {
                "step": step,
                "total_steps": self.total_steps,
                "epoch": micro / self.batches_per_epoch,
                "train_loss": window["loss"] / max(1, window["targets"]),
                "val_loss": state["val_loss"],
                "learning_rate": self.scheduler.get_last_lr()[0],
                "tokens_per_s": window["tokens"] / window["seconds"] if window["seconds"] else None,
                "elapsed_s": elapsed,
                "eta_s": per_step * (self.total_steps - step),
            }
        )

    def _save_adapter(self, state: dict[str, Any]) -> Path:
        """Write the best (else last) weights, in fp32, as a PEFT adapter directory."""
        weights = state.get("best_weights") or [m.detach() for m in self.masters]
        with torch.no_grad():
            for param, weight in zip(self.params, weights):
                param.data = weight.detach().float().clone()
        adapter_dir = self.run_dir / "adapter"
        if self.world.is_main:
            self.model.save_pretrained(adapter_dir)
        self.world.barrier()  # the other ranks may read it from here on
        return adapter_dir
