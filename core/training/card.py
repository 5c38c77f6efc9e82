"""A fine-tuned model's card: the facts of its training run, as a dict and as a README.

>>> card = {"base_model": "b", "base_model_name": "B", "method": "lora", "task": "t",
...         "task_version": 1, "train_examples": 10, "train_fingerprint": "f" * 64,
...         "trainable_params": 35, "total_params": 1000, "steps": 2, "status": "completed",
...         "train_seconds": 1.5, "wall_seconds": 2.0, "device": "cpu", "dtype": "float32",
...         "tokens_per_s": 100.0, "peak_memory_mb": 512.0, "final_train_loss": 0.5,
...         "final_val_loss": None, "best_val_loss": None, "energy_wh": None,
...         "hyperparameters": {"lora_r": 8}}
>>> print(card_markdown("m-1", card).splitlines()[7])
| Trainable / total parameters | 35 / 1,000 (3.50%) |
"""

from __future__ import annotations

import json
from typing import Any

from core import format as fmt
from core.models.registry import ModelEntry
from core.tasks.spec import TaskSpec, load_split
from core.training.config import TrainConfig, method_label
from core.training.trainer import TrainResult


def model_card(
    entry: ModelEntry,
    spec: TaskSpec,
    config: TrainConfig,
    result: TrainResult,
    energy_wh: float | None,
) -> dict[str, Any]:
    """The card of a model trained from ``entry`` on ``spec`` with ``config``."""
    train = load_split(spec, "train")
    return {
        "base_model": entry.id,
        "base_model_name": entry.display_name,
        "method": config.method,
        "task": spec.name,
        "task_version": spec.version,
        "train_fingerprint": train.fingerprint,
        "train_examples": min(config.max_train_examples or len(train), len(train)),
        "hyperparameters": config.to_dict(),
        "trainable_params": result.trainable_params,
        "total_params": result.total_params,
        "train_seconds": result.train_seconds,
        "wall_seconds": result.wall_seconds,
        "peak_memory_mb": result.peak_memory_mb,
        "tokens_per_s": result.tokens_per_s,
        "train_tokens": result.train_tokens,
        "steps": result.steps,
        "final_train_loss": result.final_train_loss,
        "final_val_loss": result.final_val_loss,
        "best_val_loss": result.best_val_loss,
        "status": result.status,
        "device": result.device,
        "dtype": result.dtype,
        "energy_wh": energy_wh,
        "notes": result.notes,
    }


def card_markdown(model_id: str, card: dict[str, Any]) -> str:
    """The README written next to the adapter."""
    energy = card.get("energy_wh")
    loss = " / ".join(
        fmt.fmt_score(card.get(key), 4) for key in ("final_train_loss", "final_val_loss")
    )
    lines = [
        f"# {model_id}",
        "",
        f"A {method_label(card['method'])} adapter for **{card['base_model_name']}** "
        f"(`{card['base_model']}`), trained on task `{card['task']}` v{card['task_version']} by "
        "the LLM Finance Leaderboard.",
        "",
        "| | |",
        "|---|---|",
        f"| Training data | {card['train_examples']} examples, split fingerprint "
        f"`{card['train_fingerprint'][:16]}` |",
        f"| Trainable / total parameters | {card['trainable_params']:,} / "
        f"{card['total_params']:,} ({fmt.fmt_share(card['trainable_params'], card['total_params'])}) |",
        f"| Steps | {card['steps']} ({card['status']}) |",
        f"| Training time | {fmt.fmt_duration(card['train_seconds'])} "
        f"({fmt.fmt_duration(card['wall_seconds'])} wall) on {card['device']} ({card['dtype']}) |",
        f"| Throughput | {card['tokens_per_s']:,.0f} tokens/s |",
        f"| Peak memory | {fmt.fmt_mb(card['peak_memory_mb'])} |",
        f"| Final train / validation loss | {loss} "
        f"(best {fmt.fmt_score(card.get('best_val_loss'), 4)}) |",
        f"| Energy | {fmt.fmt_energy(energy / 1000 if energy is not None else None)} |",
        *resource_rows(card.get("resources")),
        "",
        "## Hyperparameters",
        "",
        "```json",
        json.dumps(card["hyperparameters"], indent=2),
        "```",
    ]
    return "\n".join(lines) + "\n"


def resource_rows(figures: dict[str, Any] | None) -> list[str]:
    """The card's row of utilisation figures (none when the run has none).

    >>> resource_rows({"gpu_util_mean": None, "paused_s": 12.0, "cpu_percent_mean": 97.5})
    ['| Resources | Machine CPU use 98% · Paused by the guard 12 s |']
    """
    from core.analysis.utilisation import figures_line

    line = figures_line(figures)
    return [f"| Resources | {line} |"] if line else []
