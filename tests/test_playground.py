"""The playground's model server: answers as the evaluator scores, in its own process."""

from __future__ import annotations

import math

import pytest
from conftest import TINY_CHAT_ID, TINY_MODEL_ID, texts
from streamlit.testing.v1 import AppTest


@pytest.fixture
def server(db):
    from core.workflows.playground import PlaygroundClient

    client = PlaygroundClient()
    yield client
    client.stop()


def test_answers_come_from_the_server_process_with_probabilities(server):
    import os

    reply = server.ask(TINY_CHAT_ID, "fin_sentiment", "Shares fell after the profit warning.")
    assert reply["ok"], reply
    probabilities = reply["probabilities"]
    assert set(probabilities) == {"positive", "neutral", "negative"}
    assert math.isclose(sum(probabilities.values()), 1.0, abs_tol=1e-6)
    assert reply["answer"] == max(probabilities, key=probabilities.get)
    assert reply["calibrated"] is True  # fin_sentiment calibrates, as in evaluation
    assert reply["load_ms"] > 0 and reply["latency_ms"] > 0
    again = server.ask(TINY_CHAT_ID, "fin_sentiment", "Shares fell after the profit warning.")
    assert again["load_ms"] == 0  # the model stayed loaded in the server
    assert again["probabilities"] == pytest.approx(probabilities)
    assert server.path.exists() and os.stat(server.path).st_mode & 0o077 == 0  # owner only


def test_generation_tasks_answer_with_text_and_a_parsed_number(server):
    reply = server.ask(
        TINY_MODEL_ID, "eps_extraction", "Net income was $10 million on 5 million shares."
    )
    assert reply["ok"], reply
    assert reply["probabilities"] is None and isinstance(reply["output"], str)


def test_bad_requests_are_answered_with_a_reason(server):
    assert "Type a text" in server.ask(TINY_CHAT_ID, "fin_sentiment", "  ")["error"]
    assert "Unknown model" in server.ask("no-such-model", "fin_sentiment", "x")["error"]


def test_the_page_shows_both_answers_side_by_side(db, server):
    from pathlib import Path

    page = Path(__file__).resolve().parents[1] / "streamlit_app" / "views" / "playground.py"
    at = AppTest.from_file(str(page), default_timeout=120).run()
    assert not at.exception
    at.selectbox(key="play_a").set_value(TINY_MODEL_ID)
    at.selectbox(key="play_b").set_value(TINY_CHAT_ID)
    at.text_area[0].input("Profit rose sharply and the dividend was raised.").run()
    at.button[0].click().run()
    assert not at.exception
    labels = [m.label for m in at.metric]
    assert labels.count("Answer") == 2
    assert "Answered in" in texts(at.caption)


def test_the_page_opens_on_the_newest_comparison_s_models_and_task(db):
    from pathlib import Path

    from core.store import comparisons

    page = Path(__file__).resolve().parents[1] / "streamlit_app" / "views" / "playground.py"
    at = AppTest.from_file(str(page), default_timeout=120).run()
    assert at.selectbox(key="play_task").value == "fin_sentiment"  # no comparison yet
    comparisons.insert(
        db,
        base_model_id=TINY_MODEL_ID,
        finetuned_model_id=TINY_CHAT_ID,
        task="revenue_analysis",
        base_score_id=1,
        finetuned_score_id=2,
    )
    at = AppTest.from_file(str(page), default_timeout=120).run()
    assert not at.exception
    assert at.selectbox(key="play_a").value == TINY_MODEL_ID
    assert at.selectbox(key="play_b").value == TINY_CHAT_ID
    assert at.selectbox(key="play_task").value == "revenue_analysis"  # the fine-tune's task
