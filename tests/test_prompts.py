"""Prompt rendering: plain text for base models, the chat template for instruct models."""

from __future__ import annotations

import pytest

from core.data.items import Item
from core.models.loading import load_tokenizer
from core.tasks.prompts import (
    choice_continuations,
    completion_text,
    pick_shots,
    render,
    surface_forms,
    uses_chat,
)
from core.tasks.spec import get_task, load_split

ITEM = Item(
    id="x-1", fields={"text": "Shares of Acme rose 5% after earnings beat."}, answer="positive"
)


@pytest.fixture(scope="module")
def tokenizers(tiny_model_dirs):
    return {name: load_tokenizer(directory) for name, directory in tiny_model_dirs.items()}


@pytest.fixture(scope="module")
def sentiment():
    return get_task("fin_sentiment")


def test_uses_chat_needs_both_instruct_and_a_template(tokenizers):
    assert uses_chat(tokenizers["tiny-llama-chat"], instruct=True)
    assert not uses_chat(tokenizers["tiny-llama-chat"], instruct=False)
    assert not uses_chat(tokenizers["tiny-llama"], instruct=True)
    assert not uses_chat(tokenizers["tiny-llama"], instruct=False)


def test_plain_render(tokenizers, sentiment):
    rendered = render(sentiment, ITEM, tokenizers["tiny-llama"], instruct=False)
    assert (
        rendered.prompt == f"{sentiment.instruction}\n\nSentence: {ITEM.fields['text']}\nSentiment:"
    )
    assert rendered.completion == " positive"  # a leading space: the answer follows "Sentiment:"


def test_instruct_model_without_template_falls_back_to_plain(tokenizers, sentiment):
    plain = render(sentiment, ITEM, tokenizers["tiny-llama"], instruct=False)
    assert render(sentiment, ITEM, tokenizers["tiny-llama"], instruct=True) == plain
    assert render(sentiment, ITEM, tokenizers["tiny-llama-chat"], instruct=False) == plain


def test_chat_render_uses_the_template(tokenizers, sentiment):
    tokenizer = tokenizers["tiny-llama-chat"]
    rendered = render(sentiment, ITEM, tokenizer, instruct=True)
    user = f"{sentiment.instruction}\n\nSentence: {ITEM.fields['text']}\nSentiment:"
    assert rendered.prompt == f"<|user|>{user}<|end|>\n<|assistant|>"
    expected = tokenizer.apply_chat_template(
        [{"role": "user", "content": user}], tokenize=False, add_generation_prompt=True
    )
    assert rendered.prompt == expected
    assert rendered.completion == "positive"  # no leading space after the assistant tag
    assert not rendered.completion.startswith(" ")


def test_task_without_instruction(tokenizers, sentiment, tmp_path):
    from dataclasses import replace

    bare = replace(sentiment, instruction="")
    assert (
        render(bare, ITEM, tokenizers["tiny-llama"], False).prompt
        == f"Sentence: {ITEM.fields['text']}\nSentiment:"
    )
    chat = render(bare, ITEM, tokenizers["tiny-llama-chat"], True).prompt
    assert chat == f"<|user|>Sentence: {ITEM.fields['text']}\nSentiment:<|end|>\n<|assistant|>"


def test_pick_shots_is_seeded_and_bounded(sentiment):
    train = load_split(sentiment, "train").items
    shots = pick_shots(sentiment, train, seed=0, num_shots=3)
    assert len(shots) == 3
    assert shots == pick_shots(sentiment, train, seed=0, num_shots=3)
    assert shots != pick_shots(sentiment, train, seed=1, num_shots=3)
    assert all(shot in train for shot in shots)
    assert len({shot.id for shot in shots}) == 3
    assert pick_shots(sentiment, train, seed=0, num_shots=0) == []
    assert pick_shots(sentiment, [], seed=0, num_shots=3) == []
    assert len(pick_shots(sentiment, train[:2], seed=0, num_shots=5)) == 2


@pytest.mark.parametrize("model", ["tiny-llama", "tiny-llama-chat"])
def test_shots_appear_in_order_and_are_the_same_for_every_item(tokenizers, sentiment, model):
    tokenizer = tokenizers[model]
    instruct = model == "tiny-llama-chat"
    shots = pick_shots(sentiment, load_split(sentiment, "train").items, seed=0, num_shots=3)
    items = load_split(sentiment, "test").items[:4]
    prompts = [render(sentiment, item, tokenizer, instruct, shots).prompt for item in items]
    for item, prompt in zip(items, prompts):
        positions = [prompt.index(shot.fields["text"]) for shot in shots]
        assert positions == sorted(positions)  # in the order picked
        assert prompt.index(item.fields["text"]) > positions[-1]  # the item comes last
        assert prompt.count(sentiment.instruction) == 1  # the instruction once, first
        assert prompt.index(sentiment.instruction) < positions[0]
    # everything before the item is identical across items: the shots do not depend on the item
    heads = {prompt[: prompt.index(item.fields["text"])] for item, prompt in zip(items, prompts)}
    assert len(heads) == 1
    head = heads.pop()
    for shot in shots:
        if instruct:
            assert f"<|assistant|>{shot.answer}<|end|>" in head
        else:
            assert f"Sentence: {shot.fields['text']}\nSentiment: {shot.answer}" in head


def test_chat_shots_are_alternating_turns(tokenizers, sentiment):
    tokenizer = tokenizers["tiny-llama-chat"]
    shots = pick_shots(sentiment, load_split(sentiment, "train").items, seed=3, num_shots=2)
    prompt = render(sentiment, ITEM, tokenizer, True, shots).prompt
    assert prompt.count("<|user|>") == 3
    assert prompt.count("<|assistant|>") == 3  # two answered shots and the open generation turn
    assert prompt.startswith(
        f"<|user|>{sentiment.instruction}\n\nSentence: {shots[0].fields['text']}"
    )
    assert prompt.endswith("<|assistant|>")


def test_surface_forms():
    assert surface_forms("positive") == ["positive", "Positive"]
    assert surface_forms("Positive") == ["Positive"]
    assert surface_forms("42") == ["42"]
    assert surface_forms("buy") == ["buy", "Buy"]


def test_completion_text():
    assert completion_text("2.67", chat=False) == " 2.67"
    assert completion_text("2.67", chat=True) == "2.67"


def test_choice_continuations(tokenizers, sentiment):
    plain = choice_continuations(sentiment, tokenizers["tiny-llama"], instruct=False)
    assert plain == [
        [" positive", " Positive"],
        [" neutral", " Neutral"],
        [" negative", " Negative"],
    ]
    chat = choice_continuations(sentiment, tokenizers["tiny-llama-chat"], instruct=True)
    assert chat == [["positive", "Positive"], ["neutral", "Neutral"], ["negative", "Negative"]]
    # the gold completion of an item is one of its label's continuations
    rendered = render(sentiment, ITEM, tokenizers["tiny-llama"], False)
    assert rendered.completion in plain[sentiment.labels.index(ITEM.answer)]
