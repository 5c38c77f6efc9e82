"""lm-evaluation-harness as a benchmark peer: a task YAML written from our task spec.

The task is a plain lm-eval ``multiple_choice`` task over a JSONL file of our rendered prompts
(chat template already applied, exactly the text our scorer sees) and one choice string per
label, so both sides score the same contexts and continuations and lm-eval's ``acc`` is
comparable with our uncalibrated accuracy on single surface forms. lm-eval runs its own
``HFLM`` (hf backend) over the very model object we loaded, so the dtype is the same.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import yaml

TASK_NAME = "finboard_bench"
# lm-eval draws a progress bar per call; the benchmark prints its own rounds.
os.environ.setdefault("TQDM_DISABLE", "1")


def write_task(folder: Path, prompts: list[str], choices: list[str], golds: list[int]) -> Path:
    """Write the items (JSONL) and the lm-eval task YAML that reads them; return the folder."""
    data = folder / "items.jsonl"
    with data.open("w", encoding="utf-8") as handle:
        for prompt, gold in zip(prompts, golds):
            handle.write(json.dumps({"prompt": prompt, "gold": gold}) + "\n")
    task = {
        "task": TASK_NAME,
        "dataset_path": "json",
        "dataset_kwargs": {
            "data_files": {"test": str(data)},
            "cache_dir": str(folder / "datasets_cache"),  # not the user's HF cache
        },
        "test_split": "test",
        "output_type": "multiple_choice",
        "doc_to_text": "{{prompt}}",
        "doc_to_choice": choices,
        "doc_to_target": "gold",
        # Our continuations follow the prompt directly (the chat template ends the prompt).
        "target_delimiter": "",
        "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
    }
    (folder / f"{TASK_NAME}.yaml").write_text(yaml.safe_dump(task, sort_keys=False))
    return folder


class LmEvalSide:
    """lm-eval's HFLM over a loaded model, timed over slices of the items."""

    def __init__(self, model: Any, tokenizer: Any, task_folder: Path, batch_size: int) -> None:
        from lm_eval.models.huggingface import HFLM
        from lm_eval.tasks import TaskManager, get_task_dict

        self.lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=batch_size, device="cpu")
        manager = TaskManager(include_path=str(task_folder))
        # Built once, outside the timings: loading a task is not per-item cost.
        self.task_dict = get_task_dict([TASK_NAME], manager)
        self.correct: dict[int, bool] = {}
        self.seconds = 0.0

    def run(self, indices: list[int]) -> None:
        from lm_eval.evaluator import evaluate

        start = time.perf_counter()
        results = evaluate(
            self.lm,
            self.task_dict,
            samples={TASK_NAME: indices},
            bootstrap_iters=0,
            log_samples=True,
            verbosity="WARNING",
        )
        self.seconds += time.perf_counter() - start
        for sample in results["samples"][TASK_NAME]:
            self.correct[sample["doc_id"]] = bool(sample["acc"])

    def summary(self, dtype: str) -> dict:
        return {
            "dtype": dtype,
            "items_per_s": round(len(self.correct) / self.seconds, 2),
            "accuracy": round(sum(self.correct.values()) / len(self.correct), 4),
            "batch_size": self.lm.batch_size,
        }
