"""The quick path on real text: import a 1,500-row news-sentiment file, fine-tune and compare.

As a new user would, on a fresh home (a temporary folder; the de-quantized model cache is the
usual one, prepared by ``scripts/setup.sh``):

1. ``bench/news_sentences.py`` writes ``--rows`` finance news sentences of realistic length
   (about 25 words, 10 to 60; written for this bench, not by the synthetic generator) to a CSV;
2. ``finboard tasks add`` imports it (validated row by row, split by a hash of the row id);
3. ``finboard finetune-compare --preset quick --json`` scores the base model, fine-tunes it
   and scores the fine-tuned one on the same test items, through the job queue and worker.

Wall time covers steps 2 and 3. Memory is sampled every 0.2 s over every process of the run
(CLI, worker, job): ``peak_rss_mb`` is the largest single process (the job), ``peak_tree_mb``
the largest sum. The phases (loading, base evaluation, training, fine-tuned evaluation) come
from the job's own result.

    python bench/quick_real.py [--rows 1500] [--model smollm2-135m-instruct] [--set KEY=VALUE]

The last line is a JSON object with ``seconds``, ``peak_rss_mb`` and ``gain`` (fine-tuned minus
base primary metric, in points). Targets: seconds <= 480 and peak_rss_mb <= 2500 on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
from machine import cpu_flags, memory_settings
from news_sentences import news_rows

from core.jobs.worker import job_env

FINBOARD = [sys.executable, "-c", "from core.cli import main; main()"]
INSTRUCTION = "Classify the sentiment of this financial news sentence."


class MemorySampler(threading.Thread):
    """Samples the RSS of a process and all its descendants until stopped."""

    def __init__(self, every_s: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.every_s = every_s
        self.root: psutil.Process | None = None
        self.peak_process = 0
        self.peak_tree = 0
        self.done = threading.Event()

    def _sample(self) -> None:
        if self.root is None:
            return
        try:
            processes = [self.root, *self.root.children(recursive=True)]
        except psutil.Error:
            return
        sizes = []
        for process in processes:
            try:
                sizes.append(process.memory_info().rss)
            except psutil.Error:
                continue
        if sizes:
            self.peak_process = max(self.peak_process, max(sizes))
            self.peak_tree = max(self.peak_tree, sum(sizes))

    def run(self) -> None:
        while not self.done.wait(self.every_s):
            self._sample()


def write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "sentence", "sentiment"])
        writer.writeheader()
        writer.writerows(rows)


def finboard(args: list[str], env: dict[str, str], sampler: MemorySampler) -> str:
    """Run one finboard command with its processes sampled; its stdout (fails loudly)."""
    process = subprocess.Popen(
        FINBOARD + args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    sampler.root = psutil.Process(process.pid)
    out, err = process.communicate()
    sampler.root = None
    if process.returncode != 0:
        raise SystemExit(f"finboard {' '.join(args)} failed ({process.returncode}):\n{err[-3000:]}")
    return out


STOP_WORKER = (
    "import os, signal\n"
    "from core.jobs import worker\n"
    "pid = worker.running_worker_pid()\n"
    "if pid: os.kill(pid, signal.SIGTERM)\n"
)


def stop_worker(env: dict[str, str]) -> None:
    """End the run's worker: it would poll the deleted temporary store for 5 more minutes."""
    subprocess.run([sys.executable, "-c", STOP_WORKER], env=env, check=False, timeout=60)


def phases(result: dict) -> dict:
    """Seconds per phase and the training figures, from the job's result object."""
    found = dict(result.get("phase_seconds") or {})
    for key in ("train_seconds", "tokens_per_s", "peak_memory_mb", "seconds"):
        if isinstance(result.get(key), (int, float)):
            found[key] = round(result[key], 1)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1500)
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()

    job_memory = memory_settings(job_env(None))  # what the job's process runs with
    print(
        f"cpu_flags={cpu_flags()} cores={os.cpu_count()} model={args.model} "
        f"job memory settings: {job_memory}",
        flush=True,
    )
    with tempfile.TemporaryDirectory(prefix="quick_real_") as tmp:
        data = Path(tmp) / "finance_news.csv"
        rows = news_rows(args.rows)
        write_csv(data, rows)
        words = [len(row["sentence"].split()) for row in rows]
        print(
            f"{len(rows)} rows, {sum(words) / len(words):.1f} words a row "
            f"({min(words)}-{max(words)})",
            flush=True,
        )
        env = {
            **os.environ,
            "FINBOARD_HOME": str(Path(tmp) / "home"),
            "HF_HUB_OFFLINE": "1",
            "HF_DATASETS_OFFLINE": "1",
        }
        sampler = MemorySampler()
        sampler.start()
        start = time.perf_counter()
        finboard(
            ["tasks", "add", "finance_news", "--file", str(data), "--text-column", "sentence"]
            + ["--label-column", "sentiment", "--id-column", "id", "--instruction", INSTRUCTION],
            env,
            sampler,
        )
        imported = time.perf_counter() - start
        print(f"imported in {imported:.1f} s", flush=True)
        settings = [part for pair in args.set for part in ("--set", pair)]
        out = finboard(
            ["finetune-compare", "--model", args.model, "--task", "finance_news"]
            + ["--preset", args.preset, "--json", *settings],
            env,
            sampler,
        )
        seconds = time.perf_counter() - start
        sampler.done.set()
        stop_worker(env)
    result = json.loads(out.strip().splitlines()[-1])
    base, tuned = result.get("base_score"), result.get("finetuned_score")
    figures = {
        "rows": len(rows),
        "mean_words": round(sum(words) / len(words), 1),
        "cpu_flags": cpu_flags(),
        "job_memory_settings": job_memory,
        "import_seconds": round(imported, 1),
        "base_score": base,
        "finetuned_score": tuned,
        "gain": round(100 * (tuned - base), 2) if base is not None and tuned is not None else None,
        "phases": phases(result),
        "peak_tree_mb": round(sampler.peak_tree / 2**20),
        "peak_rss_mb": round(sampler.peak_process / 2**20),
        "seconds": round(seconds, 1),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
