"""HFLanguageModel: its fast paths (shared prefix, batching, ride-along continuations) give
exactly what a plain full-sequence computation and ``model.generate`` give."""

from __future__ import annotations

import copy
import math
import time

import pytest
import torch

from core.evaluation.hf import HFLanguageModel
from core.evaluation.interface import cut_at_stop
from core.models.loading import load_tokenizer
from core.models.tokens import common_prefix_length

PREFIX = "Classify the sentiment of the following financial news sentence.\n\nSentence: "
SHARED_CONTEXTS = [
    PREFIX + "Revenue rose.\nSentiment:",
    PREFIX + "Net income fell sharply after the bank cut its full-year guidance.\nSentiment:",
    PREFIX + "x\nSentiment:",
    PREFIX + "Shares were flat on Monday while the market waited.\nSentiment:",
    PREFIX + "The company beat estimates.\nSentiment:",
]
UNSHARED_CONTEXTS = [
    "Revenue rose 12% to $4.1 billion.\nGrowth (%):",
    "EPS:",
    "Net income was $120 million on 40 million shares outstanding.\nEPS:",
    "Sentence: The board approved a buyback.\nSentiment:",
]
CONTINUATIONS = [" positive", " neutral", " negative", " Positive", " strongly negative outlook"]


def _lively(model: torch.nn.Module) -> torch.nn.Module:
    """The tiny model with larger random weights: its outputs depend strongly on the context,
    so a wrong position, mask or cache shows up in the numbers (the default init barely does)."""
    lively = copy.deepcopy(model)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, param in lively.named_parameters():
            if "norm" not in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.6)
    return lively


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny_models(tiny_model_dirs):
    """name -> (model, tokenizer), fp32 on CPU, in eval mode."""
    from transformers import AutoModelForCausalLM

    loaded = {}
    for model_id, directory in tiny_model_dirs.items():
        model = AutoModelForCausalLM.from_pretrained(directory, dtype=torch.float32).eval()
        loaded[model_id] = (model, load_tokenizer(directory))
    plain_model, plain_tokenizer = loaded["tiny-llama"]
    loaded["tiny-llama-lively"] = (_lively(plain_model).eval(), plain_tokenizer)
    return loaded


MODEL_NAMES = ["tiny-llama", "tiny-llama-chat", "tiny-llama-lively"]


def _reference_logprob(
    model, tokenizer, lm: HFLanguageModel, context: str, continuation: str
) -> float:
    """log P(continuation | context) from one forward pass over prompt + continuation tokens."""
    prompt = lm.encode(context)
    cont = list(tokenizer(continuation, add_special_tokens=False).input_ids)
    with torch.no_grad():
        logits = model(torch.tensor([prompt + cont])).logits.float()
    logprobs = torch.log_softmax(logits[0], dim=-1)
    positions = torch.arange(len(prompt) - 1, len(prompt) + len(cont) - 1)
    return float(logprobs[positions, torch.tensor(cont)].sum())


_GENERATE_CACHE: dict[tuple, str] = {}


def _reference_generate(
    model, tokenizer, lm: HFLanguageModel, context: str, stop, max_new_tokens: int
) -> str:
    """``model.generate`` (greedy) on the prompt alone, decoded and cut at the first stop."""
    key = (id(model), context, max_new_tokens)
    if key not in _GENERATE_CACHE:
        _GENERATE_CACHE[key] = _hf_greedy(model, tokenizer, lm.encode(context), max_new_tokens)
    return cut_at_stop(_GENERATE_CACHE[key], stop)[0].strip()


def _hf_greedy(model, tokenizer, prompt: list[int], max_new_tokens: int) -> str:
    ids = torch.tensor([prompt])
    with torch.no_grad():
        out = model.generate(
            ids,
            attention_mask=torch.ones_like(ids),
            do_sample=False,
            max_new_tokens=max_new_tokens,
            pad_token_id=tokenizer.pad_token_id,
        )
    return tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)


def test_continuations_cover_single_and_multi_token(tiny_models):
    _, tokenizer = tiny_models["tiny-llama"]
    lengths = [len(tokenizer(c, add_special_tokens=False).input_ids) for c in CONTINUATIONS]
    assert min(lengths) == 1
    assert max(lengths) >= 3
    assert len(set(lengths)) >= 3  # several different lengths: ride-along and extra steps both used


