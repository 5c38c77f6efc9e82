"""The training loop's parts: data pipeline, completion loss, config validation, checkpoints.

Everything runs on the tiny random Llama in fp32 on one thread, so exact comparisons hold.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import torch

from core.models.loading import load_model
from core.models.registry import get_model
from core.models.tokens import encode_prompt
from core.tasks.examples import Example, build_examples
from core.tasks.prompts import render
from core.tasks.spec import get_task, load_split
from core.training import config as train_config
from core.training.config import TrainConfig, preset_config
from core.training.data import collate, length_grouped_batches
from core.training.trainer import Trainer, load_for_training

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = TrainConfig(
    method="lora",
    lora_r=4,
    lora_alpha=8,
    lora_dropout=0.0,
    learning_rate=5e-3,
    batch_size=4,
    max_train_examples=16,
    max_seq_length=512,
    eval_every=2,
    log_every=1,
    save_every=2,
    warmup_ratio=0.0,
    dtype="fp32",
)


@pytest.fixture
def chat(finboard_home):
    return get_model("tiny-llama-chat")


@pytest.fixture
def tokenizer(chat):
    return load_model(chat, device="cpu", dtype="fp32").tokenizer


# ---------------------------------------------------------------- the data pipeline


def test_examples_are_the_evaluation_prompt_plus_the_answer_and_eos(chat, tokenizer):
    spec = get_task("fin_sentiment")
    items = load_split(spec, "train").items[:5]
    examples = build_examples(spec, items, tokenizer, chat.instruct, max_length=256)
    for item, example in zip(items, examples, strict=True):
        rendered = render(spec, item, tokenizer, chat.instruct)
        assert example.prompt_ids == encode_prompt(tokenizer, rendered.prompt)
        answer = tokenizer(rendered.completion, add_special_tokens=False).input_ids
        assert example.completion_ids == [*answer, tokenizer.eos_token_id]
        assert tokenizer.decode(example.completion_ids[:-1]) == item.answer


def test_long_prompts_are_cut_from_the_left_and_keep_the_answer(chat, tokenizer):
    spec = get_task("eps_extraction")
    item = load_split(spec, "train").items[0]
    full = build_examples(spec, [item], tokenizer, chat.instruct, max_length=10_000)[0]
    cut = build_examples(spec, [item], tokenizer, chat.instruct, max_length=32)[0]
    assert cut.length == 32 < full.length
    assert cut.completion_ids == full.completion_ids  # the answer survives whole
    assert cut.prompt_ids == full.prompt_ids[-len(cut.prompt_ids) :]  # the start is dropped


def test_length_grouped_batches_cover_each_example_once_and_are_seeded():
    lengths = [(i * 37) % 90 + 5 for i in range(203)]
    batches = length_grouped_batches(lengths, batch_size=8, seed=3)
    flat = [i for batch in batches for i in batch]
    assert sorted(flat) == list(range(len(lengths)))
    assert all(1 <= len(batch) <= 8 for batch in batches)
    assert batches == length_grouped_batches(lengths, batch_size=8, seed=3)
    assert batches != length_grouped_batches(lengths, batch_size=8, seed=4)
    # batches are of similar length: far less spread inside a batch than over the data
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches)
    assert spread / len(batches) < (max(lengths) - min(lengths)) / 4


def test_collate_pads_right_and_targets_are_the_completion_tokens():
    examples = [Example([5, 6, 7], [8, 9]), Example([5, 6], [10])]
    batch = collate(examples, pad_id=0, device="cpu")
    assert batch.input_ids.tolist() == [[5, 6, 7, 8, 9], [5, 6, 10, 0, 0]]
    assert batch.attention_mask.tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]
    # each target token is predicted by the hidden state one position before it
    assert batch.target_rows.tolist() == [0, 0, 1]
    assert batch.target_positions.tolist() == [2, 3, 1]
    assert batch.targets.tolist() == [8, 9, 10]
    assert batch.tokens == 8  # padding is not counted


# ---------------------------------------------------------------- the loss


def _manual_completion_loss(model, examples: list[Example]) -> float:
    """Cross-entropy summed over completion tokens, one full sequence at a time."""
    total = 0.0
    for example in examples:
        ids = torch.tensor([example.prompt_ids + example.completion_ids])
        logits = model(input_ids=ids).logits[0].float()
        start = len(example.prompt_ids)
        for offset, token in enumerate(example.completion_ids):
            log_probs = torch.log_softmax(logits[start + offset - 1], dim=-1)
            total -= float(log_probs[token])
    return total


@pytest.mark.parametrize("share_prefix", [True, False])
def test_completion_loss_equals_the_cross_entropy_of_every_completion_token(
    chat, tmp_path, share_prefix
):
    config = TrainConfig(**{**TINY.to_dict(), "gradient_checkpointing": not share_prefix})
    trainer = Trainer(load_for_training(chat, config), get_task("fin_sentiment"), config, tmp_path)
    trainer.setup()
    assert bool(trainer.prefix_ids) is share_prefix  # the shared prompt start, computed once
    examples = trainer.train_examples[:3]
    with torch.no_grad():
        loss, targets, tokens = trainer.completion_loss(examples)
        full = [Example(trainer.prefix_ids + e.prompt_ids, e.completion_ids) for e in examples]
        expected = _manual_completion_loss(trainer.model, full)
    assert targets == sum(len(e.completion_ids) for e in examples)
    assert tokens == sum(e.length for e in full)
    assert float(loss) == pytest.approx(expected, rel=1e-4)


def _prefix_keys(trainer: Trainer) -> torch.Tensor:
    _, cache = trainer._prefix_cache(2)
    return torch.cat([layer.keys for layer in cache.layers])


def test_the_shared_prefix_is_computed_without_dropout_and_the_examples_with_it(chat, tmp_path):
    config = TrainConfig(**{**TINY.to_dict(), "lora_dropout": 0.5})
    trainer = Trainer(load_for_training(chat, config), get_task("fin_sentiment"), config, tmp_path)
    trainer.setup()
    assert trainer.prefix_ids
    with torch.no_grad():  # adapters that change the output, so dropout shows
        for name, param in trainer.model.named_parameters():
            if "lora_B" in name:
                param.normal_(std=0.5)
    dropouts = [m for m in trainer.model.modules() if isinstance(m, torch.nn.Dropout)]
    assert dropouts and all(m.training for m in dropouts)
    with torch.no_grad():
        first, second = _prefix_keys(trainer), _prefix_keys(trainer)
        examples = trainer.train_examples[:3]
        losses = {float(trainer.completion_loss(examples)[0]) for _ in range(3)}
        trainer.model.eval()
        plain = _prefix_keys(trainer)
        trainer.model.train()
    assert torch.equal(first, second) and torch.equal(first, plain)  # one pass, no mask
    assert all(m.training for m in dropouts)  # switched back after the prefix
    assert len(losses) == 3  # the examples' own tokens are dropped out as configured


def test_each_epoch_has_its_own_seeded_order_and_callers_cannot_change_it(chat, tmp_path):
    config = TrainConfig(**{**TINY.to_dict(), "epochs": 2.0})
    trainer = Trainer(load_for_training(chat, config), get_task("fin_sentiment"), config, tmp_path)
    trainer.setup()
    for epoch in (0, 1, 0):  # back to an epoch after another: drawn again, the same
        expected = length_grouped_batches(trainer.lengths, config.batch_size, config.seed + epoch)
        assert trainer.epoch_batches(epoch) == expected
        micro = [trainer._micro_batch(epoch * trainer.batches_per_epoch + i) for i in range(4)]
        assert micro == [[trainer.train_examples[i] for i in batch] for batch in expected]
    trainer.epoch_batches(1)[0].clear()  # a caller's copy, not the trainer's order
    assert trainer.epoch_batches(1) == length_grouped_batches(
        trainer.lengths, config.batch_size, config.seed + 1
    )
    assert trainer.epoch_batches(0) != trainer.epoch_batches(1)


# ---------------------------------------------------------------- config validation


@pytest.mark.parametrize(
    "setting, value, words",
    [
        ("learning_rate", "nan", "learning_rate must be a finite number"),
        ("epochs", "inf", "epochs must be a finite number"),
        ("epochs", "0", "epochs must be more than 0"),
        ("weight_decay", "-1", "weight_decay must be at least 0"),
        ("max_seq_length", "1", "max_seq_length must be at least 16"),
        ("lora_alpha", "-5", "lora_alpha must be at least 1"),
        ("max_train_examples", "-5", "max_train_examples must be at least 0"),
        ("lora_dropout", "1", "lora_dropout must be less than 1"),
        ("dtype", "float8", "dtype must be one of"),
        ("method", "dora", "method must be one of"),
        ("batch_size", "0", "batch_size must be at least 1"),
        ("gradient_checkpointing", "maybe", "gradient_checkpointing must be true or false"),
        ("lora_r", "two", "lora_r must be a int"),
    ],
)
def test_bad_settings_are_refused_with_the_setting_named(setting, value, words):
    with pytest.raises(ValueError, match=words):
        preset_config("quick", {setting: value})


def test_unknown_setting_lists_the_known_ones():
    with pytest.raises(ValueError, match="Unknown training setting 'lr'.*learning_rate"):
        train_config.parse_overrides(["lr=0.1"])


def test_every_problem_is_listed_at_once():
    with pytest.raises(ValueError) as error:
        preset_config(None, {"batch_size": "0", "learning_rate": "-1"})
    assert "batch_size" in str(error.value) and "learning_rate" in str(error.value)


def test_presets_are_files_with_every_knob_commented():
    table = train_config.presets()
    assert set(table) == {"quick", "standard", "qlora-7b-24gb", "prompt-tuning", "encoder"}
    for name in table:
        config = preset_config(name)
        assert config.to_dict().keys() == TrainConfig().to_dict().keys()
        lines = (train_config.presets_dir() / f"{name}.yaml").read_text().splitlines()
        settings = [line for line in lines if line and not line.startswith("#")]
        for line in settings:
            assert line.startswith("description:") or "  # " in line, f"{name}: {line}"
    assert preset_config("qlora-7b-24gb").method == "qlora"
    assert preset_config("prompt-tuning").method == "prompt-tuning"


def test_knobs_know_their_method_and_the_help_covers_all():
    assert train_config.knob_applies("lora_r", "qlora")
    assert not train_config.knob_applies("lora_r", "prompt-tuning")
    assert not train_config.knob_applies("num_virtual_tokens", "lora")
    assert train_config.knob_applies("learning_rate", "prompt-tuning")
    assert train_config.field_rules("learning_rate")["scale"] == "log"
    text = train_config.settings_help()
    for name in TrainConfig().to_dict():
        assert f"{name} (default" in text


# ---------------------------------------------------------------- checkpoints


class StopAfter:
    """Hooks that ask the trainer to stop once ``steps`` progress rows came in."""

    def __init__(self, steps: int) -> None:
        self.steps, self.rows = steps, []

    def train_progress(self, row: dict) -> None:
        self.rows.append(row)

    def should_stop(self) -> bool:
        return len(self.rows) >= self.steps


def _masters(trainer: Trainer) -> list[torch.Tensor]:
    return [m.detach().clone() for m in trainer.masters]


def test_checkpoint_round_trip_resumes_exactly(chat, tmp_path):
    spec = get_task("fin_sentiment")
    straight = Trainer(load_for_training(chat, TINY), spec, TINY, tmp_path / "straight")
    done = straight.run()
    assert done.status == "completed" and done.steps == 4

    first = Trainer(load_for_training(chat, TINY), spec, TINY, tmp_path / "split", StopAfter(2))
    stopped = first.run()
    assert stopped.status == "cancelled" and stopped.steps == 2
    checkpoint = Path(stopped.checkpoint)
    assert {p.name for p in checkpoint.iterdir()} >= {
        "masters.safetensors",
        "optimizer.pt",
        "state.json",
    }
    second = Trainer(load_for_training(chat, TINY), spec, TINY, tmp_path / "split")
    resumed = second.run(resume_from=checkpoint)
    assert resumed.status == "completed" and resumed.steps == 4
    for a, b in zip(_masters(straight), _masters(second), strict=True):
        assert torch.equal(a, b)  # same step count, schedule, optimizer state and data order
    assert resumed.final_val_loss == pytest.approx(done.final_val_loss, abs=1e-6)


def test_checkpoints_load_without_unpickling_code(chat, tmp_path):
    spec = get_task("fin_sentiment")
    trainer = Trainer(load_for_training(chat, TINY), spec, TINY, tmp_path, StopAfter(2))
    checkpoint = Path(trainer.run().checkpoint)
    saved = torch.load(checkpoint / "optimizer.pt", weights_only=True)  # no arbitrary objects
    assert {"optimizer", "scheduler", "rng"} <= set(saved)
    assert not math.isnan(saved["optimizer"]["param_groups"][0]["lr"])


def test_the_loss_curve_starts_at_the_first_step(chat, tmp_path):
    # every 5th step, the validation checks and the last: and the first, where the curve starts
    config = dataclasses.replace(TINY, max_train_examples=32, log_every=5, eval_every=100)
    hooks = StopAfter(100)  # records the rows; never stops the run
    result = Trainer(
        load_for_training(chat, config), get_task("fin_sentiment"), config, tmp_path, hooks
    ).run()
    assert result.steps == 8
    assert [row["step"] for row in hooks.rows] == [1, 5, 8]
