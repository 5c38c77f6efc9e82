"""Instruction and chat records: imported, trained on, registered and scored (loss and metric)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from conftest import TINY_CHAT_ID, evaluate_ids
from jobs_support import run_job_here as _run

from core.cli import main
from core.tasks.spec import get_task, load_split

pytestmark = pytest.mark.usefixtures("isolated_cache", "one_thread")
QUICK = {"max_train_examples": 16, "batch_size": 4, "eval_every": 2, "dtype": "fp32"}


def eps_records(n: int, start: int = 0) -> list[dict]:
    """Records in the design brief's format, with their EPS worked out."""
    out = []
    for i in range(start, start + n):
        income, shares = 100 + 10 * i, 40 + i
        out.append(
            {
                "instruction": "Analyze the following financial statement and extract the EPS value.",
                "input": f"Q{i % 4 + 1} 2024 earnings report: Revenue ${1 + i / 10:.1f}B, "
                f"Net Income ${income}M, Shares Outstanding {shares}M",
                "output": f"EPS = ${income}M / {shares}M = ${income / shares:.2f} per share",
            }
        )
    return out


def write_jsonl(path, records):
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n", encoding="utf-8")
    return path


def test_an_instruction_corpus_trains_registers_and_is_scored_by_loss_and_metric(
    db, finboard_home, tmp_path
):
    from core.jobs import queue
    from core.models.registry import get_model

    train = write_jsonl(tmp_path / "eps_train.jsonl", eps_records(24))
    test = write_jsonl(tmp_path / "eps_test.jsonl", eps_records(6, start=100))
    result = CliRunner().invoke(
        main,
        [
            "tasks",
            "add",
            "eps_corpus",
            "--train",
            str(train),
            "--test",
            str(test),
            "--kind",
            "numeric",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "raw 30 / kept 30" in result.output  # every record passes the rules
    spec = get_task("eps_corpus")
    item = load_split(spec, "test").items[0]
    assert item.answer == "7.86"  # $1100M / 140M, parsed from the output
    assert item.meta["completion"] == eps_records(1, start=100)[0]["output"]  # trained on whole

    job = queue.submit(
        db,
        "train",
        {"model_id": TINY_CHAT_ID, "task": "eps_corpus", "preset": "quick", "overrides": QUICK},
    )
    assert _run(db, job) == "succeeded", queue.get(db, job)["error"]
    model_id = queue.get(db, job)["result"]["model_id"]
    assert get_model(model_id, db).is_finetuned
    scored = evaluate_ids(model_id, "eps_corpus", db=db)
    assert scored["n_items"] == 6
    assert {"accuracy", "unparseable_rate", "completion_loss"} <= set(scored["metrics"])
    assert scored["metrics"]["completion_loss"]["value"] > 0


def test_chat_records_render_every_turn_through_the_chat_template(finboard_home, tmp_path):
    from core.models.loading import load_tokenizer
    from core.models.registry import get_model
    from core.tasks.prompts import render

    records = [
        {
            "messages": [
                {"role": "system", "content": "You are a careful financial analyst."},
                {"role": "user", "content": f"Revenue rose from ${i}M to ${i + 5}M. Growth?"},
                {"role": "assistant", "content": f"Growth = {500 / i:.1f}%."},
            ]
        }
        for i in range(10, 22)
    ]
    path = write_jsonl(tmp_path / "chat.jsonl", records)
    result = CliRunner().invoke(main, ["tasks", "add", "chat_corpus", "--train", str(path)])
    assert result.exit_code == 0, result.output
    spec = get_task("chat_corpus")
    assert spec.kind == "text" and spec.source["records"] == "chat"
    item = (load_split(spec, "train").items + load_split(spec, "validation").items)[0]
    from pathlib import Path

    tokenizer = load_tokenizer(Path(get_model(TINY_CHAT_ID).source.path))
    rendered = render(spec, item, tokenizer, instruct=True)
    assert "You are a careful financial analyst." in rendered.prompt
    assert rendered.completion == item.answer


def test_chat_record_errors_name_the_turn(finboard_home, tmp_path):
    path = write_jsonl(
        tmp_path / "chat_bad.jsonl",
        [{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": ""}]}],
    )
    result = CliRunner().invoke(main, ["tasks", "add", "chat_bad", "--train", str(path)])
    assert result.exit_code != 0
    assert "chat_bad.jsonl, row 1, field 'messages[2].content': empty content" in result.output


def test_one_instruction_file_is_split_by_row_hash(finboard_home, tmp_path):
    path = write_jsonl(tmp_path / "eps_all.jsonl", eps_records(40))
    result = CliRunner().invoke(main, ["tasks", "add", "eps_one", "--file", str(path)])
    assert result.exit_code == 0, result.output
    spec = get_task("eps_one")
    sizes = {split: len(load_split(spec, split)) for split in ("train", "validation", "test")}
    assert sum(sizes.values()) == 40 and all(sizes.values()), sizes