@pytest.mark.parametrize("model_name", MODEL_NAMES)
@pytest.mark.parametrize("share_prefix", [True, False])
@pytest.mark.parametrize("batch_size", [1, 3])
@pytest.mark.parametrize(
    "contexts", [SHARED_CONTEXTS, UNSHARED_CONTEXTS], ids=["shared", "unshared"]
)
def test_choice_logprobs_equal_full_sequence_loglikelihood(
    tiny_models, model_name, share_prefix, batch_size, contexts
):
    model, tokenizer = tiny_models[model_name]
    lm = HFLanguageModel(model, tokenizer, "cpu", batch_size=batch_size, share_prefix=share_prefix)
    lengths = {len(lm.encode(c)) for c in contexts}
    assert len(lengths) >= 3  # prompts of different lengths: left padding is exercised
    got = lm.choice_logprobs(contexts, CONTINUATIONS)
    assert len(got) == len(contexts)
    for context, row in zip(contexts, got):
        assert len(row) == len(CONTINUATIONS)
        for continuation, value in zip(CONTINUATIONS, row):
            expected = _reference_logprob(model, tokenizer, lm, context, continuation)
            assert value == pytest.approx(expected, abs=1e-4), (context, continuation)


def test_shared_contexts_really_share_a_prefix(tiny_models):
    model, tokenizer = tiny_models["tiny-llama"]
    lm = HFLanguageModel(model, tokenizer, "cpu")
    encoded = [lm.encode(c) for c in SHARED_CONTEXTS]
    assert common_prefix_length(encoded) >= 10
    prefix, suffixes = lm._split_prefix(encoded)
    assert len(prefix) == common_prefix_length(encoded)
    assert all(prefix + s == e for s, e in zip(suffixes, encoded))


@pytest.mark.parametrize("model_name", MODEL_NAMES)
def test_choice_logprobs_single_context_and_only_single_token_continuations(
    tiny_models, model_name
):
    model, tokenizer = tiny_models[model_name]
    lm = HFLanguageModel(model, tokenizer, "cpu", batch_size=2)
    context = SHARED_CONTEXTS[1]
    singles = [
        c for c in CONTINUATIONS if len(tokenizer(c, add_special_tokens=False).input_ids) == 1
    ]
    assert singles
    got = lm.choice_logprobs([context], singles)
    for continuation, value in zip(singles, got[0]):
        assert value == pytest.approx(
            _reference_logprob(model, tokenizer, lm, context, continuation), abs=1e-4
        )
    # log-probabilities of distinct single tokens: negative, and their probabilities sum to <= 1
    assert all(v < 0 for v in got[0])
    assert sum(math.exp(v) for v in got[0]) <= 1 + 1e-6


def test_choice_logprobs_rejects_an_empty_continuation(tiny_models):
    model, tokenizer = tiny_models["tiny-llama"]
    lm = HFLanguageModel(model, tokenizer, "cpu")
    with pytest.raises(ValueError, match="no tokens"):
        lm.choice_logprobs(["EPS:"], [" positive", ""])


@pytest.mark.parametrize("model_name", MODEL_NAMES)
@pytest.mark.parametrize("share_prefix", [True, False])
@pytest.mark.parametrize("batch_size", [1, 3])
@pytest.mark.parametrize("stop", [["\n"], ["e"], []], ids=["newline", "letter-e", "none"])
@pytest.mark.parametrize(
    "contexts", [SHARED_CONTEXTS, UNSHARED_CONTEXTS], ids=["shared", "unshared"]
)
def test_generate_equals_hf_greedy_generate_cut_at_stop(
    tiny_models, model_name, share_prefix, batch_size, stop, contexts
):
    model, tokenizer = tiny_models[model_name]
    lm = HFLanguageModel(model, tokenizer, "cpu", batch_size=batch_size, share_prefix=share_prefix)
    got = lm.generate(contexts, stop, max_new_tokens=10)
    expected = [_reference_generate(model, tokenizer, lm, c, stop, 10) for c in contexts]
    assert got == expected


def test_lively_generations_differ_and_stop_sequences_cut(tiny_models):
    """Guards the test above: on the lively model outputs vary by prompt and stops really cut."""
    model, tokenizer = tiny_models["tiny-llama-lively"]
    lm = HFLanguageModel(model, tokenizer, "cpu", batch_size=3)
    contexts = SHARED_CONTEXTS + UNSHARED_CONTEXTS
    uncut = lm.generate(contexts, [], max_new_tokens=10)
    assert len(set(uncut)) == len(contexts)
    cut = lm.generate(contexts, ["e"], max_new_tokens=10)
    assert all("e" not in text for text in cut)
    assert any(c != u for c, u in zip(cut, uncut))
    assert all(u.startswith(c) for c, u in zip(cut, uncut))


