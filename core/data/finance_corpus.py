"""The Synthetic Finance Corpus: every finance task's training split mixed into one training set.

``configs/corpora/finance.yaml`` names the tasks and their weights. The corpus is a task
(``get_task("finance_corpus")``) whose items are already-rendered prompt/completion pairs, so
it trains through the ordinary training data path (``core.training.data.build_examples``):

- the prompt of each example is its task's own zero-shot evaluation prompt (the task's
  instruction and filled template as one user message), so the model learns every task in
  the very format it is scored on;
- the completion is the gold answer; for the numeric tasks with ``numeric_targets: worked``
  it shows the computation the way an analyst writes it, and the evaluator's number parser
  reads the figure after the last ``=``:

    >>> worked_answer("eps_extraction", "7.53", {"net_income": 7.49e9, "shares": 9.95e8})
    'EPS = $7,490M / 995M = $7.53'
    >>> worked_answer("revenue_analysis", "-9.0", {"current": 1.31e8, "prior": 1.44e8})
    'Growth = ($131M - $144M) / $144M * 100 = -9.0%'
    >>> from core.evaluation.parsing import parse_number
    >>> parse_number("EPS = -$157M / 239M = -$0.66")
    -0.66

Weights: the share of a task's training split used (1: all of it once, 2: each item twice,
0.5: a seeded half). The validation and test splits are each task's own, unweighted (the
test split is never used for training; a corpus fine-tune is scored on each task's test
split, see ``core.workflows.finetune_compare``).
"""

from __future__ import annotations

import json
import random
from functools import lru_cache
from pathlib import Path
from typing import Any

from core import paths
from core.data.items import SPLIT_NAMES, Item, Split

CONFIG_PATH = paths.REPO_ROOT / "configs" / "corpora" / "finance.yaml"
NAME = "finance_corpus"
TARGETS = ("worked", "answer")
# corpus name -> numeric targets (None: the config file's choice)
VARIANTS: dict[str, str | None] = {
    NAME: None,
    f"{NAME}_worked": "worked",
    f"{NAME}_answers": "answer",
}


class CorpusError(ValueError):
    """A corpus config that cannot be used (names the file and the field)."""


def is_corpus(name: str) -> bool:
    return name in VARIANTS


def _millions(value: float) -> str:
    text = f"{abs(value) / 1e6:,.3f}".rstrip("0").rstrip(".")
    return f"{'-' if value < 0 else ''}{text}M"


def _dollars(amount: str) -> str:
    return f"-${amount[1:]}" if amount.startswith("-") else f"${amount}"


def worked_answer(task: str, answer: str, meta: dict[str, Any]) -> str:
    """The answer with its computation for the built-in numeric tasks (else the answer)."""
    if task == "eps_extraction" and {"net_income", "shares"} <= set(meta):
        income, shares = float(meta["net_income"]), float(meta["shares"])
        return f"EPS = {_dollars(_millions(income))} / {_millions(shares)} = {_dollars(answer)}"
    if task == "revenue_analysis" and {"current", "prior"} <= set(meta):
        current, prior = _dollars(_millions(meta["current"])), _dollars(_millions(meta["prior"]))
        return f"Growth = ({current} - {prior}) / {prior} * 100 = {answer}%"
    return answer


def read_config(path: Path = CONFIG_PATH) -> dict[str, Any]:
    """The corpus config, checked: weights (task -> number >= 0), numeric_targets, seed."""
    raw = paths.read_yaml(path, CorpusError, "corpus config") or {}
    weights = raw.get("weights")
    if not isinstance(weights, dict) or not weights:
        raise CorpusError(f"{path}: field 'weights' must map task names to weights")
    for task, weight in weights.items():
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or weight < 0:
            raise CorpusError(f"{path}: weights.{task} must be a number >= 0, not {weight!r}")
    targets = raw.get("numeric_targets", "worked")
    if targets not in TARGETS:
        raise CorpusError(f"{path}: field 'numeric_targets' must be one of {TARGETS}")
    return {
        "weights": {str(k): float(v) for k, v in weights.items()},
        "targets": targets,
        "seed": int(raw.get("seed", 0)),
        "description": str(raw.get("description", "")).strip(),
    }


def corpus_spec(name: str = NAME, path: Path = CONFIG_PATH) -> Any:
    """The corpus as a ``TaskSpec`` (kind ``text``; items are rendered prompt/answer pairs)."""
    from core.tasks.spec import TaskSpec

    if not is_corpus(name):
        raise CorpusError(f"Unknown corpus '{name}': choose one of {', '.join(VARIANTS)}")
    config = read_config(path)
    targets = VARIANTS[name] or config["targets"]
    return TaskSpec(
        name=name,
        version=1,
        kind="text",
        source={
            "type": "corpus",
            "weights": config["weights"],
            "targets": targets,
            "seed": config["seed"],
        },
        instruction="",
        template="{prompt}",
        path=path,
        description=f"{config['description']} Numeric targets: {targets}.",
        metrics=["accuracy"],
        primary_metric="accuracy",
        max_new_tokens=48,
    )


def corpus_tasks(spec: Any) -> list[str]:
    """The tasks a corpus mixes (weight > 0), in the config's order."""
    return [task for task, weight in spec.source["weights"].items() if weight > 0]


def _user_text(spec: Any, item: Item) -> str:
    """What ``render`` puts in the user turn for a zero-shot item of ``spec``."""
    from core.tasks.prompts import user_message

    text = user_message(spec, item)
    return f"{spec.instruction}\n\n{text}" if spec.instruction else text


def _weighted(items: list[Item], weight: float, rng: random.Random) -> list[Item]:
    whole, part = int(weight), weight - int(weight)
    return items * whole + rng.sample(items, round(part * len(items)))


@lru_cache(maxsize=8)
def _splits(source_json: str) -> dict[str, list[Item]]:
    from core.tasks.spec import get_task, load_split

    source = json.loads(source_json)
    rng = random.Random(source["seed"])
    splits: dict[str, list[Item]] = {name: [] for name in SPLIT_NAMES}
    for task, weight in source["weights"].items():
        if weight <= 0:
            continue
        spec = get_task(task)
        for split in SPLIT_NAMES:
            items = load_split(spec, split).items
            if split == "train":
                items = _weighted(items, weight, rng)
            for number, item in enumerate(items):
                answer = item.answer
                if source["targets"] == "worked" and spec.kind == "numeric":
                    answer = worked_answer(task, item.answer, item.meta)
                splits[split].append(
                    Item(
                        id=f"{task}:{item.id}:{number}",
                        fields={"prompt": _user_text(spec, item)},
                        answer=answer,
                        meta={"task": task, "gold": item.answer},
                    )
                )
    rng.shuffle(splits["train"])  # the head (max_train_examples) is a mix of every task
    return splits


def load_corpus_split(spec: Any, split: str) -> Split:
    """One split of the corpus (deterministic for the config)."""
    items = _splits(json.dumps(spec.source, sort_keys=True))[split]
    return Split(task=spec.name, name=split, items=list(items))
