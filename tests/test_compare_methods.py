"""Compare methods: one queued job per method on the same data and budget, the table, the
curves, and QLoRA's measured memory report."""

from __future__ import annotations

import pytest
from click.testing import CliRunner
from conftest import TINY_CHAT_ID, run_page, svg_charts, tables, texts
from jobs_support import run_job_here as _run

from core.jobs import queue
from core.training import memory_report
from core.workflows import compare_methods as cm

pytestmark = pytest.mark.usefixtures("one_thread")

QUICK = {"max_train_examples": 16, "batch_size": 8, "eval_every": 1, "dtype": "fp32"}


def test_lora_and_qlora_side_by_side_with_a_measured_memory_report(db):
    group, job_ids = cm.submit_comparison(
        db, TINY_CHAT_ID, "fin_sentiment", ["lora", "qlora"], "quick", QUICK
    )
    configs = [queue.get(db, job_id)["params"]["config"] for job_id in job_ids]
    assert [c["method"] for c in configs] == ["lora", "qlora"]
    shared = ("max_train_examples", "batch_size", "epochs", "max_seq_length", "seed")
    assert all(configs[0][key] == configs[1][key] for key in shared)  # the same budget
    for job_id in job_ids:
        assert _run(db, job_id) == "succeeded", queue.get(db, job_id)["error"]

    rows = cm.methods_table(db)  # the newest comparison: this one
    assert [r["method"] for r in rows] == ["lora", "qlora"]
    for row in rows:
        assert 0 < row["trainable_params"] < row["total_params"]
        assert 0 < row["trainable_percent"] < 100
        assert row["train_seconds"] > 0 and row["tokens_per_s"] > 0 and row["peak_memory_mb"] > 0
        assert row["adapter_bytes"] > 0 and row["final_train_loss"] is not None
        assert row["final_val_loss"] is not None and 0 <= row["score"] <= 1
        assert row["items_per_s"] > 0 and row["metric"] == "accuracy"
    lora, qlora = rows
    # the same base either way: a 4-bit weight counts as one weight, not as its packed bytes
    assert qlora["total_params"] == lora["total_params"]
    assert qlora["trainable_params"] == lora["trainable_params"]
    assert lora["memory_report"] is None
    report = qlora["memory_report"]
    assert report["measured"].startswith("process RSS")  # on CPU: what was measured, said
    assert report["base_4bit_mb"] is not None and report["base_full_mb"] is not None
    assert report["tensor_4bit_mb"] < report["tensor_full_mb"]  # 4-bit weights take less
    assert report["tensor_reduction_percent"] > 0
    assert report["peak_training_mb"] == qlora["peak_memory_mb"]

    table = cm.text_rows(rows)
    assert len(table) == 2 and len(table[0]) == len(cm.TABLE_HEADERS)
    curves = cm.curves(db, group)
    assert set(curves) == {"lora", "qlora"} and all(curves.values())

    at = run_page("compare_methods")  # the page: the table, the memory report, the curves
    assert not at.exception
    shown = tables(at)[0]
    assert list(shown["method"]) == ["LoRA", "QLoRA"] and list(shown.columns) == cm.TABLE_HEADERS
    assert "QLoRA memory" in texts(at.markdown) and "% less" in texts(at.markdown)
    assert any("training curves" in chart for chart in svg_charts(at))
    assert any("test accuracy (95% CI)" in chart for chart in svg_charts(at))  # one bar a method
    picked = at.selectbox(key="cm_group")  # a comparison named by base, task and methods
    assert picked.value == group
    assert picked.options[0].startswith(f"{TINY_CHAT_ID} on fin_sentiment · LoRA, QLoRA · 20")


def test_a_bad_method_queues_nothing(db):
    with pytest.raises(ValueError, match="Methods must be some of"):
        cm.submit_comparison(db, TINY_CHAT_ID, "fin_sentiment", ["lora", "dora"], "quick")
    assert queue.list_jobs(db) == []
    from core.cli import main

    result = CliRunner().invoke(
        main, ["compare-methods", "--model", "nope", "--task", "fin_sentiment", "--no-wait"]
    )
    assert result.exit_code != 0 and "nope" in result.output
    assert queue.list_jobs(db) == []


def test_adapter_sizes_read_as_people_write_them():
    assert cm.adapter_size(46_080) == "45 KiB"  # a prompt's virtual tokens
    assert cm.adapter_size(19_593_216) == "18.7 MiB"  # LoRA on every linear layer
    assert cm.adapter_size(None) == "—"


def test_prompt_tuning_gets_its_own_learning_rate_unless_one_is_set():
    from core.training.config import preset_config

    tuned = cm.method_overrides("prompt-tuning", {"epochs": 1})
    assert tuned["learning_rate"] == preset_config("prompt-tuning").learning_rate
    assert cm.method_overrides("prompt-tuning", {"learning_rate": 0.01})["learning_rate"] == 0.01
    assert "learning_rate" not in cm.method_overrides("lora", {})


def test_reduction_and_rss():
    assert memory_report.reduction_percent(None, 10.0) is None
    assert memory_report.rss_mb() > 0
