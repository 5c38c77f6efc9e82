"""Leaderboard page render time with 10,000 score rows, against the same page with 30 rows.

Builds two temporary stores (10,000 score rows: 333 models, each scored 10 times on 3
tasks), renders ``streamlit_app/views/leaderboard.py`` through Streamlit's AppTest (the
whole script: queries, table, chart), first run and a warm rerun, and prints the times. The
last line is a JSON object with ``seconds_10k`` (first render, cold caches), ``ratio`` =
10k time ÷ 30-row time (the peer measured in the same run). Target: seconds_10k < 1.5.

    python bench/leaderboard_render.py [--rows 10000]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
from pathlib import Path

TASKS = ("fin_sentiment", "eps_extraction", "revenue_analysis")


def fill(path: Path, rows: int) -> None:
    """``rows`` score rows for rows/30 models (each scored 10 times on 3 tasks)."""
    from core import store

    db = store.connect(path)
    rng = random.Random(0)
    models = max(1, rows // (10 * len(TASKS)))
    batch = []
    for model in range(models):
        for run in range(10):
            for task in TASKS:
                value = rng.random()
                batch.append(
                    {
                        "model_id": f"bench-model-{model:04d}",
                        "task": task,
                        "task_version": 1,
                        "split": "test",
                        "split_fingerprint": "f" * 64,
                        "n_items": 200,
                        "primary_metric": "accuracy",
                        "primary_value": value,
                        "ci_low": max(0.0, value - 0.07),
                        "ci_high": min(1.0, value + 0.07),
                        "metrics_json": json.dumps(
                            {"accuracy": {"value": value, "ci": [value - 0.07, value + 0.07]}}
                        ),
                        "weights_hash": "0" * 64,
                        "prompt_hash": "1" * 64,
                        "num_shots": 0,
                        "seed": run,
                        "dtype": "bfloat16",
                        "device": "cpu",
                        "batch_size": 16,
                        "versions_json": "{}",
                        "command": f"finboard eval --model bench-model-{model:04d} --task {task}",
                        "latency_p50_ms": 20.0,
                        "latency_p95_ms": 40.0,
                        "items_per_s": 40.0,
                        "seconds": 5.0,
                        "created_at": "2026-01-01T00:00:00+00:00",
                    }
                )
    db["scores"].insert_all(batch[:rows], batch_size=1000)
    db.close()


def render_seconds(path: Path) -> tuple[float, float]:
    """(first render, warm rerun) of the leaderboard page on the store at ``path``."""
    from streamlit.testing.v1 import AppTest

    os.environ["FINBOARD_DB"] = str(path)
    page = Path(__file__).resolve().parents[1] / "streamlit_app" / "views" / "leaderboard.py"
    app = AppTest.from_file(str(page), default_timeout=120)
    start = time.perf_counter()
    app.run()
    first = time.perf_counter() - start
    if app.exception:
        raise SystemExit(f"the page failed: {app.exception}")
    start = time.perf_counter()
    app.run()
    return first, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lb_render_") as tmp:
        os.environ["FINBOARD_HOME"] = tmp
        big, small = Path(tmp) / "big.db", Path(tmp) / "small.db"
        fill(big, args.rows)
        fill(small, 30)
        render_seconds(small)  # warm the imports (streamlit, pandas), not timed
        small_first, small_warm = render_seconds(small)
        big_first, big_warm = render_seconds(big)
    print(f"{args.rows} score rows: first render {big_first:.2f} s, rerun {big_warm:.2f} s")
    print(f"30 score rows   : first render {small_first:.2f} s, rerun {small_warm:.2f} s")
    print(
        json.dumps(
            {
                "rows": args.rows,
                "seconds_10k": round(big_first, 3),
                "seconds_10k_rerun": round(big_warm, 3),
                "seconds_30": round(small_first, 3),
                "ratio": round(big_first / small_first, 2),
                "target_s": 1.5,
                "meets_target": big_first < 1.5,
            }
        )
    )


if __name__ == "__main__":
    main()