def test_generate_stops_at_eos_like_hf_generate(tiny_models):
    """A token declared EOS in the generation config ends the answer (and is not part of it)."""
    model, tokenizer = tiny_models["tiny-llama-lively"]
    probe = HFLanguageModel(model, tokenizer, "cpu")
    prompt = probe.encode(SHARED_CONTEXTS[0])
    with torch.no_grad():
        out = model.generate(
            torch.tensor([prompt]),
            do_sample=False,
            max_new_tokens=10,
            pad_token_id=tokenizer.pad_token_id,
        )
    new_ids = out[0, len(prompt) :].tolist()
    eos = new_ids[2]  # a token the model really emits, third in this answer
    assert eos not in new_ids[:2]
    eos_model = copy.deepcopy(model)
    eos_model.generation_config.eos_token_id = [tokenizer.eos_token_id, eos]
    lm = HFLanguageModel(eos_model, tokenizer, "cpu", batch_size=3)
    assert eos in lm.stop_ids
    got = lm.generate(SHARED_CONTEXTS, [], max_new_tokens=10)
    assert got[0] == tokenizer.decode(new_ids[:2]).strip()
    for context, text in zip(SHARED_CONTEXTS, got):
        ids = probe.encode(context)
        with torch.no_grad():
            ref = eos_model.generate(
                torch.tensor([ids]),
                do_sample=False,
                max_new_tokens=10,
                pad_token_id=tokenizer.pad_token_id,
            )
        tokens = ref[0, len(ids) :].tolist()
        tokens = tokens[: tokens.index(eos)] if eos in tokens else tokens
        assert text == tokenizer.decode(tokens, skip_special_tokens=True).strip()


@pytest.mark.parametrize("model_name", MODEL_NAMES)
def test_results_do_not_depend_on_batch_size(tiny_models, model_name):
    model, tokenizer = tiny_models[model_name]
    contexts = SHARED_CONTEXTS + UNSHARED_CONTEXTS
    logprobs, texts = [], []
    for batch_size in (1, 2, 4, 16):
        lm = HFLanguageModel(model, tokenizer, "cpu", batch_size=batch_size)
        logprobs.append(lm.choice_logprobs(contexts, CONTINUATIONS))
        texts.append(lm.generate(contexts, ["\n"], max_new_tokens=8))
    for other in logprobs[1:]:
        assert torch.allclose(torch.tensor(other), torch.tensor(logprobs[0]), atol=1e-4)
    assert all(t == texts[0] for t in texts[1:])


def test_common_prefix_length_edge_cases():
    assert common_prefix_length([]) == 0
    assert common_prefix_length([[1, 2, 3]]) == 2  # one sequence: all but its last token
    assert common_prefix_length([[1, 2, 3], [1, 2, 3]]) == 2  # identical: still one token left
    assert common_prefix_length([[1, 2, 3, 4], [1, 2, 9, 9]]) == 2
    assert common_prefix_length([[1, 2], [3, 2]]) == 0
    assert common_prefix_length([[1, 2], [1, 2, 3, 4]]) == 1  # one is a prefix of the other
    assert common_prefix_length([[5], [5, 6]]) == 0
    assert common_prefix_length([[1, 2, 3], [1, 2, 3], [1, 7, 3]]) == 1
    assert common_prefix_length([[], [1]]) == 0
    assert common_prefix_length(((1, 2, 3), (1, 2, 4))) == 2  # any sequences, not just lists


@pytest.mark.parametrize("batch_size", [1, 2, 3, 16])
def test_on_batch_covers_every_index_once(tiny_models, batch_size):
    model, tokenizer = tiny_models["tiny-llama"]
    lm = HFLanguageModel(model, tokenizer, "cpu", batch_size=batch_size)
    contexts = SHARED_CONTEXTS + UNSHARED_CONTEXTS
    for call in (
        lambda cb: lm.choice_logprobs(contexts, CONTINUATIONS, on_batch=cb),
        lambda cb: lm.generate(contexts, ["\n"], 4, on_batch=cb),
    ):
        seen: list[int] = []
        calls: list[tuple[list[int], float]] = []

        def on_batch(indices, seconds, seen=seen, calls=calls):
            seen.extend(indices)
            calls.append((list(indices), seconds))

        call(on_batch)
        assert sorted(seen) == list(range(len(contexts)))
        assert len(calls) == math.ceil(len(contexts) / batch_size)
        assert all(0 < len(indices) <= batch_size for indices, _ in calls)
        assert all(seconds >= 0 for _, seconds in calls)


