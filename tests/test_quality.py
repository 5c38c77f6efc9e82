"""The quality pipeline: each rule accepts a clean record and rejects its bad one; the report."""

from __future__ import annotations

import pytest

from core.data import quality
from core.data.items import Item
from core.data.quality import Record, Thresholds

T = Thresholds()
CLEAN = Record(
    "ok",
    "train",
    "Analyze the following financial statement and extract the EPS value.\n"
    "Q3 2024 earnings report: Revenue $2.1B, Net Income $150M, Shares Outstanding 50M",
    "EPS = $150M / 50M = $3.00 per share.",
)


def bad(instruction: str = CLEAN.instruction, response: str = CLEAN.response) -> Record:
    return Record("bad", "train", instruction, response)


CASES = {
    "too_short": bad(instruction="EPS?"),
    "too_long": bad(response="The company earned revenue. " * 120),
    "repetition": bad(response="the stock went up and up and " * 6 + "then stopped."),
    "low_quality": bad(response="I'm sorry, but as an AI I cannot provide financial advice."),
    "off_topic": bad(
        instruction="Write a short poem about a cat sleeping in the garden sun.",
        response="Soft paws curl, the garden hums, the afternoon is warm and slow.",
    ),
    "inconsistent": bad(response="EPS = $150M / 50M = $4.00 per share."),
}


@pytest.mark.parametrize("rule", list(quality.RULES))
def test_each_rule_accepts_the_clean_record_and_rejects_its_bad_one(rule):
    check = quality.RULES[rule]
    assert check(CLEAN, T, None) is None
    assert check(CASES[rule], T, None) is not None
    # and only this rule's bad record is the first failure of the whole pipeline
    failing = [name for name, other in quality.RULES.items() if other(CASES[rule], T, None)]
    assert failing[0] == rule


def test_low_quality_also_catches_symbols_and_unfinished_sentences():
    assert quality.low_quality(bad(instruction="$$$ ### 1234 %%% @@@ !!!"), T) is not None
    assert "mid-sentence" in quality.low_quality(bad(response="The EPS for the quarter was"), T)
    label = Record(
        "x", "train", "Shares fell after the report.", "negative", response_is_label=True
    )
    assert quality.low_quality(label, T) is None  # a label is not a sentence


def test_token_bounds_use_the_given_tokenizer():
    count = lambda text: 100 * len(text.split())  # noqa: E731  (a fake, very long tokenizer)
    assert quality.too_long(CLEAN, T, None) is None
    assert "tokens" in quality.too_long(CLEAN, T, count)


def items(*texts, split="train"):
    return [
        Item(f"{split}-{i}", {"prompt": t}, f"Answer {i} is 4.00.") for i, t in enumerate(texts)
    ]


BASE = "Net income rose to $150M and revenue grew 12% in the third quarter of the fiscal year"


def test_duplicates_and_near_duplicates_within_a_split():
    train = items(
        BASE, BASE.upper(), BASE + " again", "Cash flow fell 3% on higher capital spending"
    )
    for item, answer in zip(train, ["a 1.", "a 1.", "a 1.", "b 2."]):
        object.__setattr__(item, "answer", answer)
    kept, report = quality.check_records({"train": train}, response_is_label=False)
    assert report.rejected["duplicate"] == 1  # upper case is the same text
    assert report.rejected["near_duplicate"] == 1
    assert [item.id for item in kept["train"]] == ["train-0", "train-3"]


def test_leakage_lists_test_rows_found_in_train_and_drops_train_rows_by_choice():
    train = items(BASE, "Cash flow fell 3% on higher capital spending this quarter")
    test = items(BASE + ".", "Dividend payments were raised 5% for shareholders", split="test")
    kept, report = quality.check_records(
        {"train": train, "test": test}, response_is_label=False, mode="report"
    )
    assert [(leak["id"], leak["match_id"]) for leak in report.leakage] == [("test-0", "train-0")]
    assert len(kept["train"]) == 2  # reported, not dropped
    dropping = quality.load_thresholds({"drop_leakage": True})
    kept, report = quality.check_records(
        {"train": train, "test": test}, response_is_label=False, thresholds=dropping
    )
    assert [item.id for item in kept["train"]] == ["train-1"]
    assert len(kept["test"]) == 2  # the test file is never cut
    assert report.rejected["leakage"] == 1


def test_report_counts_add_up_and_print():
    records = items(BASE, "EPS?", "I'm sorry, but as an AI I cannot help with earnings.", BASE)
    kept, report = quality.check_records({"train": records}, response_is_label=False)
    assert report.raw == 4 == report.kept + sum(report.rejected.values())
    assert report.rejected["too_short"] == 1 and report.rejected["low_quality"] == 1
    assert report.rejected["near_duplicate"] == 1  # same text, another answer
    first = quality.report_lines(report.to_dict())[0]
    assert first == "raw 4 / kept 1 / too short 1 / low quality 1 / near duplicate 1"
    assert report.examples["too_short"][0]["id"] == "train-1"


def test_thresholds_come_from_yaml_and_bad_ones_are_named():
    assert quality.load_thresholds({"min_finance_relevance": 0.9}).min_finance_relevance == 0.9
    with pytest.raises(ValueError, match="threshold 'ngram': bad value 'x'"):
        quality.load_thresholds({"ngram": "x"})
    with pytest.raises(ValueError, match="unknown threshold 'colour'"):
        quality.load_thresholds({"colour": 1})
