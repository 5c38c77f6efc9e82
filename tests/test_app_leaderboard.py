"""AppTest smoke tests of the Leaderboard page, on a store filled by real runs of the tiny models."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import (
    TINY_CHAT_ID,
    TINY_MODEL_ID,
    code_blocks,
    evaluated_store,
    store_copy_fixture,
    svg_charts,
    tables,
    texts,
)
from conftest import run_page as run_app_page
from streamlit.testing.v1 import AppTest

APP_DIR = Path(__file__).resolve().parents[1] / "streamlit_app"
TASKS = ("fin_sentiment", "eps_extraction")
LIMIT = None  # full test splits: the leaderboard ranks only those
ITEMS = 200  # fin_sentiment's test split


@pytest.fixture(scope="session")
def filled_store(
    tmp_path_factory: pytest.TempPathFactory, tiny_model_dirs: dict[str, Path]
) -> Path:
    """A store with both tiny models scored on two tasks (real runs), built once per session."""
    return evaluated_store(tmp_path_factory, tiny_model_dirs, TASKS, LIMIT)


scored_db = store_copy_fixture("filled_store")  # this test's own copy


def run_page(**session: object) -> AppTest:
    return run_app_page("leaderboard", **session)


def test_leaderboard_shows_ranked_models_with_cis(scored_db):
    at = run_page()
    assert not at.exception
    assert at.title[0].value == "Leaderboard"
    assert "95%" in texts(at.caption)
    table = tables(at)[0]
    assert not at.dataframe, "a board of a few models is a static table, not a grid"
    assert set(table["Rank"]) <= {"1", "2"}  # both scored on every task: no bracketed rank
    assert {"Tiny Llama (tiny-llama)", "Tiny Llama (tiny-llama-chat)"} <= set(table["Model"])
    for task in TASKS:
        cells = table[task]
        assert cells.str.match(r"^\d\.\d{3} ± \d\.\d\d").all(), cells.tolist()
    assert table["95% CI"].str.match(r"^\d\.\d\d–\d\.\d\d$").all()
    assert table["Overall"].str.match(r"^\d\.\d{3}$").all()
    assert svg_charts(at), "the overall chart is drawn"


def test_detail_view_shows_the_reproduce_command(scored_db):
    at = run_page(lb_detail_model=TINY_MODEL_ID)
    assert not at.exception
    commands = [c for c in code_blocks(at) if c.startswith("finboard")]
    assert any(c.startswith(f"finboard eval --model {TINY_MODEL_ID} --task ") for c in commands), (
        commands
    )
    assert {t for t in TASKS if any(f"--task {t} " in c for c in commands)} == set(TASKS)
    score_id, fingerprint = scored_db.execute(
        "select id, split_fingerprint from scores where model_id = ? and split = 'test' "
        "order by id desc limit 1",
        [TINY_MODEL_ID],
    ).fetchone()
    cards = [h.proto.body for h in at.get("html") if f"score #{score_id}" in h.proto.body]
    assert len(cards) == 1, "one card per score on the board"
    folded = re.search(
        r"<details><summary[^>]*>Full hashes</summary>(.*?)</details>", cards[0], re.S
    )
    assert folded and fingerprint in folded.group(1), "the full hashes, folded in the card"


def test_wrong_only_toggle_keeps_the_incorrect_items(scored_db):
    at = run_page(lb_detail_model=TINY_MODEL_ID, lb_detail_tab="Per-item results")
    assert not at.exception
    at.selectbox(key="lb_items_task").set_value("fin_sentiment").run()
    every = at.dataframe[-1].value
    assert len(every) == ITEMS
    at.toggle(key="lb_wrong_only").set_value(True).run()
    assert not at.exception
    wrong = at.dataframe[-1].value
    expected = scored_db.execute(
        "select count(*) from predictions p join scores s on s.id = p.score_id "
        "where s.model_id = ? and s.task = 'fin_sentiment' and p.correct = 0",
        [TINY_MODEL_ID],
    ).fetchone()[0]
    assert len(wrong) == expected < ITEMS
    assert not wrong["correct"].any()
    assert f"{expected} of {ITEMS} items answered wrong" in texts(at.caption)


def test_task_filter_recomputes_the_overall_score(scored_db):
    at = run_page(lb_tasks=["fin_sentiment"])
    assert not at.exception
    table = tables(at)[0]
    assert [c for c in table.columns if c in TASKS] == ["fin_sentiment"]
    assert table["Overall"].tolist() == [c[:5] for c in table["fin_sentiment"]]


def add_finetune(db, model_id: str, display_name: str, **fields) -> None:
    """A LoRA fine-tune of the tiny chat model on fin_sentiment, scored there with its base's
    score row (the board then holds it beside the base models)."""
    from core.models import registry
    from core.store import scores as score_rows

    base = registry.get_model(TINY_CHAT_ID, db)
    tuned = registry.ModelEntry(
        id=model_id,
        display_name=display_name,
        source=base.source,
        params=base.params,
        kind="finetuned",
        base_model_id=TINY_CHAT_ID,
        method="lora",
        trained_on_task="fin_sentiment",
        adapter_path=f"/nowhere/{model_id}",
        **fields,
    )
    registry.register_finetuned(db, tuned)
    query = "select * from scores where model_id = ? and task = 'fin_sentiment'"
    row = dict(next(db.query(query, [TINY_CHAT_ID])))
    row.pop("id")
    score_rows.insert(db, {**row, "model_id": tuned.id}, [])


def test_finetuned_model_is_marked_and_has_a_training_card(scored_db):
    card = {
        "rank": 8,
        "epochs": 2,
        "loss_curve": [{"step": 0, "loss": 2.0}, {"step": 5, "loss": 1.0}],
    }
    add_finetune(scored_db, "tiny-chat-lora", "Tiny chat LoRA", trainable_params=400, card=card)
    tuned_id = "tiny-chat-lora"

    at = run_page(lb_detail_model=tuned_id, lb_detail_tab="Training card")
    assert not at.exception
    table = tables(at)[0]
    tuned_row = table[table["Model"] == "Tiny chat LoRA"].iloc[0]
    assert tuned_row["fin_sentiment"].endswith("⚠")
    assert not tuned_row["eps_extraction"].endswith("⚠")
    assert tuned_row["Kind"] == "LoRA"
    assert tuned_row["Rank"] == "(1)" and tuned_row["Tasks"] == "1/2 partial"
    assert "fine-tuned on that task's training split" in texts(at.caption)
    page_text = texts(at.markdown)
    assert "Method: **LoRA**" in page_text and "Trained on task: **fin_sentiment**" in page_text
    assert "Base model: **Tiny Llama (tiny-llama-chat) · tiny-llama-chat**" in page_text

    at = run_page(lb_kinds=["finetuned"], lb_methods=["lora"])
    assert tables(at)[0]["Model"].tolist() == ["Tiny chat LoRA"]
    at = run_page(lb_kinds=["base"], lb_methods=["lora"])
    assert not at.exception
    assert "No model matches" in texts(at.info)


def test_a_long_board_is_shown_in_the_sortable_grid(scored_db):
    for number in range(40):  # with the two base models: more than a static table shows
        add_finetune(scored_db, f"tuned-{number}", f"Tuned {number}")
    at = run_page()
    assert not at.exception
    grid = at.dataframe[0].value
    assert len(grid) == 42 and {"Tuned 0", "Tuned 39"} <= set(grid["model"])
    assert "42 models: click a column's header to sort by it." in texts(at.caption)


def test_empty_store_shows_guidance(db):
    at = run_page()
    assert not at.exception
    assert "No scores yet" in texts(at.info)
    assert "finboard eval --model smollm2-135m-instruct --task fin_sentiment" in "\n".join(
        code_blocks(at)
    )
    assert not tables(at) and not svg_charts(at)


def test_app_entry_point_runs_the_leaderboard_page(scored_db):
    at = AppTest.from_file(str(APP_DIR / "app.py"), default_timeout=30).run()
    assert not at.exception
    assert at.title[0].value == "Leaderboard"