def test_batches_are_sorted_longest_first(tiny_models):
    model, tokenizer = tiny_models["tiny-llama"]
    lm = HFLanguageModel(model, tokenizer, "cpu", batch_size=2, share_prefix=False)
    contexts = UNSHARED_CONTEXTS
    lengths = [len(lm.encode(c)) for c in contexts]
    order: list[int] = []
    lm.choice_logprobs(contexts, [" positive"], on_batch=lambda indices, _: order.extend(indices))
    assert [lengths[i] for i in order] == sorted(lengths, reverse=True)


@pytest.mark.parametrize("model_name", MODEL_NAMES)
@pytest.mark.parametrize("workers", [2, 3])
def test_concurrent_batches_give_exactly_the_serial_results(tiny_models, model_name, workers):
    """Batches run in worker threads (the CPU default) change nothing but rounding: same text,
    progress reported in order for every index, and torch's thread count is restored."""
    model, tokenizer = tiny_models[model_name]
    contexts = SHARED_CONTEXTS + UNSHARED_CONTEXTS
    serial = HFLanguageModel(model, tokenizer, "cpu", batch_size=2, workers=1)
    threaded = HFLanguageModel(model, tokenizer, "cpu", batch_size=2, workers=workers)
    threads = torch.get_num_threads()
    order: list[int] = []
    got = threaded.choice_logprobs(
        contexts, CONTINUATIONS, on_batch=lambda indices, _: order.extend(indices)
    )
    expected = serial.choice_logprobs(contexts, CONTINUATIONS)
    # Batches are split differently (evenly per worker), so only float rounding may differ.
    assert torch.allclose(torch.tensor(got), torch.tensor(expected), atol=1e-5)
    assert sorted(order) == list(range(len(contexts)))
    lengths = [
        len(threaded._split_prefix([threaded.encode(c) for c in contexts])[1][i]) for i in order
    ]
    assert lengths == sorted(lengths, reverse=True)  # callbacks come in batch order
    assert threaded.generate(contexts, ["\n"], 8) == serial.generate(contexts, ["\n"], 8)
    assert torch.get_num_threads() == threads


def test_a_failing_batch_stops_the_run_and_later_batches_never_start(tiny_models):
    model, tokenizer = tiny_models["tiny-llama"]
    lm = HFLanguageModel(model, tokenizer, "cpu", batch_size=1, workers=2)
    started: list[int] = []

    def work(batch: list[int]) -> int:
        started.append(batch[0])
        if batch[0] == 1:
            raise RuntimeError("out of memory in batch 1")
        time.sleep(0.01)
        return batch[0]

    threads = torch.get_num_threads()
    batches = [[index] for index in range(40)]
    with pytest.raises(RuntimeError, match="batch 1"):
        list(lm._run_batches(batches, work, None))
    assert len(started) < len(batches)
    assert torch.get_num_threads() == threads


def test_cpu_runs_two_batches_at_once_only_with_two_threads_or_more(monkeypatch):
    from core.evaluation.hf import default_workers

    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    assert default_workers("cpu") == 2
    assert default_workers("cuda") == 1
    monkeypatch.setattr(torch, "get_num_threads", lambda: 1)
    assert default_workers("cpu") == 1


@pytest.mark.parametrize(
    ("count", "batch_size", "workers"),
    [(203, 16, 2), (200, 16, 1), (8, 16, 2), (1, 16, 2), (0, 16, 2), (10, 3, 1), (5, 16, 4)],
)
def test_length_sorted_batches_cover_everything_longest_first_and_evenly(
    count, batch_size, workers
):
    from core.evaluation.hf import length_sorted_batches

    lengths = [(index * 7) % 13 for index in range(count)]
    batches = length_sorted_batches(lengths, batch_size, workers)
    flat = [index for batch in batches for index in batch]
    assert sorted(flat) == list(range(count))
    assert [lengths[i] for i in flat] == sorted(lengths, reverse=True)
    assert all(0 < len(batch) <= batch_size for batch in batches)
    if batches:
        assert max(map(len, batches)) - min(map(len, batches)) <= 1
    assert len(batches) >= math.ceil(count / batch_size)
    if count >= workers:  # every worker gets the same number of batches
        assert len(batches) % workers == 0
